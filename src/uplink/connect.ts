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
import { MqttClient, type IClientOptions, type IStream } from 'mqtt'
import { EdgefwdError } from '../errors.js'
import { classifyTlsError, type TlsErrorContext } from '../pki/tls-errors.js'
import { clientTlsOptions, type TlsCredentials } from '../pki/tls-options.js'

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
    onSocket?.(socket)
    return socket
  }
}

export interface ProbeOptions {
  clientId: string
  /** 5 (default) or 4 (MQTT 3.1.1). */
  protocolVersion?: 4 | 5
  timeoutMs?: number
  files?: TlsErrorContext['files']
}

/** Connects once with these credentials; resolves when the broker sent CONNACK, else throws the classified error. */
export async function probeBroker (address: BrokerAddress, credentials: TlsCredentials, options: ProbeOptions): Promise<void> {
  let socket: TLSSocket | undefined
  const client = new MqttClient(tlsStreamBuilder(address, () => credentials, s => { socket = s }), {
    clientId: options.clientId,
    protocolVersion: options.protocolVersion ?? 5,
    reconnectPeriod: 0,
    connectTimeout: options.timeoutMs ?? 10_000,
    clean: true,
  } satisfies IClientOptions)
  const context = (): TlsErrorContext => ({ url: address.url, files: options.files, handshakeDone: socket?.authorized === true })
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new EdgefwdError('EDGEFWD_ERR_UPLINK_CONNECT', `no answer from ${address.url} within ${options.timeoutMs ?? 10_000} ms`)) }, (options.timeoutMs ?? 10_000) + 1000)
      const fail = (err: unknown): void => {
        clearTimeout(timer)
        reject(classifyTlsError(err, context()) ?? new EdgefwdError('EDGEFWD_ERR_UPLINK_CONNECT', `cannot connect to ${address.url}: ${describe(err)}`, { cause: err }))
      }
      client.once('connect', () => { clearTimeout(timer); resolve() })
      client.once('error', fail)
      // A broker that refuses our certificate without a TLS alert just closes (see tls-errors.ts).
      client.once('close', () => { fail(undefined) })
    })
  } finally {
    await client.endAsync(true).catch(() => {})
  }
}

function describe (err: unknown): string {
  if (err === undefined) return 'the connection closed before the broker answered'
  const e = err as { code?: unknown, message?: unknown }
  return [e.code, e.message].filter(x => typeof x === 'string').join(' ')
}
