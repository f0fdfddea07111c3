/**
 * TCP and unix-socket listeners (PROTOCOL.md section 1, byte streams): one StreamConnection per
 * accepted socket, COBS frames or (TCP only) JSON lines, acks on the same socket.
 *
 * Sockets are half-open capable: a device that sends its events and then shuts down its side
 * still gets its acks before the gateway closes its own side. A socket error is counted and
 * logged and closes only that socket. A peer that does not read its acks for ackTimeout is
 * disconnected (its unacknowledged events it will resend: duplicates, never loss).
 */
import { lstat, unlink } from 'node:fs/promises'
import net from 'node:net'
import type { TransportName } from '../reasons.js'
import { StreamConnection, type StreamFormat } from './stream-connection.js'
import { DEFAULT_STOP_TIMEOUT_MS, startError, within, type Transport, type TransportContext } from './transport.js'

export type StreamListen =
  | { kind: 'tcp', address: string, port: number }
  | { kind: 'unix', path: string }

export class StreamServerTransport implements Transport {
  readonly name: TransportName
  private server: net.Server | undefined
  private readonly sockets = new Map<net.Socket, StreamConnection>()

  constructor (private readonly listen: StreamListen, private readonly format: StreamFormat, private readonly ctx: TransportContext) {
    this.name = listen.kind === 'unix' ? 'unix' : format === 'jsonl' ? 'tcp-jsonl' : 'tcp'
  }

  async start (): Promise<{ address: string }> {
    if (this.server !== undefined) throw new Error(`${this.name} transport already started`)
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket))
    const where = this.listen.kind === 'tcp' ? `${this.listen.address}:${this.listen.port}` : this.listen.path
    try {
      if (this.listen.kind === 'unix') await removeStaleSocket(this.listen.path)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        if (this.listen.kind === 'tcp') server.listen(this.listen.port, this.listen.address, resolve)
        else server.listen(this.listen.path, resolve)
      })
    } catch (err) {
      server.close()
      throw startError(this.name, where, err)
    }
    server.on('error', (err) => this.ctx.pipeline.countError(this.name, err, 'server'))
    this.server = server
    const bound = server.address()
    const address = typeof bound === 'string' || bound === null
      ? where
      : bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`
    this.ctx.logger.info({ transport: this.name, address }, 'ingest listening')
    return { address }
  }

  async stop (): Promise<void> {
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    const ms = this.ctx.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS
    const closed = new Promise<void>(resolve => server.close(() => resolve()))
    await Promise.all(Array.from(this.sockets, async ([socket, conn]) => {
      await conn.stop(ms)
      await closeSocket(socket, ms)
    }))
    await within(closed, ms)
  }

  private accept (socket: net.Socket): void {
    const { pipeline } = this.ctx
    if (this.server === undefined) {
      socket.destroy()
      return
    }
    pipeline.countConnection(this.name)
    const conn = new StreamConnection(socket, {
      transport: this.name,
      format: this.format,
      ctx: this.ctx,
      ackOut: socket,
      onAckTimeout: () => socket.destroy()
    })
    this.sockets.set(socket, conn)
    socket.on('error', (err) => pipeline.countError(this.name, err, 'connection'))
    socket.on('end', () => {
      // The peer is done sending: what it sent is submitted (also what waits for the pipeline),
      // acked once stored, then our side closes.
      conn.finish().then(async () => await conn.stop()).then(() => socket.end(), () => socket.end())
    })
    socket.on('close', () => {
      conn.stop().finally(() => this.sockets.delete(socket)).catch(() => {})
    })
  }
}

/** end() (flushing what is written), then destroy once flushed or after ms. */
async function closeSocket (socket: net.Socket, ms: number): Promise<void> {
  if (socket.destroyed) return
  const finished = new Promise<void>(resolve => { socket.once('finish', resolve); socket.once('close', resolve) })
  socket.end()
  await within(finished, ms)
  socket.destroy()
}

/**
 * A socket file left by a process that died cannot be listened on (EADDRINUSE). Remove it only
 * if nothing answers on it: a live listener means another edgefwd is running.
 */
async function removeStaleSocket (path: string): Promise<void> {
  const stat = await lstat(path).catch(() => undefined)
  if (stat === undefined || !stat.isSocket()) return
  const alive = await new Promise<boolean>(resolve => {
    const probe = net.connect(path)
    probe.once('connect', () => { probe.destroy(); resolve(true) })
    probe.once('error', () => resolve(false))
  })
  if (!alive) await unlink(path)
}
