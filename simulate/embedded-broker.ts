/**
 * An MQTT broker in this process, for simulation and tests: aedes behind a Node TLS server that
 * demands a client certificate from `ca` (mutual TLS, as a production broker would).
 *
 * aedes 1.2 speaks MQTT 3.1.1 only (it refuses an MQTT 5 CONNECT), so clients of this broker
 * connect with `protocolVersion: 4`; MQTT 5 is covered by the Mosquitto tests.
 *
 * How a refused client certificate looks from the client: Node's TLS server sends no alert. It
 * accepts any peer certificate during the handshake and checks it afterwards; this broker then
 * destroys the socket (see the comment on createServer below). With TLS 1.2 the client sees
 * ECONNRESET "Client network socket disconnected before secure TLS connection was established";
 * with TLS 1.3, whose handshake is over for the client before the server has judged its
 * certificate, it sees 'secureConnect' and then a close, usually without any error (measured in
 * test/integration/broker-tls.test.ts; src/pki/tls-errors.ts classifies both).
 */
import { createServer } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import type { AddressInfo, Socket } from 'node:net'
import { Aedes } from 'aedes'
import type { AedesPublishPacket, Client } from 'aedes'

export interface EmbeddedBrokerOptions {
  host?: string
  /** 0 (the default) picks a free port. */
  port?: number
  /** PEM strings: the CA client certificates must chain to, and the broker's own certificate and key. */
  tls: { ca: string, cert: string, key: string }
  /** Default true: a client without a valid certificate from `tls.ca` is disconnected right after the TLS handshake, before MQTT. */
  requireClientCert?: boolean
  logger?: BrokerLogger
  /**
   * Whether to accept a client past TLS, by its MQTT client id and certificate CN; false sends a
   * CONNACK refusal (3.1.1 return code 5, not authorized), as a broker's ACL would. Default: all.
   */
  authorize?: (client: { clientId: string, commonName: string | undefined }) => boolean
}

/** The subset of a pino logger the broker uses. */
export interface BrokerLogger {
  debug: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
}

/** Who connected: the CN of the client certificate and the MQTT client id. */
export interface ClientIdentity {
  clientId: string
  /** 4 for MQTT 3.1.1 (the only one aedes 1.2 accepts). */
  protocolVersion: number
  /** undefined when no client certificate was presented (requireClientCert: false). */
  commonName: string | undefined
}

export interface BrokerMessage {
  topic: string
  payload: Buffer
  qos: 0 | 1 | 2
  retain: boolean
  /** The publishing client's id. */
  clientId: string
}

/** A TLS connection refused for its client certificate (`reason`: Node's verify code, or 'no client certificate'), or whose handshake failed (the error code). */
export interface RefusedConnection {
  reason: string
}

export interface EmbeddedBroker {
  readonly port: number
  /** `mqtts://HOST:PORT` */
  readonly url: string
  /** Every client accepted so far (CONNACK sent), oldest first. */
  clients: () => ClientIdentity[]
  /** TLS connections refused for their certificate or failed in the handshake, oldest first. */
  refused: () => RefusedConnection[]
  /** Calls `listener` for every message a client publishes (not $SYS), after aedes has acknowledged and routed it; returns an unsubscribe function. */
  onPublish: (listener: (message: BrokerMessage) => void) => () => void
  /**
   * A broker restart that keeps its state, as Mosquitto with `persistence true` does: the
   * listener closes and every connection is cut; sessions (clean session false), their
   * subscriptions and queued QoS 1 messages stay in memory. start() listens again on the same port.
   */
  stop: () => Promise<void>
  start: () => Promise<void>
  /** Whether the listener is up. */
  listening: () => boolean
  /** Closes the server, every client socket and the broker. */
  close: () => Promise<void>
}

