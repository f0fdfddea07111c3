/**
 * The optional Streamable HTTP endpoint of `edgefwd mcp` (mcp.http): POST /mcp, stateless, for
 * any McpServer. node:http(s) and the SDK's web-standard transport only; the adapter between
 * node's IncomingMessage/ServerResponse and web Request/Response is the small part below, so no
 * framework (express, hono, @modelcontextprotocol/node) comes in as a dependency.
 *
 * Stateless: each POST gets a fresh McpServer from the factory and a fresh transport
 * (`sessionIdGenerator: undefined`), answered with plain JSON (`enableJsonResponse`), and both
 * are closed when the answer is written or the client goes away. So there is no session to
 * resume and nothing to notify on: GET (the standalone SSE stream) and DELETE (end a session)
 * are answered 405, which MCP clients take as "not offered".
 *
 * Who may call. An agent that can reach this endpoint can read the gateway's state, so:
 * - a loopback address (127.0.0.0/8, ::1) may run without TLS and token; any other address needs
 *   BOTH `tls` and `tokenFile`, checked before anything listens;
 * - with a token, every request carries `Authorization: Bearer <token>`, compared as SHA-256
 *   digests with timingSafeEqual (equal lengths, constant time); else 401 + `WWW-Authenticate`.
 *   The token file must be mode 0600-like (nothing for group or others), as a private key is;
 * - DNS rebinding (MCP transports spec, "Security Warning"): a present `Origin` must be
 *   localhost, 127.0.0.1, [::1] or the listen address itself, else 403 (a rebound page's Origin is
 *   its own site, and its Host is too: so Host is never taken as "our own host"); on a loopback
 *   bind the `Host` header must also name a loopback host and our port, else 403.
 * - a body over maxBodyBytes is refused (413) from its Content-Length when declared, else as soon
 *   as the bytes pass the limit; nothing past the limit is kept, and the connection is closed
 *   after the answer.
 * Every refusal (401, 403, 404, 413) goes to onReject, which the caller counts and audits. Not
 * 405: the SDK client asks GET /mcp for a standalone SSE stream after every initialize and takes
 * the 405 as "none here", so it is no sign of a bad caller and would only flood the audit.
 *
 * Handlers see the caller: the factory gets an HttpCaller, and when a token was checked the
 * transport hands `authInfo` to the server, so a tool handler reads
 * `ctx.http?.authInfo?.clientId` (the token's fingerprint, `token:<12 hex>`) and
 * `ctx.http?.authInfo?.extra?.remote` (the peer's address). The token itself is never passed on:
 * `authInfo.token` is the fingerprint too.
 *
 * Bounded waits, as src/observe/http-server.ts: headers within HEADERS_TIMEOUT_MS, the whole
 * request within REQUEST_TIMEOUT_MS, a TLS handshake within HEADERS_TIMEOUT_MS, a blocked answer
 * within DRAIN_TIMEOUT_MS, and close() cuts every connection after CLOSE_GRACE_MS.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { isIP, type AddressInfo, type Socket } from 'node:net'
import { WebStandardStreamableHTTPServerTransport, type AuthInfo, type McpServer } from '@modelcontextprotocol/server'
import { EdgefwdError, fsErrorReason } from '../errors.js'
import { listenHint, listenOn } from '../observe/http-server.js'
import type { Logger } from '../observe/log.js'

export interface McpHttpOptions {
  /** "127.0.0.1:7465", "[::1]:7465" or any "ADDRESS:PORT"; port 0 picks a free port. */
  listen: string
  /** PEM file paths. */
  tls?: { cert: string, key: string }
  /** A file whose trimmed content is the bearer token. */
  tokenFile?: string
  maxBodyBytes: number
  /** A fresh McpServer for each request (stateless Streamable HTTP). */
  newServer: (caller: HttpCaller) => McpServer
  logger: Logger
  onReject?: (rejection: McpHttpRejection) => void
}

export interface HttpCaller {
  /** The peer, "address:port" (an IPv6 address in brackets). */
  remote: string
  /** A short fingerprint of the token checked (first 12 hex of its SHA-256), never the token; undefined without a token. */
  token: string | undefined
}

