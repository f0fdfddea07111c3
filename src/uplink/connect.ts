/**
 * Opening MQTT-over-TLS connections to the broker with the TLS material in use *now*.
 *
 * mqtt.js builds each (re)connection's socket with a stream builder. Ours asks a provider for the
 * credentials every time, so a certificate reloaded by TlsMaterialSource is used from the next
 * connection on, while the current one is left alone (no buffered or in-flight data is touched:
 * a reload is not a disconnect). Verification is never off (pki/tls-options.ts).
 *
 * probeBroker() connects once, waits for CONNACK and disconnects: `edgefwd certs check --url`
 * uses it to tell an operator whether the broker accepts this gateway, and if not, why
 * (pki/tls-errors.ts classifies the failure).
 */
import { isIP } from 'node:net'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
// Before mqtt: it replaces how mqtt-packet's writer caches packet lengths (see the module).
import '../mqtt-length-cache.js'
import { MqttClient, type IClientOptions, type IConnackPacket, type IStream } from 'mqtt'
import { EdgefwdError, isEdgefwdError } from '../errors.js'
import { classifyTlsError, type TlsErrorContext } from '../pki/tls-errors.js'
import { clientTlsOptions, type TlsCredentials } from '../pki/tls-options.js'
import { systemClock, type Clock, type ClockTimer } from '../clock.js'

export interface BrokerAddress {
  url: string
  host: string
  port: number
}

/** mqtts://host[:port] (or ssl://, tls://) → host and port; 8883 by default. */
export function parseBrokerUrl (url: string): BrokerAddress {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new EdgefwdError('EDGEFWD_ERR_USAGE', `not a broker URL: ${url}`, { hint: 'write it as mqtts://host:8883' })
  }
  if (!['mqtts:', 'ssl:', 'tls:'].includes(parsed.protocol)) {
    throw new EdgefwdError('EDGEFWD_ERR_USAGE', `broker URL ${url} is not mqtts://: edgefwd connects with mutual TLS only`)
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1')
  return { url, host, port: parsed.port === '' ? 8883 : Number(parsed.port) }
}

/**
 * A stream builder for `new MqttClient(builder, options)`: a TLS socket to `address` with the
 * credentials `credentials()` returns at that moment. `onSocket` sees each new socket (tests and
 * diagnostics: whether its handshake completed).
 */
export function tlsStreamBuilder (address: BrokerAddress, credentials: () => TlsCredentials, onSocket?: (socket: TLSSocket) => void): () => IStream {
  return () => {
    const socket = tlsConnect({
      host: address.host,
      port: address.port,
      ...clientTlsOptions(credentials(), isIP(address.host) === 0 ? { servername: address.host } : {}),
    })
    // Keys are derived only once the server has answered our hello (TLS 1.2 and 1.3 alike).
    socket.once('keylog', () => { answered.add(socket) })
    socket.once('secureConnect', () => { secured.set(socket, performance.now()) })
    onSocket?.(socket)
    return socket
  }
}

const answered = new WeakSet<TLSSocket>()
/** When each socket's handshake completed (performance.now()). */
const secured = new WeakMap<TLSSocket, number>()

/**
 * What a failed connection's socket tells tls-errors.ts (a socket from tlsStreamBuilder, or none
 * yet): whether the handshake was done; whether the server answered our hello (a reset before
 * that is the network or a proxy, never the broker refusing a certificate it never received);
 * and how long after the handshake the connection ended (read when the failure is seen).
 */
export function handshakeContext (socket: TLSSocket | undefined): Pick<TlsErrorContext, 'handshakeDone' | 'serverAnswered' | 'closedAfterHandshakeMs'> {
  if (socket === undefined) return { handshakeDone: false }
  const at = secured.get(socket)
  return { handshakeDone: socket.authorized, serverAnswered: answered.has(socket), ...(at === undefined ? {} : { closedAfterHandshakeMs: performance.now() - at }) }
}

export interface ConnectOptions {
  clientId: string
  /** 5 (default) or 4 (MQTT 3.1.1). */
  protocolVersion?: 4 | 5
  timeoutMs?: number
  keepaliveS?: number
  will?: IClientOptions['will']
  /** The TLS files in use, named in error messages. */
  files?: TlsErrorContext['files']
  /** Bounds the wait for CONNACK; the real clock by default. */
  clock?: Clock
}

/**
 * Opens one MQTT connection (clean start, no reconnects, no offline queue) and waits for CONNACK,
 * bounded by the timeout. A failure is one specific EdgefwdError: a TLS problem
 * (EDGEFWD_ERR_TLS_*, pki/tls-errors.ts), a CONNACK refusal (EDGEFWD_ERR_UPLINK_REFUSED), or
 * anything else (EDGEFWD_ERR_UPLINK_CONNECT). Used by the uplink session and by probeBroker().
 */
