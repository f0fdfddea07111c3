/**
 * One connection to a local broker as an MQTT subscriber: CONNECT, SUBSCRIBE, then PUBLISH in,
 * PUBACK out only once the pipeline has the message's event on disk.
 *
 * Why not mqtt.js (the uplink's client): it hands incoming messages over one at a time and reads
 * the next packet only after the previous one's PUBACK is sent. A PUBACK that waits for the
 * store's fsync would then cost a group commit per message (5 ms window + fsync: ~200 messages/s
 * here, a few dozen on an SD card). Here every packet of one socket read becomes one
 * pipeline.submit(), that is one append and one group commit, and the PUBACKs of a read are sent
 * together once it is durable, in the order the PUBLISHes came [MQTT-4.6.0-2]. mqtt-packet (the
 * parser mqtt.js and aedes use) parses and generates the packets; packet-framer.ts bounds what
 * is buffered.
 *
 * Guarantees:
 * - A QoS 1 message is acknowledged once its event is durable, or once it was dropped for a
 *   counted reason (bad payload, rate limit, unknown device, refused by the store): a crash
 *   before that leaves it unacknowledged, and the broker sends it again on the next connection
 *   of this persistent session [MQTT-4.4.0-1]. Delivery is at least once.
 * - When the store holds events in memory only (disk full) or an append fails, nothing more is
 *   acknowledged: the session ends (`unsettled`), and the next one gets the messages again.
 * - Flow control: MQTT 5's Receive Maximum (`inFlight`) bounds the unacknowledged messages the
 *   broker sends; a 3.1.1 broker uses its own bound (Mosquitto: max_inflight_messages, 20). When
 *   the pipeline is over its global bound the socket is paused, like a TCP device's.
 * - Keepalive: a PINGREQ after `keepalive` without sending; no packet from the broker for 1.5 ×
 *   keepalive (while reading) ends the session as lost [MQTT-3.1.2-24].
 */
import type { Socket } from 'node:net'
// Before mqtt-packet: loading mqtt-packet loads its writer, which must get the unpooled length
// cache (src/mqtt-length-cache.ts); this module may be the first in the process to load it.
import '../../../mqtt-length-cache.js'
import * as mqttPacket from 'mqtt-packet'
import { reject, type FrameResult } from '../../frame.js'
import { pipelineOverBound, resumeBounds, within, type TransportContext } from '../../transports/transport.js'
import { readingResult, type SeqAssigner } from '../source-event.js'
import { MqttFramer, type FramedItem } from './packet-framer.js'
import type { TopicMapping } from './topic-map.js'

export interface SessionOptions {
  clientId: string
  protocolVersion: 4 | 5
  keepaliveMs: number
  /** MQTT 5 Session Expiry Interval, seconds. (3.1.1: the broker keeps a clean=false session.) */
  sessionExpirySeconds: number
  inFlight: number
  username?: string
  password?: Buffer
  mappings: readonly TopicMapping[]
  maxPayload: number
  /** How long to wait for CONNACK and SUBACK. */
  handshakeTimeoutMs: number
}

export type SessionEnd =
  | { kind: 'refused', detail: string }
  | { kind: 'lost', detail: string }
  | { kind: 'unsettled', detail: string }
  | { kind: 'stopped' }

export interface SessionEvents {
  /** Subscribed: messages flow. */
  online: (sessionPresent: boolean) => void
  /** The broker refused one subscription (SUBACK reason code >= 0x80). */
  subscriptionRefused: (filter: string, code: number) => void
}

interface Pending { done: Promise<{ settled: boolean }>, acks: number[] }

/** Room for the topic and MQTT 5 properties around a payload of maxPayload bytes. */
const HEAD_ROOM = 8 * 1024
const SUBSCRIBE_ID = 1

export class IngestSession {
  readonly ended: Promise<SessionEnd>
  private endWith!: (end: SessionEnd) => void
  private done = false
  private readonly parser: mqttPacket.Parser
  private readonly framer: MqttFramer
  private readonly subscriptions: Array<{ topic: string, qos: 0 | 1 }>
  private batch: FrameResult[] = []
  private batchAcks: number[] = []
  private readonly queue: Pending[] = []
  private pumping = false
  private paused = false
  private waitingForPipeline = false
  private lastSent = Date.now()
  private lastReceived = Date.now()
  private readonly keepaliveTimer: NodeJS.Timeout
  private handshake: NodeJS.Timeout | undefined
  private sessionPresent = false