export type McpHttpRejectReason = 'not_found' | 'forbidden_host' | 'forbidden_origin' | 'unauthorized' | 'too_large'

export interface McpHttpRejection {
  reason: McpHttpRejectReason
  detail: string
  remote: string
}

export interface McpHttpServer {
  /** host:port as bound, an IPv6 host in brackets ("[::1]:7465"). */
  address: string
  /** http(s)://address/mcp */
  url: string
  /** Stops listening and closes every connection; resolves within about CLOSE_GRACE_MS. */
  close (): Promise<void>
}

export const MCP_PATH = '/mcp'

const CLOSE_GRACE_MS = 2000
/** An MCP client sends a small POST at once; one slower than this to send its headers is not a client. */
const HEADERS_TIMEOUT_MS = 5000
const REQUEST_TIMEOUT_MS = 10_000
/** How often Node enforces the two timeouts above; its default (30 s) would make them 30 s late. */
const TIMEOUT_CHECK_INTERVAL_MS = 1000
/** A client that reads nothing of its answer for this long loses the connection. */
const DRAIN_TIMEOUT_MS = 30_000
const FINGERPRINT_HEX = 12
/** JSON-RPC: -32600 Invalid Request; -32000 the SDK's "server error" for HTTP-level refusals. */
const INVALID_REQUEST = -32600
const SERVER_ERROR = -32000
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]']
/** Request headers that describe this hop, not the message: not copied into the web Request. */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'content-length', 'proxy-connection', 'te', 'trailer'])


/** What a request is checked against, fixed at start. */
interface Endpoint {
  scheme: 'http' | 'https'
  address: string
  port: number
  loopback: boolean
  /** Host names a Host header may name on a loopback bind, and an Origin may name on any bind. */
  ownHosts: ReadonlySet<string>
  tokenDigest: Buffer | undefined
  options: McpHttpOptions
}

/**
 * @throws EdgefwdError EDGEFWD_ERR_MCP_HTTP: a malformed listen address, a non-loopback address
 *   without TLS and token file, an unreadable/empty/too open token file, unreadable or invalid TLS
 *   files, or an address that cannot be bound
 */
export async function startMcpHttp (options: McpHttpOptions): Promise<McpHttpServer> {
  const { host, port } = parseListen(options.listen)
  const loopback = isLoopback(host)
  if (!loopback && (options.tls === undefined || options.tokenFile === undefined)) {
    const missing = [options.tls === undefined ? 'mcp.http.tls' : '', options.tokenFile === undefined ? 'mcp.http.tokenFile' : ''].filter(s => s !== '')
    throw mcpError(`mcp.http.listen ${options.listen} is not a loopback address, and the MCP endpoint is only served beyond loopback with TLS and a bearer token (missing: ${missing.join(' and ')})`,
      'listen on 127.0.0.1 (reach it through an SSH tunnel), or set both mcp.http.tls (cert, key) and mcp.http.tokenFile')
  }
  if (!Number.isSafeInteger(options.maxBodyBytes) || options.maxBodyBytes < 1) {
    throw mcpError(`maxBodyBytes must be a positive integer, not ${options.maxBodyBytes}`, 'a few hundred KiB is plenty for MCP requests')
  }
  const token = options.tokenFile === undefined ? undefined : await readToken(options.tokenFile)
  const tls = options.tls === undefined ? undefined : await readTls(options.tls)

  const serverOptions = { connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS }
  const sockets = new Set<Socket>()
  let server: Server
  try {
    server = tls === undefined
      ? createHttpServer(serverOptions)
      : createHttpsServer({ ...serverOptions, ...tls, handshakeTimeout: HEADERS_TIMEOUT_MS })
  } catch (err) {
    throw mcpError(`the TLS certificate or key of mcp.http.tls cannot be used: ${err instanceof Error ? err.message : String(err)}`,
      'mcp.http.tls.cert must be a PEM certificate and mcp.http.tls.key its PEM private key', err)
  }
  server.headersTimeout = HEADERS_TIMEOUT_MS
  server.requestTimeout = REQUEST_TIMEOUT_MS
  // Raw sockets, TLS handshakes included: closeAllConnections() knows only HTTP connections.
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  await listenOn(server, host, port, err => mcpError(`the MCP endpoint cannot listen on ${options.listen}: ${err.code ?? err.message}`, listenHint(err.code, 'mcp.http.listen'), err))
  const bound = server.address() as AddressInfo
  const address = bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`
  const scheme = tls === undefined ? 'http' : 'https'
  const endpoint: Endpoint = {
    scheme,
    address,
    port: bound.port,
    loopback,
    ownHosts: ownHosts(bound),
    tokenDigest: token === undefined ? undefined : sha256(token),
    options,
  }
  // Requests are taken once the endpoint is known (its port is only known after binding).
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res, endpoint).catch((err: unknown) => {
      // handle() answers its own refusals; this is a failure of the server factory or the SDK.
      options.logger.error({ err }, 'mcp http: request failed')
      if (!res.headersSent) sendError(res, 500, -32603, 'internal error (see the edgefwd mcp log)')
      else res.destroy()
    })
  })
  const url = `${scheme}://${address}${MCP_PATH}`
  // Not a field named "token": the logger censors those (src/observe/log.ts).
  options.logger.info({ url, auth: token === undefined ? 'none' : 'bearer' }, 'mcp http endpoint listening')

  let closing: Promise<void> | undefined
  return {
    address,
    url,
    close: async () => {
      closing ??= new Promise<void>(resolve => {
        const force = setTimeout(() => { for (const socket of sockets) socket.destroy() }, CLOSE_GRACE_MS)
        server.close(() => {
          clearTimeout(force)
          resolve()
        })
        server.closeIdleConnections()
      })
      await closing
    },
  }
}

