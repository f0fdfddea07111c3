/**
 * JetStreamSource: the receiving side on a NATS cluster. N sink instances share one durable pull
 * consumer of a JetStream stream; NATS gives each message to one of them, and a message a sink
 * took but did not acknowledge (it was killed, its disk failed) goes to another after `ackWait`.
 * Each message goes to a BatchReceiver (receiver.ts: decode, drop a batch this instance already
 * wrote, write to the destination and wait until it is durable there, feed the verifier) and is
 * acknowledged after that. Messages are handled one at a time, in the order NATS delivers them.
 *
 * Which stream. NATS's MQTT side stores every QoS 1 PUBLISH in its own stream `$MQTT_msgs`
 * (subjects `$MQTT.msgs.<topic as subject>`, interest retention, `mqtt.stream_replicas`
 * replicas) and sends the PUBACK after that store: so a message the gateway saw acknowledged is
 * in a replicated stream, and it stays there while a consumer is interested in it, ours
 * included. A stream of one's own over the core subject (`edgefwd.*.events`) is not: NATS 2.9
 * publishes into it without waiting, and measured on a 3-node cluster, stopping that stream's
 * leader lost 14 and 22 of 20,000 acknowledged messages while the consumer on `$MQTT_msgs` got
 * every one (docs/operations.md). Hence the default stream `$MQTT_msgs` and the default filter,
 * the sink's MQTT topic in NATS's spelling (mqttTopicToSubject).
 *
 * The consumer is made on first use, and again if it is deleted under a running sink (explicit
 * acks, every message from the start, never given up on); it must exist before the gateways
 * publish: with interest retention, NATS keeps only what some consumer will take. NATS makes `$MQTT_msgs` at the first MQTT connection of the
 * account, so when it is missing and `mqttUrl` is given, the sink makes that connection itself
 * (clean session, at once closed) and then its consumer: started before the gateways, the sinks
 * miss nothing. A consumer of that name with another filter is an error, not changed.
 *
 * Reconnects: the first connection must succeed (a wrong certificate is an error at once, see
 * nats-probe.ts); after that the NATS client reconnects to any listed server for ever, and the
 * pull resumes.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, JetStreamApiError, type ConsumerMessages, type JetStreamManager } from '@nats-io/jetstream'
import { EdgefwdError, isEdgefwdError } from '../errors.js'
import { clientTlsOptions, type TlsCredentials } from '../pki/tls-options.js'
import { parseBrokerUrl, probeBroker } from '../uplink/connect.js'
import { probeNats } from './nats-probe.js'
import { BatchReceiver } from './receiver.js'
import type { SinkSource, SinkStats, SourceOptions } from './source.js'

/** The stream NATS's MQTT side keeps QoS 1 messages in. */
export const MQTT_MESSAGES_STREAM = '$MQTT_msgs'
/** The prefix of that stream's subjects. */
const MQTT_MESSAGES_PREFIX = '$MQTT.msgs.'
/** JetStream's "not found" error codes: stream 10059, consumer 10014. */
const STREAM_NOT_FOUND = 10059
const CONSUMER_NOT_FOUND = 10014
/** How long a pull waits for messages before the client asks again (idle heartbeats at half that). */
const PULL_EXPIRES_MS = 5000
/** How long the sink waits for JetStream to answer at start (a cluster electing its leaders). */
const SETUP_TIMEOUT_MS = 60_000

export interface JetStreamSourceOptions extends SourceOptions {
  /** nats://HOST:PORT of the cluster's nodes; the client picks one and fails over to the others. */
  servers: readonly string[]
  credentials: () => TlsCredentials
  stream: string
  /** The durable consumer's name: the same for every instance that shares the work. */
  consumer: string
  /** Which of the stream's subjects; see mqttTopicToSubject(). */
  filterSubject: string
  /** How long NATS waits for an acknowledgement before giving the message to another instance. */
  ackWaitMs: number
  /** Messages delivered and not yet acknowledged, over all instances, at most. */
  maxAckPending: number
  /** Messages each pull asks for. */
  pullBatch: number
  /** The connection's name in the server's monitoring, and the client id of the MQTT connection below. */
  name: string
  /** An MQTT listener of the cluster (mqtts://), to make NATS create `$MQTT_msgs` when it is missing. */
  mqttUrl?: string
}