  constructor (private readonly socket: Socket, private readonly options: SessionOptions,
    private readonly ctx: TransportContext, private readonly seqs: SeqAssigner, private readonly events: SessionEvents) {
    this.ended = new Promise(resolve => { this.endWith = resolve })
    this.parser = mqttPacket.parser({ protocolVersion: options.protocolVersion })
    this.parser.on('packet', this.onPacket)
    this.parser.on('error', (err: Error) => { this.end({ kind: 'lost', detail: `malformed packet from the broker: ${err.message}` }) })
    this.framer = new MqttFramer(options.maxPayload + HEAD_ROOM)
    const byTopic = new Map<string, 0 | 1>()
    for (const m of options.mappings) byTopic.set(m.subscription, Math.max(byTopic.get(m.subscription) ?? 0, m.spec.qos) as 0 | 1)
    this.subscriptions = Array.from(byTopic, ([topic, qos]) => ({ topic, qos }))
    socket.on('data', this.onData)
    socket.on('error', (err: Error) => { this.end({ kind: 'lost', detail: err.message }) })
    socket.on('close', () => { this.end({ kind: 'lost', detail: 'the broker closed the connection' }) })
    this.handshake = setTimeout(() => { this.end({ kind: 'lost', detail: `no CONNACK within ${options.handshakeTimeoutMs} ms` }) }, options.handshakeTimeoutMs)
    this.sendConnect()
    const tick = Math.max(250, Math.floor(options.keepaliveMs / 4))
    this.keepaliveTimer = setInterval(this.keepalive, tick)
  }

  /**
   * Stops reading, waits (at most `ms`) for the appends already submitted and sends their
   * PUBACKs, then disconnects normally (the session stays on the broker for the next start).
   */
  async close (ms: number): Promise<void> {
    if (this.done) return
    this.socket.off('data', this.onData)
    this.socket.pause()
    const deadline = Date.now() + ms
    while (this.queue.length > 0 && !this.done && Date.now() < deadline) {
      await within((this.queue[0] as Pending).done, deadline - Date.now())
      // The pump sends that read's PUBACKs and shifts it from the queue on its own turn.
      await new Promise(resolve => setImmediate(resolve))
    }
    if (!this.done) this.write(mqttPacket.generate({ cmd: 'disconnect' }, { protocolVersion: this.options.protocolVersion }))
    this.end({ kind: 'stopped' })
  }

  private end (end: SessionEnd): void {
    if (this.done) return
    this.done = true
    clearTimeout(this.handshake)
    clearInterval(this.keepaliveTimer)
    this.socket.off('data', this.onData)
    if (end.kind === 'stopped') this.socket.end()
    // A socket that does not close after end() (a peer that never answers FIN) is destroyed.
    const kill = setTimeout(() => { this.socket.destroy() }, end.kind === 'stopped' ? 2000 : 0)
    kill.unref()
    this.endWith(end)
  }

  private readonly onData = (chunk: Buffer): void => {
    this.lastReceived = Date.now()
    try {
      this.framer.push(chunk, this.onItem)
    } catch (err) {
      this.end({ kind: 'lost', detail: `protocol error: ${err instanceof Error ? err.message : String(err)}` })
      return
    }
    this.submitBatch()
  }

  private readonly onItem = (item: FramedItem): void => {
    if (this.done) return
    if (item.kind === 'packet') {
      this.parser.parse(item.bytes)
      return
    }
    this.batch.push(reject('oversize', `message on ${JSON.stringify(item.topic.slice(0, 200))} is ${item.size} bytes, over maxPayload ${this.options.maxPayload}`, item.size))
    if (item.qos === 1 && item.messageId !== undefined) this.batchAcks.push(item.messageId)
    else if (item.qos === 2) this.end({ kind: 'lost', detail: 'the broker sent a QoS 2 message on a QoS 1 subscription' })
  }