async function handle (req: IncomingMessage, res: ServerResponse, endpoint: Endpoint): Promise<void> {
  const { options } = endpoint
  const remote = remoteOf(req)
  const refuse = (status: number, reason: McpHttpRejectReason, detail: string, headers: Record<string, string> = {}): void => {
    options.onReject?.({ reason, detail, remote })
    options.logger.debug({ remote, reason, status }, 'mcp http: request refused')
    sendError(res, status, reason === 'too_large' ? INVALID_REQUEST : SERVER_ERROR, detail, headers)
  }

  const path = (req.url ?? '/').split('?', 1)[0] ?? '/'
  if (path !== MCP_PATH) return refuse(404, 'not_found', `not found: the MCP endpoint is ${MCP_PATH}`)
  if (endpoint.loopback && !hostAllowed(req.headers.host, endpoint)) {
    return refuse(403, 'forbidden_host', `forbidden: Host ${clip(req.headers.host ?? '(none)')} is not this loopback endpoint`)
  }
  const origin = req.headers.origin
  if (origin !== undefined && !originAllowed(origin, endpoint)) {
    return refuse(403, 'forbidden_origin', `forbidden: Origin ${clip(origin)} may not call this endpoint`)
  }
  let caller: HttpCaller = { remote, token: undefined }
  if (endpoint.tokenDigest !== undefined) {
    const presented = bearerOf(req.headers.authorization)
    if (presented === undefined) {
      return refuse(401, 'unauthorized', 'unauthorized: this endpoint needs Authorization: Bearer <token>', { 'WWW-Authenticate': 'Bearer realm="edgefwd-mcp"' })
    }
    const digest = sha256(presented)
    if (!timingSafeEqual(digest, endpoint.tokenDigest)) {
      return refuse(401, 'unauthorized', 'unauthorized: the bearer token is not the one configured', { 'WWW-Authenticate': 'Bearer realm="edgefwd-mcp", error="invalid_token"' })
    }
    caller = { remote, token: digest.toString('hex').slice(0, FINGERPRINT_HEX) }
  }
  if (req.method !== 'POST') {
    options.logger.debug({ remote, method: req.method }, 'mcp http: method not allowed')
    return sendError(res, 405, SERVER_ERROR, `method ${req.method ?? '?'} not allowed: this stateless endpoint takes POST only (no sessions, no standalone SSE stream)`, { Allow: 'POST' })
  }

  const body = await readBody(req, options.maxBodyBytes)
  if (body === 'aborted') {
    // The client left, or node's requestTimeout cut a body that came too slowly (node answered 408).
    options.logger.debug({ remote }, 'mcp http: the request body did not arrive whole')
    return
  }
  if (body === 'too_large') {
    // Connection: close makes node end the connection once the answer is sent, and with it
    // the rest of the body: nothing past the limit is read into memory.
    return refuse(413, 'too_large', `request too large: more than ${options.maxBodyBytes} bytes (the limit of this endpoint)`, { Connection: 'close' })
  }

  const request = new Request(`${endpoint.scheme}://${endpoint.address}${req.url ?? MCP_PATH}`, { method: 'POST', headers: webHeaders(req), body })
  const authInfo: AuthInfo | undefined = caller.token === undefined
    ? undefined
    : { token: caller.token, clientId: `token:${caller.token}`, scopes: [], extra: { remote } }
  const server = options.newServer(caller)
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true, maxRequestBodySize: options.maxBodyBytes })
  // Answered or abandoned, the per-request server goes: this also ends a handler still running for a client that left.
  res.once('close', () => {
    server.close().catch((err: unknown) => { options.logger.warn({ err }, 'mcp http: closing a request\'s server failed') })
  })
  await server.connect(transport)
  const response = await transport.handleRequest(request, authInfo === undefined ? undefined : { authInfo })
  await writeResponse(response, res)
}

