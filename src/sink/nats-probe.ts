/**
 * One NATS login, done by hand, before the NATS client's own: so that the sink's first
 * connection fails with a specific error, at once, when its certificate is refused.
 *
 * Why: with TLS 1.3 a server checks the client certificate after the client finished its
 * handshake, so a refusal arrives as an alert on an open socket. The NATS client (nats.js 3.4,
 * measured against nats-server 2.9) then neither settles connect() nor honours its timeout: a
 * certificate of another CA hung the sink for good. Here the exchange is the protocol's first
 * steps: read the server's INFO line, start TLS on the same socket (as the server asks), send
 * CONNECT and PING, and wait for PONG (logged in), `-ERR` (refused, e.g. "Authorization
 * Violation" for a certificate that maps to no user) or a TLS alert (classified by
 * pki/tls-errors.ts). Everything is closed before it returns, and bounded by `timeoutMs`.
 */
import { createConnection, type Socket } from 'node:net'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { EdgefwdError } from '../errors.js'
import { classifyTlsError } from '../pki/tls-errors.js'
import { clientTlsOptions, type TlsCredentials } from '../pki/tls-options.js'

/** The longest line the probe reads (a server's INFO is well under 4 KiB). */
const MAX_LINE = 64 * 1024

/**
 * Logs in once at `url` (nats://HOST:PORT or tls://HOST:PORT) and logs out.
 * @throws EDGEFWD_ERR_TLS_* (a TLS problem), EDGEFWD_ERR_UPLINK_REFUSED (the server's -ERR),
 *   EDGEFWD_ERR_UPLINK_CONNECT (no server, no answer in time, not a NATS server)
 */
export async function probeNats (url: string, credentials: TlsCredentials, timeoutMs: number): Promise<void> {
  const { hostname, port } = new URL(url)
  const host = hostname.replace(/^\[(.*)\]$/, '$1')
  let socket: Socket | TLSSocket = createConnection({ host, port: Number(port === '' ? 4222 : port) })
  let handshakeDone = false
  let buffered = ''
  let timer: NodeJS.Timeout | undefined
  try {
    return await new Promise<void>((resolve, reject) => {
      const fail = (err: unknown): void => {
        reject(classifyTlsError(err, { url, handshakeDone }) ??
          new EdgefwdError('EDGEFWD_ERR_UPLINK_CONNECT', `cannot connect to ${url}: ${describe(err, handshakeDone)}`, { cause: err }))
      }
      timer = setTimeout(() => { fail(new Error(`no answer within ${timeoutMs} ms`)) }, timeoutMs)
      const lines = (chunk: Buffer): string[] => {
        buffered += chunk.toString('utf8')
        if (buffered.length > MAX_LINE) throw new Error('not a NATS server (no line end in 64 KiB)')
        const parts = buffered.split('\r\n')
        buffered = parts.pop() ?? ''
        return parts
      }
      const onLogin = (line: string): void => {
        if (line === 'PONG') resolve()
        else if (line.startsWith('-ERR')) {
          reject(new EdgefwdError('EDGEFWD_ERR_UPLINK_REFUSED', `${url} refused the sink: ${line.slice(4).trim().replace(/^'|'$/g, '')}`, {
            hint: 'the certificate\'s subject (e.g. CN=sink-1) must be a user of the JetStream account (verify_and_map)'
          }))
        }
      }
      const login = (tls: TLSSocket): void => {
        handshakeDone = true
        tls.on('data', (chunk: Buffer) => { try { lines(chunk).forEach(onLogin) } catch (err) { fail(err) } })
        tls.write(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, tls_required: true, name: 'edgefwd-sink-probe', lang: 'node', protocol: 1 })}\r\nPING\r\n`)
      }
      const onInfo = (chunk: Buffer): void => {
        let first: string | undefined
        try { first = lines(chunk)[0] } catch (err) { fail(err); return }
        if (first === undefined) return
        socket.off('data', onInfo)
        if (!first.startsWith('INFO ')) { fail(new Error(`not a NATS server (it said ${JSON.stringify(first.slice(0, 40))})`)); return }
        const tls = tlsConnect({ ...clientTlsOptions(credentials), socket, ...(isIpLiteral(host) ? {} : { servername: host }) })
        tls.on('error', fail)
        tls.on('close', () => { fail(undefined) })
        tls.once('secureConnect', () => { login(tls) })
        socket = tls
      }
      socket.on('data', onInfo)
      socket.on('error', fail)
      socket.on('close', () => { fail(undefined) })
    })
  } finally {
    clearTimeout(timer)
    socket.destroy()
  }
}

function isIpLiteral (host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':')
}

function describe (err: unknown, handshakeDone: boolean): string {
  if (err === undefined) return handshakeDone ? 'the server closed the connection after the TLS handshake' : 'the connection closed before the server answered'
  const e = err as { code?: unknown, message?: unknown }
  return [e.code, e.message].filter(x => typeof x === 'string').join(' ') || String(err)
}