/**
 * The subject NATS's MQTT side gives a topic (filter): `/` separates tokens (`.`), `+` is `*`,
 * `#` is `>`, a `.` inside a level is `//`, and an empty level is `/`.
 * @param stream when `$MQTT_msgs`, the stream's `$MQTT.msgs.` prefix is added
 */
export function mqttTopicToSubject (topic: string, stream: string): string {
  const levels = topic.split('/').map(level => {
    if (level === '+') return '*'
    if (level === '#') return '>'
    if (level === '') return '/'
    return level.replaceAll('.', '//')
  })
  return `${stream === MQTT_MESSAGES_STREAM ? MQTT_MESSAGES_PREFIX : ''}${levels.join('.')}`
}

type State = { kind: 'starting' } | { kind: 'open', messages: ConsumerMessages } | { kind: 'closing' } | { kind: 'closed' }

export class JetStreamSource implements SinkSource {
  readonly #options: JetStreamSourceOptions
  readonly #nc: NatsConnection
  readonly #receiver: BatchReceiver
  readonly #stats = { messages: 0, reconnects: 0, redelivered: 0 }
  #state: State = { kind: 'starting' }
  /** The consume loop; close() waits for it so the message being written is complete. */
  #loop: Promise<void> = Promise.resolve()
  /** The consumer being made again (#renew); close() waits for it. */
  #renewing: Promise<void> = Promise.resolve()
  #fail: (err: Error) => void = () => {}
  readonly failed: Promise<never>