/** The body; 'too_large' past `max` bytes (declared or counted), never holding more than `max`. */
async function readBody (req: IncomingMessage, max: number): Promise<Buffer | 'too_large' | 'aborted'> {
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > max) return 'too_large'
  return await new Promise<Buffer | 'too_large' | 'aborted'>(resolve => {
    const chunks: Buffer[] = []
    let size = 0
    const done = (): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('close', onClose)
      req.off('error', onClose)
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > max) {
        done()
        chunks.length = 0
        resolve('too_large')
      } else {
        chunks.push(chunk)
      }
    }
    const onEnd = (): void => {
      done()
      resolve(Buffer.concat(chunks, size))
    }
    const onClose = (): void => {
      done()
      resolve('aborted')
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('close', onClose)
    req.on('error', onClose)
  })
}

/** The SDK's web Response onto node's ServerResponse, its body streamed (an SSE stream as well as JSON). */
async function writeResponse (response: Response, res: ServerResponse): Promise<void> {
  const headers: Record<string, string> = {}
  response.headers.forEach((value, name) => { headers[name] = value })
  res.writeHead(response.status, headers)
  if (response.body === null) {
    res.end()
    return
  }
  const reader = response.body.getReader()
  const onClose = (): void => { reader.cancel().catch(() => {}) }
  res.once('close', onClose)
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done || res.destroyed) break
      if (!res.write(value)) await drained(res)
    }
    res.end()
  } finally {
    res.off('close', onClose)
  }
}

async function drained (res: ServerResponse): Promise<void> {
  await new Promise<void>(resolve => {
    const done = (): void => {
      clearTimeout(timer)
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    const timer = setTimeout(() => {
      res.destroy(new Error(`the client read nothing of its answer for ${DRAIN_TIMEOUT_MS} ms`))
      done()
    }, DRAIN_TIMEOUT_MS)
    res.on('drain', done)
    res.on('close', done)
  })
}

function sendError (res: ServerResponse, status: number, code: number, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } })
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) })
  res.end(body)
}

function webHeaders (req: IncomingMessage): Headers {
  const headers = new Headers()
  const raw = req.rawHeaders
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string
    if (!HOP_HEADERS.has(name.toLowerCase())) headers.append(name, raw[i + 1] as string)
  }
  return headers
}

function bearerOf (authorization: string | undefined): string | undefined {
  const m = /^Bearer +(\S+) *$/i.exec(authorization ?? '')
  return m?.[1]
}

function hostAllowed (hostHeader: string | undefined, endpoint: Endpoint): boolean {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostHeader ?? '')
  if (m === null) return false
  const defaultPort = endpoint.scheme === 'https' ? 443 : 80
  const port = m[2] === undefined ? defaultPort : Number(m[2])
  return port === endpoint.port && endpoint.ownHosts.has((m[1] ?? '').toLowerCase())
}

function originAllowed (origin: string, endpoint: Endpoint): boolean {
  try {
    // An opaque origin ("null") does not parse: refused, as the SDK's validateOriginHeader does.
    return endpoint.ownHosts.has(new URL(origin).hostname.toLowerCase())
  } catch {
    return false
  }
}

