/**
 * The gateway's end of the agent control channel (protocol.ts): a unix socket, mode 0660, that
 * answers one JSON line with one JSON line. Requests on one connection are answered in order.
 *
 * Bounded like every listener here: at most MAX_CONNECTIONS at once (more are closed at once),
 * a line of at most MAX_LINE_BYTES (a longer one ends its connection), an idle connection is
 * closed after IDLE_MS, and close() ends every connection.
 *
 * The socket path: a stale file left by a dead process is replaced; a live edgefwd answering
 * there is an error (EDGEFWD_ERR_AGENT_SOCKET), as is a missing directory or a path longer than
 * a unix socket address allows.
 */
import { chmod, lstat, unlink } from 'node:fs/promises'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { EdgefwdError, fsErrorReason, isEdgefwdError } from '../errors.js'
import type { Logger } from '../observe/log.js'
import { LineSplitter, MAX_LINE_BYTES, type ControlRequest, type ControlResponse } from './protocol.js'

const MAX_CONNECTIONS = 16
const IDLE_MS = 120_000
/** Linux: sun_path holds 108 bytes, NUL included. */
const MAX_PATH_BYTES = 107

export type ControlHandler = (request: ControlRequest) => Promise<unknown>

export interface ControlServer {
  readonly path: string
  close (): Promise<void>
}

/** @throws EdgefwdError EDGEFWD_ERR_AGENT_SOCKET */
export async function startControlServer (path: string, handle: ControlHandler, logger: Logger): Promise<ControlServer> {
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) {
    throw new EdgefwdError('EDGEFWD_ERR_AGENT_SOCKET', `the agent socket path is ${Buffer.byteLength(path)} bytes, longer than a unix socket allows (${MAX_PATH_BYTES}): ${path}`,
      { hint: 'set mcp.socket to a shorter path, e.g. /run/edgefwd/agent.sock' })
  }
  const sockets = new Set<Socket>()
  const server = createServer(socket => {
    if (sockets.size >= MAX_CONNECTIONS) {
      socket.destroy()
      return
    }
    sockets.add(socket)
    socket.on('close', () => { sockets.delete(socket) })
    serve(socket, handle, logger)
  })
  await listen(server, path)
  try {
    await chmod(path, 0o660)
  } catch (err) {
    server.close()
    throw new EdgefwdError('EDGEFWD_ERR_AGENT_SOCKET', `cannot set mode 0660 on the agent socket ${path}: ${fsErrorReason(err)}`, { cause: err })
  }
  logger.info({ socket: path }, `agent control socket on ${path} (edgefwd mcp)`)
  let closing: Promise<void> | undefined
  return {
    path,
    close: async () => {
      closing ??= new Promise<void>(resolve => {
        for (const s of sockets) s.destroy()
        server.close(() => { resolve() })
      })
      await closing
    },
  }
}

function serve (socket: Socket, handle: ControlHandler, logger: Logger): void {
  socket.setTimeout(IDLE_MS, () => { socket.destroy() })
  socket.on('error', () => { socket.destroy() })
  // Answers in request order: each waits for the one before it.
  let queue: Promise<void> = Promise.resolve()
  const reply = (response: ControlResponse): void => {
    if (!socket.destroyed) socket.write(`${JSON.stringify(response)}\n`)
  }
  const lines = new LineSplitter(MAX_LINE_BYTES, line => {
    queue = queue.then(async () => { reply(await answer(line, handle, logger)) })
  }, () => {
    reply({ id: null, ok: false, error: { code: 'EDGEFWD_ERR_USAGE', message: `a control request is longer than ${MAX_LINE_BYTES} bytes` } })
    socket.end()
  })
  socket.on('data', (chunk: Buffer) => { lines.push(chunk) })
}

async function answer (line: string, handle: ControlHandler, logger: Logger): Promise<ControlResponse> {
  let request: ControlRequest
  try {
    request = JSON.parse(line) as ControlRequest
    if (request === null || typeof request !== 'object' || typeof request.id !== 'number' || typeof request.op !== 'string') throw new Error('not a control request')
  } catch {
    return { id: null, ok: false, error: { code: 'EDGEFWD_ERR_USAGE', message: 'not a control request: one JSON object per line, {"id": N, "op": "...", "args": {...}}' } }
  }
  try {
    return { id: request.id, ok: true, result: await handle(request) }
  } catch (err) {
    if (!isEdgefwdError(err)) logger.warn({ err, op: request.op }, 'agent control request failed')
    return { id: request.id, ok: false, error: { code: isEdgefwdError(err) ? err.code : 'internal', message: err instanceof Error ? err.message : String(err) } }
  }
}

async function listen (server: Server, path: string): Promise<void> {
  try {
    await listenOnce(server, path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EADDRINUSE') throw socketError(path, err)
    if (await answers(path)) {
      throw new EdgefwdError('EDGEFWD_ERR_AGENT_SOCKET', `another edgefwd is running with the agent socket ${path}`,
        { hint: 'stop it, or give each gateway its own mcp.socket' })
    }
    // A stale socket from a process that died is ours to replace; anything else at that path is not.
    const kind = await lstat(path).catch(() => undefined)
    if (kind !== undefined && !kind.isSocket()) {
      throw new EdgefwdError('EDGEFWD_ERR_AGENT_SOCKET', `${path} exists and is not a socket: the agent socket will not replace it`,
        { hint: 'point mcp.socket at a path of its own' })
    }
    await unlink(path).catch(() => {})
    await listenOnce(server, path).catch((again: unknown) => { throw socketError(path, again) })
  }
}

async function listenOnce (server: Server, path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => { reject(err) }
    server.once('error', onError)
    server.listen(path, () => {
      server.off('error', onError)
      resolve()
    })
  })
}

/** Whether something accepts connections on the socket path (within a second). */
async function answers (path: string): Promise<boolean> {
  return await new Promise<boolean>(resolve => {
    const probe = connect(path)
    const done = (live: boolean): void => { clearTimeout(timer); probe.destroy(); resolve(live) }
    const timer = setTimeout(() => { done(true) }, 1000)
    probe.once('connect', () => { done(true) })
    probe.once('error', () => { done(false) })
  })
}

function socketError (path: string, err: unknown): EdgefwdError {
  return new EdgefwdError('EDGEFWD_ERR_AGENT_SOCKET', `the agent socket ${path} cannot be created: ${fsErrorReason(err)}`,
    { cause: err, hint: 'create its directory for the edgefwd user, or point mcp.socket elsewhere (off turns it off)' })
}
