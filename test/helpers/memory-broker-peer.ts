/**
 * An in-memory MQTT peer for the uplink (UplinkOptions.connect): connections that live in the
 * test's hands, no broker and no socket. The test decides each PUBACK (or a refusal with a reason
 * code), the CONNACK's Receive Maximum, failed connection attempts, a dropped link and a keepalive
 * failure; it sees every publish, subscription and clean DISCONNECT.
 */
import type { BrokerConnection, ConnectBroker, LinkLoss, PublishError } from '../../src/uplink/broker-connection.js'
import type { ConnectOptions } from '../../src/uplink/connect.js'

export interface PeerPublish {
  topic: string
  payload: Buffer | string
  qos: 0 | 1
  retain: boolean
  /** PUBACKed, refused or failed. */
  answered: boolean
  done: (err?: PublishError | null) => void
}

export class MemoryConnection implements BrokerConnection {
  connected = true
  readonly publishes: PeerPublish[] = []
  readonly subscriptions: string[][] = []
  /** A clean DISCONNECT came (end()), the socket was destroyed, the uplink let go of it (release()). */
  ended = false
  destroyed = false
  released = false
  private lostListeners: Array<(loss: LinkLoss) => void> = []
  private messageHandler: ((topic: string, payload: Buffer) => void) | undefined

  constructor (readonly options: ConnectOptions, readonly receiveMaximum: number | undefined, private readonly pubackAtOnce: (topic: string) => boolean) {}

  publish (topic: string, payload: Buffer | string, options: { qos: 0 | 1, retain?: boolean }, done: (err?: PublishError | null) => void): void {
    if (!this.connected) { setImmediate(() => { done(new Error('client disconnecting')) }); return }
    const p: PeerPublish = { topic, payload, qos: options.qos, retain: options.retain ?? false, answered: false, done }
    this.publishes.push(p)
    if (options.qos === 0 || this.pubackAtOnce(topic)) this.answer(p)
  }

  subscribe (topics: string[], done: (err?: Error | null) => void): void {
    this.subscriptions.push([...topics])
    setImmediate(() => { done(null) })
  }

  onMessage (handler: (topic: string, payload: Buffer) => void): void { this.messageHandler = handler }

  onceLost (listener: (loss: LinkLoss) => void): void { this.lostListeners.push(listener) }

  async end (): Promise<void> {
    this.ended = true
    this.lose({ reason: 'connection closed', err: undefined, keepalive: false })
  }

  destroy (): void {
    this.destroyed = true
    this.lose({ reason: 'connection closed', err: undefined, keepalive: false })
  }

  release (): void {
    this.released = true
    this.lostListeners = []
    this.messageHandler = undefined
    this.lose({ reason: 'released', err: undefined, keepalive: false })
  }

  /** QoS 1 publishes on `topic` not yet answered, oldest first. */
  unanswered (topic?: string): PeerPublish[] {
    return this.publishes.filter(p => p.qos === 1 && !p.answered && (topic === undefined || p.topic === topic))
  }

  /** The PUBACK of `p` (success). */
  puback (p: PeerPublish | undefined): void {
    if (p === undefined || p.answered) throw new Error('no such unanswered publish')
    this.answer(p)
  }

  /** A PUBACK with a failure reason code (MQTT 5), e.g. 0x97 quota exceeded. */
  refuse (p: PeerPublish | undefined, code = 0x97): void {
    if (p === undefined || p.answered) throw new Error('no such unanswered publish')
    this.answer(p, Object.assign(new Error(`publish refused with reason code ${code}`), { code }))
  }

  /** The link goes away (a reset, the broker gone): publishes in flight fail, then 'close'. */
  drop (): void { this.lose({ reason: 'connection closed', err: undefined, keepalive: false }) }

  /** No PINGRESP within the keepalive, as mqtt.js reports it. */
  keepaliveTimeout (): void { this.lose({ reason: 'connection error', err: new Error('Keepalive timeout'), keepalive: true }) }

  /** A PUBLISH from the broker on a subscribed topic. */
  deliver (topic: string, payload: string): void { this.messageHandler?.(topic, Buffer.from(payload)) }

  private answer (p: PeerPublish, err?: PublishError): void {
    p.answered = true
    setImmediate(() => { p.done(err ?? null) })
  }

  private lose (loss: LinkLoss): void {
    if (!this.connected) return
    this.connected = false
    // As mqtt.js: every publish in flight fails first ('Connection closed'), then the event.
    for (const p of this.unanswered()) this.answer(p, new Error('Connection closed'))
    const listeners = this.lostListeners
    this.lostListeners = []
    setImmediate(() => { for (const l of listeners) l(loss) })
  }
}

export class MemoryBrokerPeer {
  readonly connections: MemoryConnection[] = []
  /** Connection attempts, failed ones included. */
  attempts = 0
  /** The Receive Maximum the next CONNACKs carry (MQTT 5); undefined: none. */
  receiveMaximum: number | undefined
  /** While set, connection attempts fail with this error. */
  connectError: Error | undefined
  /** Which QoS 1 publishes get their PUBACK at once; by default all but batches (`…/events`). */
  pubackAtOnce: (topic: string) => boolean = topic => !topic.endsWith('/events')

  readonly connect: ConnectBroker = async (_address, _credentials, options) => {
    this.attempts++
    await new Promise<void>(resolve => { setImmediate(resolve) })
    if (this.connectError !== undefined) throw this.connectError
    const connection = new MemoryConnection(options, this.receiveMaximum, topic => this.pubackAtOnce(topic))
    this.connections.push(connection)
    return connection
  }

  /** The latest connection. */
  get current (): MemoryConnection | undefined { return this.connections.at(-1) }
}