  private constructor (options: JetStreamSourceOptions, nc: NatsConnection) {
    this.#options = options
    this.#nc = nc
    this.#receiver = new BatchReceiver(options)
    this.failed = new Promise<never>((_resolve, reject) => { this.#fail = reject })
    this.failed.catch(() => {}) // observed by whoever awaits it; never an unhandled rejection
  }

  /**
   * Connects, makes sure the stream and the consumer exist, and starts pulling.
   * @throws EDGEFWD_ERR_TLS_* / EDGEFWD_ERR_UPLINK_REFUSED / EDGEFWD_ERR_UPLINK_CONNECT when the
   *   first connection fails; EDGEFWD_ERR_CONFIG_INVALID when the stream is missing or the
   *   consumer exists with another filter
   */
  static async open (options: JetStreamSourceOptions): Promise<JetStreamSource> {
    const nc = await connectNats(options)
    try {
      await prepare(nc, options)
      const source = new JetStreamSource(options, nc)
      await source.#start()
      void source.#watchConnection()
      return source
    } catch (err) {
      await nc.close().catch(() => {})
      throw err
    }
  }

  stats (): SinkStats & { redelivered: number } {
    return { ...this.#stats, ...this.#receiver.stats() }
  }

  /** Stops pulling, finishes the message being written, disconnects. Messages pulled and not yet handled go to another instance after ackWait. */
  async close (): Promise<void> {
    const state = this.#state
    if (state.kind !== 'open') {
      await this.#loop
      return
    }
    this.#state = { kind: 'closing' }
    state.messages.stop()
    await this.#renewing
    await this.#loop
    await this.#disconnect()
  }

  /**
   * Makes sure the acknowledgements sent reached the server (a flush: PING, PONG; bounded), then
   * closes the connection. Not a drain: draining waits on every subscription, the pull's
   * included, and one whose consumer was deleted or renewed could hold it for good.
   */
  async #disconnect (): Promise<void> {
    this.#state = { kind: 'closing' }
    await bounded(this.#nc.flush(), 3000)
    await bounded(this.#nc.close(), 3000)
    this.#state = { kind: 'closed' }
  }

  async #start (): Promise<void> {
    const { stream, consumer, pullBatch, log, servers } = this.#options
    const js = jetstream(this.#nc)
    // Pulls that expire after 5 s (the client's default is 30 s), so that after a node or the
    // whole cluster restarted, a pull the server lost is noticed and made again within seconds.
    const messages = await (await js.consumers.get(stream, consumer)).consume({ max_messages: pullBatch, expires: PULL_EXPIRES_MS })
    // Closed while the consumer was being made again (#renew): this pull is not wanted.
    if (this.#state.kind === 'closing' || this.#state.kind === 'closed') {
      messages.stop()
      return
    }
    this.#state = { kind: 'open', messages }
    this.#loop = this.#consume(messages)
    void this.#watchConsumer(messages)
    log(`consuming ${stream} through the durable consumer ${consumer} (${this.#options.filterSubject}) at ${this.#nc.getServer()} of ${servers.join(', ')} as ${this.#options.name}`)
  }

  async #consume (messages: ConsumerMessages): Promise<void> {
    for await (const m of messages) {
      // Closing: not written, not acknowledged; NATS gives it to another instance.
      if (this.#state.kind !== 'open') { m.nak(); continue }
      this.#stats.messages++
      if (m.info.redelivered) this.#stats.redelivered++
      this.#options.onActivity?.()
      try {
        await this.#receiver.receive(m.data, m.subject)
      } catch (err) {
        // The destination failed: give the message back at once and stop. Disconnect too, so the
        // server drops this instance's open pull request instead of sending it redeliveries.
        m.nak()
        this.#fail(err instanceof Error ? err : new Error(String(err)))
        messages.stop()
        await this.#disconnect()
        return
      }
      m.ack()
    }
  }

  async #watchConnection (): Promise<void> {
    const { log } = this.#options
    for await (const s of this.#nc.status()) {
      if (this.#state.kind !== 'open') return
      if (s.type === 'disconnect') log(`disconnected from ${s.server}; reconnecting`)
      else if (s.type === 'reconnect') {
        this.#stats.reconnects++
        log(`reconnected to ${s.server}`)
      } else if (s.type === 'error') log(`connection error: ${s.error.message}`)
    }
  }

  async #watchConsumer (messages: ConsumerMessages): Promise<void> {
    const { log, stream, consumer } = this.#options
    for await (const n of messages.status()) {
      if (this.#state.kind !== 'open' || this.#state.messages !== messages) return
      if (n.type === 'consumer_not_found' || n.type === 'consumer_deleted' || n.type === 'stream_not_found') {
        log(`${n.type.replaceAll('_', ' ')}: ${stream}/${consumer}; making it again`)
        this.#renewing = this.#renew(messages)
        return
      }
      if (n.type === 'heartbeats_missed' && n.count === 2) log(`no heartbeat from the consumer ${consumer} for two intervals; pulling again`)
    }
  }

  /**
   * The consumer (or its stream) is gone: the sinks would take nothing, and with interest
   * retention NATS keeps nothing for them meanwhile. Make it again as at start and consume
   * anew; the source fails when that cannot be done (the stream deleted for good).
   */
  async #renew (messages: ConsumerMessages): Promise<void> {
    messages.stop()
    await this.#loop
    if (this.#state.kind !== 'open') return
    try {
      await prepare(this.#nc, this.#options)
      if (this.#state.kind === 'open') await this.#start()
    } catch (err) {
      this.#fail(err instanceof Error ? err : new Error(String(err)))
      await this.#disconnect()
    }
  }
}

/** Waits for `work` at most `ms`; its failure is ignored (closing: nothing left to do about it). */
async function bounded (work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([work.catch(() => {}), new Promise<void>(resolve => { timer = setTimeout(resolve, ms) })])
  clearTimeout(timer)
}

async function connectNats (options: JetStreamSourceOptions): Promise<NatsConnection> {
  const timeoutMs = options.connectTimeoutMs ?? 10_000
  await loginOnce(options.servers, options.credentials(), timeoutMs)
  try {
    return await connect({
      servers: [...options.servers],
      name: options.name,
      // Node's TLS options, passed through by the NATS client: the same checks as the MQTT side.
      tls: clientTlsOptions(options.credentials()) as unknown as Record<string, string>,
      timeout: timeoutMs,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      reconnectJitter: 500,
    })
  } catch (err) {
    throw new EdgefwdError('EDGEFWD_ERR_UPLINK_CONNECT', `cannot connect to ${options.servers.join(', ')}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
}

/**
 * The first login, by hand (nats-probe.ts), at each server in turn until one takes it: a
 * refused certificate or user is thrown at once; when no server answers, the last outage.
 */
async function loginOnce (servers: readonly string[], credentials: TlsCredentials, timeoutMs: number): Promise<void> {
  let outage: unknown
  for (const url of servers) {
    try {
      await probeNats(url, credentials, timeoutMs)
      return
    } catch (err) {
      if (!isEdgefwdError(err, 'EDGEFWD_ERR_UPLINK_CONNECT')) throw err
      outage = err
    }
  }
  throw outage
}

/**
 * Makes sure the stream and the consumer exist (ensureConsumer), again after a JetStream request
 * timed out or found no responder (a cluster still electing its leaders, just after it
 * started), for SETUP_TIMEOUT_MS at most; any other error at once.
 */
async function prepare (nc: NatsConnection, options: JetStreamSourceOptions): Promise<void> {
  const until = Date.now() + SETUP_TIMEOUT_MS
  for (let attempt = 1; ; attempt++) {
    try {
      await ensureConsumer(await jetstreamManager(nc), options)
      return
    } catch (err) {
      const name = (err as { name?: unknown }).name
      if ((name !== 'TimeoutError' && name !== 'NoRespondersError') || Date.now() >= until) throw err
      if (attempt === 1) options.log(`JetStream does not answer yet (${String(name)}); trying again for up to ${SETUP_TIMEOUT_MS / 1000} s`)
      await new Promise(resolve => setTimeout(resolve, 1000))
    }
  }
}

async function ensureConsumer (jsm: JetStreamManager, options: JetStreamSourceOptions): Promise<void> {
  const { stream, consumer, filterSubject } = options
  if (!await streamExists(jsm, stream) && !(stream === MQTT_MESSAGES_STREAM && await makeMqttStreams(jsm, options))) {
    throw new EdgefwdError('EDGEFWD_ERR_CONFIG_INVALID', `sink: JetStream has no stream ${stream} in this account`, {
      hint: stream === MQTT_MESSAGES_STREAM
        ? 'NATS makes $MQTT_msgs at the first MQTT connection when its MQTT listener is on and the account has JetStream: set sink.url to an MQTT listener of the cluster'
        : 'create it, or leave sink.jetstream.stream at $MQTT_msgs'
    })
  }
  const existing = await consumerInfo(jsm, stream, consumer)
  if (existing === undefined) {
    await jsm.consumers.add(stream, {
      durable_name: consumer,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: filterSubject,
      ack_wait: options.ackWaitMs * 1_000_000,
      max_ack_pending: options.maxAckPending,
      max_deliver: -1,
    }).catch(async (err: unknown) => {
      // Another instance made it first, with the same settings: fine.
      if (await consumerInfo(jsm, stream, consumer) === undefined) throw err
    })
    options.log(`created the durable consumer ${consumer} on ${stream} for ${filterSubject}`)
    return
  }
  if (existing !== filterSubject) {
    throw new EdgefwdError('EDGEFWD_ERR_CONFIG_INVALID', `sink: the consumer ${consumer} on ${stream} takes ${existing || 'every subject'}, not ${filterSubject}`, {
      hint: 'give this sink another sink.jetstream.consumer, or delete the old consumer (nats consumer rm)'
    })
  }
}

async function streamExists (jsm: JetStreamManager, stream: string): Promise<boolean> {
  try {
    await jsm.streams.info(stream)
    return true
  } catch (err) {
    if (apiCode(err) === STREAM_NOT_FOUND) return false
    throw err
  }
}

/** One MQTT connection so NATS makes its MQTT streams; true once `$MQTT_msgs` exists (bounded wait). */
async function makeMqttStreams (jsm: JetStreamManager, options: JetStreamSourceOptions): Promise<boolean> {
  if (options.mqttUrl === undefined) return false
  options.log(`no ${MQTT_MESSAGES_STREAM} yet: connecting once to ${options.mqttUrl} so NATS makes it`)
  // NATS makes its three MQTT streams before it answers the CONNECT: give it time.
  await probeBroker(parseBrokerUrl(options.mqttUrl), options.credentials(), { clientId: options.name, protocolVersion: 4, timeoutMs: Math.max(30_000, options.connectTimeoutMs ?? 0) })
  for (let attempt = 0; attempt < 50; attempt++) {
    if (await streamExists(jsm, MQTT_MESSAGES_STREAM)) return true
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  return false
}

/** The consumer's filter subject ('' for none), or undefined when there is no such consumer. */
async function consumerInfo (jsm: JetStreamManager, stream: string, consumer: string): Promise<string | undefined> {
  try {
    return (await jsm.consumers.info(stream, consumer)).config.filter_subject ?? ''
  } catch (err) {
    if (apiCode(err) === CONSUMER_NOT_FOUND) return undefined
    throw err
  }
}

function apiCode (err: unknown): number | undefined {
  return err instanceof JetStreamApiError ? err.code : undefined
}
