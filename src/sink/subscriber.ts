/**
 * SinkSubscriber: the receiving side's MQTT client. Subscribes to the gateways' event topic
 * (optionally as an MQTT 5 shared subscription `$share/<group>/<topic>`) and hands each message
 * to a BatchReceiver (receiver.ts: decode, drop redelivered batches, write to the destination,
 * feed the SequenceVerifier when one is given).
 *
 * Delivery contract, in order, for each QoS 1 PUBLISH:
 *   decode → dedupe → write to the destination (and wait until it is durable there) → verifier → PUBACK.
 * The PUBACK is held back by overriding mqtt.js `handleMessage(packet, done)`: mqtt.js sends the
 * PUBACK from `done` (handlers/publish.js), for MQTT 3.1.1 and 5 alike, and handles the next
 * packet of the connection only after it, so lines come out in arrival order. A message the sink
 * cannot decode is acknowledged (a redelivery would not decode better), counted and logged as
 * one stderr line. A duplicate batch is acknowledged and not written. When the sink is closing,
 * a message that arrives is neither written nor acknowledged: the broker keeps it for the
 * session. "Written" means the destination's write() completed (destination.ts: stdout drained,
 * or the file appended and fdatasync'ed).
 *
 * Session: clean start false, so a sink that reconnects, or restarts with the same client id,
 * gets what was published while it was away. MQTT 5 needs a Session Expiry Interval for that
 * (default SESSION_EXPIRY_SECONDS); MQTT 3.1.1 sessions last until the broker drops them. Each
 * sink instance therefore needs its own client id, also within a share group.
 *
 * Reconnects: the first connection must succeed (a wrong URL or certificate is an error the user
 * sees at once, classified by pki/tls-errors.ts). After that mqtt.js reconnects every
 * `reconnectPeriodMs` (fixed period, bounded; a sink is one client, not a fleet, so no jitter)
 * and resubscribes when the broker did not keep the session.
 */
import type { TLSSocket } from 'node:tls'
// Before mqtt: it replaces how mqtt-packet's writer caches packet lengths (see the module).
import '../mqtt-length-cache.js'
import { MqttClient, type IClientOptions, type IPublishPacket } from 'mqtt'
import { EdgefwdError } from '../errors.js'
import { classifyTlsError } from '../pki/tls-errors.js'
import type { TlsCredentials } from '../pki/tls-options.js'
import { classifyConnectError, describeError, handshakeContext, tlsStreamBuilder, type BrokerAddress } from '../uplink/connect.js'
import { BatchReceiver } from './receiver.js'
import type { SinkSource, SinkStats, SourceOptions } from './source.js'

/** One day: a sink down for longer starts a fresh session (and misses what came meanwhile). */
export const SESSION_EXPIRY_SECONDS = 86_400

export interface SinkSubscriberOptions extends SourceOptions {
  address: BrokerAddress
  credentials: () => TlsCredentials
  /** 5 or 4 (MQTT 3.1.1). */
  protocolVersion: 4 | 5
  clientId: string
  /** The full filter, `$share/<group>/...` included. */
  topic: string
  reconnectPeriodMs?: number
  sessionExpirySeconds?: number
}

export type { SinkStats } from './source.js'

type State =
  | { kind: 'connecting' }
  | { kind: 'online', since: number }
  | { kind: 'offline', since: number }
  | { kind: 'closing' }
  | { kind: 'closed' }

export class SinkSubscriber implements SinkSource {
  readonly #options: SinkSubscriberOptions
  readonly #client: MqttClient
  readonly #receiver: BatchReceiver
  readonly #stats = { messages: 0, reconnects: 0 }
  #state: State = { kind: 'connecting' }
  #socket: TLSSocket | undefined
  /** The message being handled; close() waits for it so its lines are complete. */
  #inFlight: Promise<void> = Promise.resolve()
  #fail: (err: Error) => void = () => {}
  /** Rejects when the sink cannot go on (the output failed); never resolves. */
  readonly failed: Promise<never>