export async function connectBroker (address: BrokerAddress, credentials: () => TlsCredentials, options: ConnectOptions): Promise<{ client: MqttClient, connack: IConnackPacket }> {
  const timeoutMs = options.timeoutMs ?? 10_000
  let socket: TLSSocket | undefined
  const client = new MqttClient(tlsStreamBuilder(address, credentials, s => { socket = s }), {
    clientId: options.clientId,
    protocolVersion: options.protocolVersion ?? 5,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: timeoutMs,
    queueQoSZero: false,
    // mqtt-packet otherwise builds a cache of 65536 two-byte Buffers (6.6 MiB of heap, a sixth of
    // the default memory budget's) on the first packet, to save one small allocation per packet.
    writeCache: false,
    ...(options.keepaliveS === undefined ? {} : { keepalive: options.keepaliveS }),
    ...(options.will === undefined ? {} : { will: options.will }),
  } satisfies IClientOptions)
  const clock = options.clock ?? systemClock
  let timer: ClockTimer | undefined
  try {
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      // mqtt.js's connectTimeout closes the stream; this bounds the wait should it not.
      timer = clock.setTimer(() => { reject(new EdgefwdError('EDGEFWD_ERR_UPLINK_CONNECT', `no answer from ${address.url} within ${timeoutMs} ms`)) }, timeoutMs + 1000)
      client.once('connect', resolve)
      client.once('error', reject)
      // A broker that refuses our certificate without a TLS alert just closes (see tls-errors.ts).
      client.once('close', () => { reject(undefined) })
    })
    client.removeAllListeners('error')
    client.removeAllListeners('close')
    return { client, connack }
  } catch (err) {
    // Read before ending the client, so the time since the handshake is the broker's, not ours.
    const handshake = handshakeContext(socket)
    await client.endAsync(true).catch(() => {})
    if (err instanceof EdgefwdError) throw err
    throw classifyConnectError(err, { url: address.url, files: options.files, ...handshake })
  } finally {
    clock.clearTimer(timer)
  }
}

/** What a failed MQTT-over-TLS connection means: a TLS problem, a CONNACK refusal, or an outage. */
export function classifyConnectError (err: unknown, context: TlsErrorContext): EdgefwdError {
  const tls = classifyTlsError(err, context)
  if (tls !== undefined) return tls
  const code = (err as { code?: unknown } | undefined)?.code
  // A CONNACK refusal: an MQTT 5 reason code >= 0x80, or a 3.1.1 return code 1-5.
  if (typeof code === 'number' && code !== 0) {
    return new EdgefwdError('EDGEFWD_ERR_UPLINK_REFUSED', `broker ${context.url} refused the connection: ${describeError(err)} (reason code ${code})`, { cause: err })
  }
  if ((err === undefined || err === null) && context.handshakeDone === true && context.closedAfterHandshakeMs !== undefined) {
    return new EdgefwdError('EDGEFWD_ERR_UPLINK_CONNECT',
      `${context.url} closed the connection ${Math.round(context.closedAfterHandshakeMs)} ms after the TLS handshake without a CONNACK: the broker is busy or not ready`, {
        hint: 'an outage, not a refused certificate: a broker refusing one closes at once (NATS answers CONNECT only once JetStream is available)'
      })
  }
  return new EdgefwdError('EDGEFWD_ERR_UPLINK_CONNECT', `cannot connect to ${context.url}: ${describeError(err)}`, { cause: err })
}

/** Connects once with these credentials; resolves when the broker sent CONNACK, else throws the classified error. */
export async function probeBroker (address: BrokerAddress, credentials: TlsCredentials, options: ConnectOptions): Promise<void> {
  const { client } = await connectBroker(address, () => credentials, options)
  await client.endAsync(true).catch(() => {})
}

/** One line for a socket or protocol error (code and message); `undefined`: a bare close. */
export function describeError (err: unknown): string {
  if (err === undefined) return 'the connection closed before the broker answered'
  const e = err as { code?: unknown, message?: unknown }
  return [e.code, e.message].filter(x => typeof x === 'string' || typeof x === 'number').join(' ') || String(err)
}

/**
 * A bounded label for a failed connection attempt: `refused_<CONNACK reason code>`,
 * `tls_<problem>` (from the EDGEFWD_ERR_TLS_* code) or `connect` (network, timeout, anything else).
 */
export function connectFailureReason (err: unknown): string {
  if (isEdgefwdError(err, 'EDGEFWD_ERR_UPLINK_REFUSED')) {
    const code = (err.cause as { code?: unknown } | undefined)?.code
    return typeof code === 'number' && Number.isInteger(code) && code > 0 && code < 256 ? `refused_${code}` : 'refused'
  }
  if (isEdgefwdError(err) && err.code.startsWith('EDGEFWD_ERR_TLS_')) return `tls_${err.code.slice('EDGEFWD_ERR_TLS_'.length).toLowerCase()}`
  return 'connect'
}