  private readonly onPacket = (packet: mqttPacket.Packet): void => {
    if (this.done) return
    switch (packet.cmd) {
      case 'publish': this.onPublish(packet); return
      case 'connack': this.onConnack(packet); return
      case 'suback': this.onSuback(packet); return
      case 'pingresp': return
      case 'disconnect':
        this.end({ kind: 'lost', detail: `the broker disconnected (reason code 0x${(packet.reasonCode ?? 0).toString(16)}${packet.properties?.reasonString === undefined ? '' : `: ${packet.properties.reasonString}`})` })
        return
      default:
        this.end({ kind: 'lost', detail: `unexpected ${packet.cmd} packet from the broker` })
    }
  }

  private onConnack (packet: mqttPacket.IConnackPacket): void {
    const code = this.options.protocolVersion === 5 ? packet.reasonCode ?? 0 : packet.returnCode ?? 0
    if (code !== 0) {
      clearTimeout(this.handshake)
      this.end({ kind: 'refused', detail: connackProblem(this.options.protocolVersion, code) })
      return
    }
    const subscribe: mqttPacket.ISubscribePacket = {
      cmd: 'subscribe',
      messageId: SUBSCRIBE_ID,
      // Retain handling 1 (MQTT 5): retained messages only for a subscription the session did
      // not have, so a reconnect does not deliver the same retained state again.
      subscriptions: this.subscriptions.map(s => this.options.protocolVersion === 5 ? { ...s, rh: 1 } : s)
    }
    this.write(mqttPacket.generate(subscribe, { protocolVersion: this.options.protocolVersion }))
    clearTimeout(this.handshake)
    this.handshake = setTimeout(() => { this.end({ kind: 'lost', detail: `no SUBACK within ${this.options.handshakeTimeoutMs} ms` }) }, this.options.handshakeTimeoutMs)
    this.sessionPresent = packet.sessionPresent
  }

  private onSuback (packet: mqttPacket.ISubackPacket): void {
    clearTimeout(this.handshake)
    const granted = (packet as { granted?: Array<number | object> }).granted ?? []
    let refused = 0
    for (const [i, s] of this.subscriptions.entries()) {
      const code = granted[i]
      if (typeof code === 'number' && code >= 0x80) {
        refused++
        this.events.subscriptionRefused(s.topic, code)
      }
    }
    if (refused === this.subscriptions.length) {
      this.end({ kind: 'refused', detail: 'the broker refused every subscription (not authorized for these topics?)' })
      return
    }
    this.events.online(this.sessionPresent)
  }