/** Loopback names plus the bound address itself, unless it is the unspecified one (0.0.0.0, ::). */
function ownHosts (bound: AddressInfo): Set<string> {
  const hosts = new Set(LOOPBACK_NAMES)
  if (bound.address !== '0.0.0.0' && bound.address !== '::') {
    hosts.add(bound.family === 'IPv6' ? canonicalV6(bound.address) : bound.address)
  }
  return hosts
}

function parseListen (listen: string): { host: string, port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(listen)
  const host = m?.[1] ?? m?.[2]
  const port = Number(m?.[3])
  if (m === null || host === undefined || port > 65535 || (m[1] !== undefined && isIP(m[1]) !== 6)) {
    throw mcpError(`mcp.http.listen "${listen}" is not ADDRESS:PORT`, 'e.g. 127.0.0.1:7465, or an IPv6 address in brackets: [::1]:7465')
  }
  return { host, port }
}

/** 127.0.0.0/8, ::1, an IPv4-mapped 127.x address, or the name localhost. */
function isLoopback (host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true
  switch (isIP(host)) {
    case 4: return host.startsWith('127.')
    case 6: {
      const v6 = canonicalV6(host)
      return v6 === '[::1]' || v6.startsWith('[::ffff:7f')
    }
    default: return false
  }
}

/** "[compressed lower-case form]", as URL writes it (0:0:0:0:0:0:0:1 -> [::1]). */
function canonicalV6 (address: string): string {
  return new URL(`http://[${address}]/`).hostname
}

/** A header a client chose, short enough for one audit line. */
function clip (text: string): string {
  return text.length > 100 ? `${text.slice(0, 100)}...` : text
}

function remoteOf (req: IncomingMessage): string {
  const { remoteAddress, remotePort } = req.socket
  if (remoteAddress === undefined) return 'unknown'
  return isIP(remoteAddress) === 6 ? `[${remoteAddress}]:${remotePort ?? 0}` : `${remoteAddress}:${remotePort ?? 0}`
}

function sha256 (text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}

async function readToken (path: string): Promise<string> {
  await checkPrivate(path, 'token file', 'mcp.http.tokenFile')
  const token = (await readText(path, 'token file', 'mcp.http.tokenFile')).trim()
  if (token === '') throw mcpError(`the MCP token file ${path} is empty`, 'write one token into it, e.g. openssl rand -hex 32 > the file')
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw mcpError(`the MCP token file ${path} does not hold one token (printable ASCII, no spaces)`, 'write one token into it, e.g. openssl rand -hex 32 > the file')
  }
  return token
}

async function readTls (tls: { cert: string, key: string }): Promise<{ cert: string, key: string }> {
  await checkPrivate(tls.key, 'TLS key file', 'mcp.http.tls.key')
  return { cert: await readText(tls.cert, 'TLS certificate file', 'mcp.http.tls.cert'), key: await readText(tls.key, 'TLS key file', 'mcp.http.tls.key') }
}

/** A secret's file must be a regular file nobody but its owner (and root) can read or change. */
async function checkPrivate (path: string, what: string, key: string): Promise<void> {
  let mode: number
  try {
    const info = await stat(path)
    if (!info.isFile()) throw mcpError(`the MCP ${what} ${path} is not a regular file`, `check ${key}`)
    mode = info.mode
  } catch (err) {
    if (err instanceof EdgefwdError) throw err
    throw mcpError(`the MCP ${what} ${path} cannot be read: ${fsErrorReason(err)}`, `check ${key}`, err)
  }
  if ((mode & 0o077) !== 0) {
    throw mcpError(`the MCP ${what} ${path} is open to group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')})`, `chmod 600 ${path}`)
  }
}

async function readText (path: string, what: string, key: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    throw mcpError(`the MCP ${what} ${path} cannot be read: ${fsErrorReason(err)}`, `check ${key}`, err)
  }
}

function mcpError (message: string, hint: string, cause?: unknown): EdgefwdError {
  return new EdgefwdError('EDGEFWD_ERR_MCP_HTTP', message, cause === undefined ? { hint } : { cause, hint })
}