export async function startEmbeddedBroker (options: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const host = options.host ?? '127.0.0.1'
  const requireClientCert = options.requireClientCert ?? true
  const logger = options.logger
  const seen: ClientIdentity[] = []
  const refused: RefusedConnection[] = []
  const listeners = new Set<(message: BrokerMessage) => void>()
  const authorize = options.authorize
  const broker = await Aedes.createBroker(authorize === undefined
    ? {}
    : {
        authenticate: (client, _username, _password, done) => {
          if (authorize({ clientId: client.id, commonName: peerCommonName(client.conn as TLSSocket) })) { done(null, true); return }
          done(Object.assign(new Error('not authorized'), { returnCode: 5 as const }), false)
        }
      })
  // aedes 1.2 sends the PUBACK for a QoS 1 PUBLISH before it routes the message
  // (lib/handlers/publish.js), and emits 'publish' after delivering it to subscribers: a
  // listener may hear of a message after its publisher already holds the PUBACK.
  broker.on('publish', (packet: AedesPublishPacket, client: Client | null) => {
    if (client === null || packet.topic.startsWith('$SYS/')) return
    const message: BrokerMessage = {
      topic: packet.topic,
      payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload),
      qos: packet.qos,
      retain: packet.retain,
      clientId: client.id,
    }
    for (const listener of listeners) listener(message)
  })
  const sockets = new Set<Socket>()

  broker.on('clientReady', (client: Client) => {
    const identity = { clientId: client.id, protocolVersion: client.version, commonName: peerCommonName(client.conn as TLSSocket) }
    seen.push(identity)
    logger?.debug(identity, 'embedded broker: client connected')
  })
  broker.on('clientError', (client: Client, err: Error) => {
    logger?.debug({ clientId: client.id, err }, 'embedded broker: client error')
  })

  // rejectUnauthorized stays false on purpose, with the check done by hand below before aedes
  // sees the socket. With `rejectUnauthorized: true` Node destroys a socket whose certificate
  // fails verification just the same (after the handshake, no alert either way), but reports
  // only "ECONNRESET socket hang up" on tlsClientError; checking here records the real reason
  // (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...) so tests can assert on it. The one
  // visible difference: with `true`, a client sending no certificate at all gets a TLS alert
  // (certificate required); here it gets the same bare close as any other refused certificate.
  const server = createServer({
    ca: options.tls.ca,
    cert: options.tls.cert,
    key: options.tls.key,
    requestCert: requireClientCert,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
  }, (socket) => {
    if (requireClientCert && !socket.authorized) {
      // Without a certificate Node reports UNABLE_TO_GET_ISSUER_CERT, which would mislead.
      const peer = socket.getPeerCertificate()
      const reason = peer === null || Object.keys(peer).length === 0 ? 'no client certificate' : String(socket.authorizationError)
      refused.push({ reason })
      logger?.warn({ reason, remote: socket.remoteAddress }, 'embedded broker: client certificate refused')
      socket.destroy()
      return
    }
    broker.handle(socket)
  })
  // Raw sockets, so close() also ends connections still in their handshake.
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.on('tlsClientError', (err: Error & { code?: string }) => {
    refused.push({ reason: err.code ?? err.message })
    logger?.warn({ err }, 'embedded broker: TLS handshake failed')
  })

  const listen = async (port: number): Promise<void> => {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => { server.off('error', reject); resolve() })
    })
  }
  try {
    await listen(options.port ?? 0)
  } catch (err) {
    await new Promise<void>(resolve => broker.close(() => resolve()))
    throw err
  }
  const port = (server.address() as AddressInfo).port
  const urlHost = host.includes(':') ? `[${host}]` : host

  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closing ??= (async () => {
      const serverClosed = server.listening ? new Promise<void>(resolve => server.close(() => resolve())) : Promise.resolve()
      for (const socket of sockets) socket.destroy()
      await new Promise<void>(resolve => broker.close(() => resolve()))
      await serverClosed
    })()
    return await closing
  }

  const stop = async (): Promise<void> => {
    if (!server.listening) return
    const serverClosed = new Promise<void>(resolve => server.close(() => resolve()))
    for (const socket of sockets) socket.destroy()
    await serverClosed
  }
  const start = async (): Promise<void> => {
    if (server.listening || closing !== undefined) return
    await listen(port)
  }

  return {
    port,
    url: `mqtts://${urlHost}:${port}`,
    stop,
    start,
    listening: () => server.listening,
    clients: () => seen.map(c => ({ ...c })),
    refused: () => refused.map(r => ({ ...r })),
    onPublish: (listener) => {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },
    close,
  }
}

/**
 * The client certificate's CN, or undefined. getPeerCertificate() returns null once the socket is
 * closed: a flapping link can close it between CONNECT and 'clientReady' (seen in CI, an uncaught
 * TypeError in the flaky-cellular scenario).
 */
export function peerCommonName (socket: TLSSocket | undefined): string | undefined {
  if (socket === undefined || typeof socket.getPeerCertificate !== 'function') return undefined
  const cert = socket.getPeerCertificate() as ReturnType<TLSSocket['getPeerCertificate']> | null
  const subject = cert?.subject as Record<string, string | string[]> | undefined
  const cn = subject?.CN
  return Array.isArray(cn) ? cn[0] : cn
}