  private constructor (options: SinkSubscriberOptions) {
    this.#options = options
    this.#receiver = new BatchReceiver(options)
    this.failed = new Promise<never>((_resolve, reject) => { this.#fail = reject })
    this.failed.catch(() => {}) // observed by whoever awaits it; never an unhandled rejection
    const clientOptions: IClientOptions = {
      clientId: options.clientId,
      protocolVersion: options.protocolVersion,
      clean: false,
      reconnectPeriod: options.reconnectPeriodMs ?? 1000,
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      resubscribe: true,
      ...(options.protocolVersion === 5 ? { properties: { sessionExpiryInterval: options.sessionExpirySeconds ?? SESSION_EXPIRY_SECONDS } } : {}),
    }
    this.#client = new MqttClient(tlsStreamBuilder(options.address, options.credentials, s => { this.#socket = s }), clientOptions)
    this.#client.handleMessage = (packet, done) => { this.#onPublish(packet, done) }
  }

  /** Connects, subscribes and resolves once messages can flow; throws the classified error if the first connection fails. */
  static async open (options: SinkSubscriberOptions): Promise<SinkSubscriber> {
    const sink = new SinkSubscriber(options)
    try {
      await sink.#firstConnect()
      await sink.#subscribe()
    } catch (err) {
      sink.#state = { kind: 'closed' }
      await sink.#client.endAsync(true).catch(() => {})
      throw err
    }
    sink.#watch()
    return sink
  }

  /** How far the current socket's TLS handshake got, for classifying its failure. */
  #handshake (): ReturnType<typeof handshakeContext> {
    return handshakeContext(this.#socket)
  }

  get state (): State['kind'] {
    return this.#state.kind
  }

  stats (): SinkStats {
    return { ...this.#stats, ...this.#receiver.stats() }
  }

  /** Stops taking messages, finishes the one being written, disconnects (the session stays on the broker). */
  async close (): Promise<void> {
    if (this.#state.kind === 'closing' || this.#state.kind === 'closed') return
    this.#state = { kind: 'closing' }
    await this.#inFlight
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      this.#client.endAsync(false).catch(() => {}),
      new Promise<void>(resolve => { timer = setTimeout(resolve, 3000) }),
    ])
    clearTimeout(timer)
    if (!this.#client.disconnected) await this.#client.endAsync(true).catch(() => {})
    this.#state = { kind: 'closed' }
  }

  async #firstConnect (): Promise<void> {
    const { address } = this.#options
    const timeoutMs = (this.#options.connectTimeoutMs ?? 10_000) + 1000
    await new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer)
        this.#client.off('connect', onConnect)
        this.#client.off('error', fail)
        this.#client.off('close', onClose)
      }
      const onConnect = (): void => { cleanup(); resolve() }
      const fail = (err: unknown): void => {
        cleanup()
        reject(classifyConnectError(err, { url: address.url, ...this.#handshake() }))
      }
      // A broker that refuses our certificate without a TLS alert just closes (see tls-errors.ts).
      const onClose = (): void => { fail(undefined) }
      const timer = setTimeout(() => { fail(new Error(`no answer within ${timeoutMs} ms`)) }, timeoutMs)
      this.#client.on('connect', onConnect)
      this.#client.on('error', fail)
      this.#client.on('close', onClose)
    })
  }

  async #subscribe (): Promise<void> {
    const { topic, address } = this.#options
    const granted = await this.#client.subscribeAsync(topic, { qos: 1 })
    const refused = granted.find(g => g.qos !== 0 && g.qos !== 1 && g.qos !== 2)
    if (refused !== undefined) {
      throw new EdgefwdError('EDGEFWD_ERR_UPLINK_REFUSED', `${address.url} refused the subscription to ${topic} (reason code ${refused.qos})`,
        { hint: topic.startsWith('$share/') ? 'shared subscriptions need MQTT 5 (sink.mqttVersion) and a broker that supports them' : 'check the broker ACL for this client' })
    }
    this.#state = { kind: 'online', since: Date.now() }
    this.#options.log(`subscribed to ${topic} at ${address.url} as ${this.#options.clientId} (MQTT ${this.#options.protocolVersion === 5 ? '5' : '3.1.1'})`)
  }

  /** After the first connection: log state changes; mqtt.js does the reconnecting. */
  #watch (): void {
    const { log, address } = this.#options
    this.#client.on('close', () => {
      if (this.#state.kind !== 'online') return
      this.#state = { kind: 'offline', since: Date.now() }
      log(`disconnected from ${address.url}; reconnecting every ${this.#options.reconnectPeriodMs ?? 1000} ms`)
    })
    this.#client.on('connect', (connack) => {
      if (this.#state.kind !== 'offline') return
      this.#state = { kind: 'online', since: Date.now() }
      this.#stats.reconnects++
      log(`reconnected to ${address.url} (session ${connack.sessionPresent ? 'kept' : 'new, resubscribing'})`)
    })
    this.#client.on('error', (err) => {
      if (this.#state.kind === 'closing' || this.#state.kind === 'closed') return
      const classified = classifyTlsError(err, { url: address.url, ...this.#handshake() })
      log(`connection error: ${classified?.message ?? describeError(err)}`)
    })
  }

  #onPublish (packet: IPublishPacket, done: (err?: Error) => void): void {
    // Not acknowledged while closing: the broker redelivers it to this session later.
    if (this.#state.kind === 'closing' || this.#state.kind === 'closed') return
    this.#stats.messages++
    this.#options.onActivity?.()
    const handled = this.#handle(packet).then(() => { done() }, (err: unknown) => {
      // The output failed: stop here, unacknowledged, and let the owner end the sink.
      this.#fail(err instanceof Error ? err : new Error(String(err)))
    })
    this.#inFlight = handled
  }

  async #handle (packet: IPublishPacket): Promise<void> {
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
    await this.#receiver.receive(payload, packet.topic)
  }
}