  private onPublish (packet: mqttPacket.IPublishPacket): void {
    if (packet.qos === 2) {
      this.end({ kind: 'lost', detail: 'the broker sent a QoS 2 message on a QoS 1 subscription' })
      return
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
    this.batch.push(this.read(packet.topic, payload))
    if (packet.qos === 1 && packet.messageId !== undefined) this.batchAcks.push(packet.messageId)
  }

  private read (topic: string, payload: Buffer): FrameResult {
    const bytes = payload.length
    if (bytes > this.options.maxPayload) return reject('oversize', `message on ${JSON.stringify(topic)} is ${bytes} bytes, over maxPayload ${this.options.maxPayload}`, bytes)
    for (const mapping of this.options.mappings) {
      const captures = mapping.match(topic)
      if (captures === undefined) continue
      const deviceId = mapping.deviceId(captures)
      const mapped = mapping.map(payload)
      if (!mapped.ok) return reject('bad_payload', `${topic}: ${mapped.detail}`, bytes, deviceId)
      const reading = { deviceId, stream: mapping.stream(captures), value: mapped.value, bytes }
      return readingResult(mapped.tags === undefined ? reading : { ...reading, tags: mapped.tags }, this.seqs)
    }
    return reject('bad_payload', `topic ${JSON.stringify(topic)} matches no ingest.mqtt topic filter`, bytes)
  }

  private submitBatch (): void {
    if (this.batch.length === 0 && this.batchAcks.length === 0) return
    const frames = this.batch
    const acks = this.batchAcks
    this.batch = []
    this.batchAcks = []
    this.queue.push({ done: this.ctx.pipeline.submit('mqtt', frames), acks })
    void this.pump()
    if (pipelineOverBound(this.ctx)) this.pause()
  }

  /** Sends each read's PUBACKs once its submit settled, in order; ends the session on one that did not. */
  private async pump (): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      while (this.queue.length > 0 && !this.done) {
        const head = this.queue[0] as Pending
        const result = await head.done
        if (this.done) return
        if (!result.settled) {
          this.end({ kind: 'unsettled', detail: 'the store did not take the events durably (disk full or a write error); left unacknowledged for the broker to send again' })
          return
        }
        this.queue.shift()
        if (head.acks.length > 0) {
          this.write(pubacks(head.acks))
          this.ctx.pipeline.countAcks('mqtt', head.acks.length)
        }
        if (this.paused) this.maybeResume()
      }
    } finally {
      this.pumping = false
    }
  }

  private pause (): void {
    if (this.paused) return
    this.paused = true
    this.socket.pause()
    this.maybeResume()
  }

  private maybeResume (): void {
    if (!this.paused || this.done || this.waitingForPipeline) return
    const { pipeline } = this.ctx
    const { events, bytes } = resumeBounds(this.ctx)
    if (pipeline.pendingEvents > events || pipeline.pendingBytes > bytes) {
      this.waitingForPipeline = true
      pipeline.pendingAtMost(events, bytes).then(() => {
        this.waitingForPipeline = false
        this.maybeResume()
      }, () => {})
      return
    }
    this.paused = false
    this.lastReceived = Date.now()
    this.socket.resume()
  }

  private readonly keepalive = (): void => {
    const now = Date.now()
    const { keepaliveMs } = this.options
    if (!this.paused && now - this.lastReceived > keepaliveMs * 1.5) {
      this.end({ kind: 'lost', detail: `nothing from the broker for ${Math.round((now - this.lastReceived) / 1000)} s (keepalive ${keepaliveMs / 1000} s)` })
      return
    }
    if (now - this.lastSent >= keepaliveMs) this.write(PINGREQ)
  }

  private sendConnect (): void {
    const o = this.options
    const connect: mqttPacket.IConnectPacket = {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: o.protocolVersion,
      clientId: o.clientId,
      // A persistent session: what the broker handed over and we did not acknowledge comes again.
      clean: false,
      keepalive: Math.round(o.keepaliveMs / 1000)
    }
    if (o.username !== undefined) connect.username = o.username
    if (o.password !== undefined) connect.password = o.password
    if (o.protocolVersion === 5) connect.properties = { sessionExpiryInterval: o.sessionExpirySeconds, receiveMaximum: o.inFlight }
    this.write(mqttPacket.generate(connect, { protocolVersion: o.protocolVersion }))
  }

  private write (bytes: Buffer): void {
    if (this.socket.destroyed) return
    this.lastSent = Date.now()
    this.socket.write(bytes)
  }
}

const PINGREQ = Buffer.from([0xc0, 0x00])

/**
 * PUBACKs without reason code and properties: 4 bytes each, the same in 3.1.1 and 5 (a reason
 * code of 0 with no properties may be left out [MQTT-3.4.2-1]).
 */
function pubacks (ids: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(ids.length * 4)
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as number
    out[i * 4] = 0x40
    out[i * 4 + 1] = 0x02
    out[i * 4 + 2] = id >> 8
    out[i * 4 + 3] = id & 0xff
  }
  return out
}

const V5_REFUSALS: Record<number, string> = {
  0x80: 'unspecified error',
  0x81: 'malformed packet',
  0x82: 'protocol error',
  0x83: 'implementation specific error',
  0x84: 'unsupported protocol version: set mqttVersion: "3.1.1" for this broker',
  0x85: 'client identifier not valid (another client may use it: set clientId)',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x88: 'server unavailable',
  0x89: 'server busy',
  0x8a: 'banned',
  0x8c: 'bad authentication method',
  0x95: 'packet too large',
  0x97: 'quota exceeded',
  0x9f: 'connection rate exceeded'
}

const V4_REFUSALS: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'identifier rejected (another client may use it: set clientId)',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized'
}

function connackProblem (version: 4 | 5, code: number): string {
  const name = (version === 5 ? V5_REFUSALS : V4_REFUSALS)[code] ?? 'unknown reason'
  return `the broker refused the connection: ${name} (CONNACK code 0x${code.toString(16)})`
}
