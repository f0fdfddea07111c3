/**
 * The metrics and health endpoint (observe.metrics.listen): `/metrics` for Prometheus,
 * `/healthz` (is the process alive and sane) and `/readyz` (is it delivering) for supervisors
 * and `edgefwd status`. node:http only; read-only; loopback by default.
 *
 * A scraper or health checker is a client we do not control, so every wait is bounded: headers
 * and whole requests time out after a few seconds, and close() drops keep-alive connections
 * (idle ones at once, busy ones after CLOSE_GRACE_MS) instead of waiting for the client to leave.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { EdgefwdError } from '../errors.js'
import type { Logger } from './log.js'
import type { MetricsRegistry } from './metrics.js'

export interface HealthCheck {
  ok: boolean
  /** One short phrase, e.g. "online", "offline for 6 min", "open". */
  detail: string
}

export interface HealthReport {
  ok: boolean
  checks: Record<string, HealthCheck>
}

export interface ObserveServerOptions {
  /** An IP address (or a name that resolves to one). */
  host: string
  /** 0 picks a free port; `port` of the result says which. */
  port: number
  registry: MetricsRegistry
  health: () => HealthReport
  ready: () => HealthReport
  logger: Logger
  /** Sent as `Server: edgefwd/<version>`. */
  version?: string
}

export interface ObserveServer {
  /** host:port as bound, an IPv6 host in brackets ("[::1]:9464"). */
  address: string
  port: number
  /** Stops listening and closes every connection; resolves within about CLOSE_GRACE_MS. */
  close (): Promise<void>
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** A response in progress when close() is called gets this long before its socket is cut. */
const CLOSE_GRACE_MS = 2000
/** Prometheus' default scrape timeout is 10 s; a client slower than this to send a GET is not a scraper. */
const HEADERS_TIMEOUT_MS = 5000
const REQUEST_TIMEOUT_MS = 10_000
/** How often Node enforces the two timeouts above; its default (30 s) would make them 30 s late. */
const TIMEOUT_CHECK_INTERVAL_MS = 1000

/** What to do about an error listen() met, naming the setting `key` that holds the address. */
export function listenHint (code: string | undefined, key: string): string {
  switch (code) {
    case 'EADDRINUSE': return `another process listens there; pick another port in ${key}`
    case 'EACCES': return `ports below 1024 need privileges; use a port above 1024 in ${key}`
    case 'EADDRNOTAVAIL': return `the host part of ${key} is not an address of this machine`
    default: return `check ${key}`
  }
}

/**
 * @throws EdgefwdError EDGEFWD_ERR_METRICS_LISTEN when the address cannot be bound
 */
export async function startObserveServer (options: ObserveServerOptions): Promise<ObserveServer> {
  const { host, port, logger } = options
  const server = createServer({ connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS }, (req, res) => {
    handle(req, res, options).catch((err: unknown) => {
      // handle() answers its own failures; this is the last resort if answering failed too.
      logger.error({ err }, 'observe endpoint: request failed')
      res.destroy()
    })
  })
  server.headersTimeout = HEADERS_TIMEOUT_MS
  server.requestTimeout = REQUEST_TIMEOUT_MS
  await listenOn(server, host, port, err => {
    const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
    return new EdgefwdError('EDGEFWD_ERR_METRICS_LISTEN', `the metrics endpoint cannot listen on ${where}: ${err.code ?? err.message}`,
      { cause: err, hint: listenHint(err.code, 'observe.metrics.listen') })
  })
  const bound = server.address() as AddressInfo
  const address = bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`
  logger.info({ address }, 'observe endpoint listening')

  let closing: Promise<void> | undefined
  return {
    address,
    port: bound.port,
    close: async () => {
      closing ??= new Promise<void>(resolve => {
        const force = setTimeout(() => { server.closeAllConnections() }, CLOSE_GRACE_MS)
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

/** server.listen() as a promise: listening, or rejected with what `fail` makes of the error. */
export async function listenOn (server: Server, host: string, port: number, fail: (err: NodeJS.ErrnoException) => Error): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening)
      reject(fail(err))
    }
    const onListening = (): void => {
      server.off('error', onError)
      resolve()
    }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen({ host, port })
  })
}

async function handle (req: IncomingMessage, res: ServerResponse, options: ObserveServerOptions): Promise<void> {
  if (options.version !== undefined) res.setHeader('Server', `edgefwd/${options.version}`)
  res.setHeader('Cache-Control', 'no-store')
  const path = (req.url ?? '/').split('?', 1)[0]
  const route = path === '/metrics' ? 'metrics' : path === '/healthz' ? 'health' : path === '/readyz' ? 'ready' : undefined
  if (route === undefined) return send(req, res, 404, 'text/plain; charset=utf-8', 'not found: try /metrics, /healthz or /readyz\n')
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD')
    return send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n')
  }

  let status = 200
  let type = METRICS_CONTENT_TYPE
  let body: string
  try {
    if (route === 'metrics') {
      body = await options.registry.render()
    } else {
      const report = route === 'health' ? options.health() : options.ready()
      status = report.ok ? 200 : 503
      type = 'application/json'
      body = `${JSON.stringify({ status: report.ok ? 'ok' : 'fail', checks: report.checks })}\n`
    }
  } catch (err) {
    options.logger.error({ err, path }, 'observe endpoint: could not build the answer')
    return send(req, res, 500, 'text/plain; charset=utf-8', 'internal error (see the edgefwd log)\n')
  }
  send(req, res, status, type, body)
}

function send (req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) })
  res.end(req.method === 'HEAD' ? undefined : body)
}
