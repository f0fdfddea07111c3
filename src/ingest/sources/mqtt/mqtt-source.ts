/**
 * `ingest.mqtt`: one entry, one local broker (Mosquitto fed by zigbee2mqtt, Tasmota, ESPHome).
 * Keeps a subscriber session (session.ts) to it, and reconnects with jittered backoff (1 s to
 * 30 s; a refusal waits at least 20 s) whenever it ends. start() does not wait for the broker: a
 * broker that is down at boot is an outage of this input, not a failure of the gateway.
 *
 * While the store runs on its in-memory fallback (disk full) the source does not connect: the
 * broker holds the messages better than memory would (EventSink.durableNow, looked at every 1 s).
 *
 * Every failure is counted (edgefwd_ingest_source_failures_total{transport="mqtt"}: `connect`,
 * `refused`) and logged when the state changes: the first failure, a failure with another reason,
 * and the connection back. A broker that stays down costs one log line, not one per attempt.
 */
import { readFile } from 'node:fs/promises'
import { connect as netConnect, isIP, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { Backoff } from '../../../backoff.js'
import type { Config } from '../../../config/index.js'
import { EdgefwdError } from '../../../errors.js'
import { DEFAULT_STOP_TIMEOUT_MS, type Transport, type TransportContext } from '../../transports/transport.js'
import { SeqAssigner } from '../source-event.js'
import { IngestSession, type SessionEnd, type SessionOptions } from './session.js'
import { TopicMapping } from './topic-map.js'

export type MqttSourceConfig = Config['ingest']['mqtt'][number]

export interface MqttSourceDeps {
  clientId: string
  /** Where `passwordEnv` is looked up. */
  env: Readonly<Record<string, string | undefined>>
  seqs?: SeqAssigner
}

type State =
  | { kind: 'new' }
  | { kind: 'connecting', attempt: number }
  | { kind: 'online', session: IngestSession, since: number }
  | { kind: 'backoff', timer: NodeJS.Timeout, until: number }
  | { kind: 'stopped' }

const BACKOFF = { initialMs: 1000, maxMs: 30_000, multiplier: 2, refusedMinMs: 20_000 }
const HANDSHAKE_TIMEOUT_MS = 10_000
/** How often a source held back by a store on its in-memory fallback looks again. */
const STORE_POLL_MS = 1000

export class MqttSource implements Transport {
  readonly name = 'mqtt'
  private state: State = { kind: 'new' }
  private session: IngestSession | undefined
  private readonly backoff = new Backoff(BACKOFF)
  private readonly host: string
  private readonly port: number
  private readonly secure: boolean
  private readonly mappings: TopicMapping[]
  private readonly seqs: SeqAssigner
  private password: Buffer | undefined
  /** The reason of the current run of failures, for logging only on a change; undefined when connected. */
  private failing: string | undefined = 'never connected'
  private failures = 0
  private waitingForStore = false

  constructor (private readonly config: MqttSourceConfig, private readonly ctx: TransportContext, private readonly deps: MqttSourceDeps) {
    const url = new URL(config.url)
    this.secure = ['mqtts:', 'ssl:', 'tls:'].includes(url.protocol)
    this.host = url.hostname.replace(/^\[(.*)\]$/, '$1')
    this.port = url.port === '' ? (this.secure ? 8883 : 1883) : Number(url.port)
    this.mappings = config.topics.map(t => new TopicMapping(t))
    this.seqs = deps.seqs ?? new SeqAssigner(1024)
  }

  async start (): Promise<{ address: string }> {
    if (this.state.kind !== 'new') throw new Error('mqtt source already started')
    if (this.config.passwordEnv !== undefined) {
      const value = this.deps.env[this.config.passwordEnv]
      if (value === undefined) {
        throw new EdgefwdError('EDGEFWD_ERR_INGEST_SOURCE', `ingest.mqtt ${this.config.url}: passwordEnv names ${this.config.passwordEnv}, which is not set in the environment`)
      }
      this.password = Buffer.from(value)
    }
    void this.connect(1)
    return { address: `${this.config.url} (${this.mappings.map(m => m.spec.filter).join(', ')})` }
  }

  async stop (): Promise<void> {
    const state = this.state
    this.state = { kind: 'stopped' }
    if (state.kind === 'backoff') clearTimeout(state.timer)
    await this.session?.close(this.ctx.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS)
  }

  private async connect (attempt: number): Promise<void> {
    if (this.state.kind === 'stopped') return
    if (!this.ctx.pipeline.sinkDurable()) {
      // The broker keeps what it has not handed over; the store's in-memory fallback is for
      // inputs that cannot hold their data. Taking messages now could not acknowledge them,
      // and each reconnect would put the same ones in memory again.
      if (!this.waitingForStore) this.ctx.logger.warn({ broker: this.config.url }, `the store cannot write to disk (disk full): not reading the local broker ${this.config.url} until it can; the broker keeps the messages`)
      this.waitingForStore = true
      const timer = setTimeout(() => { void this.connect(attempt) }, STORE_POLL_MS)
      this.state = { kind: 'backoff', timer, until: Date.now() + STORE_POLL_MS }
      return
    }
    if (this.waitingForStore) this.ctx.logger.info({ broker: this.config.url }, `the store writes to disk again: reading the local broker ${this.config.url}`)
    this.waitingForStore = false
    this.state = { kind: 'connecting', attempt }
    let socket: Socket
    try {
      socket = await this.openSocket()
    } catch (err) {
      this.retry({ kind: 'lost', detail: err instanceof Error ? err.message : String(err) })
      return
    }
    if (this.stopped) {
      socket.destroy()
      return
    }
    const session = new IngestSession(socket, this.sessionOptions(), this.ctx, this.seqs, {
      online: (sessionPresent) => { this.online(session, sessionPresent) },
      subscriptionRefused: (filter, code) => {
        this.ctx.pipeline.countFailure('mqtt', 'refused')
        this.ctx.logger.error({ broker: this.config.url, filter, code }, `the local broker refused the subscription to ${filter} (SUBACK code 0x${code.toString(16)}): its messages are not received`)
      }
    })
    this.session = session
    const end = await session.ended
    this.session = undefined
    if (end.kind !== 'stopped' && !this.stopped) this.retry(end)
  }

  /** A method, not an inline test: TypeScript would keep `state` narrowed across the awaits. */
  private get stopped (): boolean { return this.state.kind === 'stopped' }

  private online (session: IngestSession, sessionPresent: boolean): void {
    if (this.state.kind === 'stopped') return
    this.state = { kind: 'online', session, since: Date.now() }
    this.ctx.pipeline.countConnection('mqtt')
    this.backoff.reset()
    const fields = { broker: this.config.url, clientId: this.deps.clientId, sessionPresent, topics: this.mappings.map(m => m.subscription) }
    if (this.failures > 0) this.ctx.logger.info({ ...fields, failures: this.failures }, `connected to the local broker ${this.config.url} again after ${this.failures} failed attempts`)
    else this.ctx.logger.info(fields, `subscribed to the local broker ${this.config.url}`)
    this.failing = undefined
    this.failures = 0
  }

  private retry (end: Exclude<SessionEnd, { kind: 'stopped' }>): void {
    if (this.state.kind === 'stopped') return
    const refused = end.kind === 'refused'
    if (end.kind !== 'unsettled') this.ctx.pipeline.countFailure('mqtt', refused ? 'refused' : 'connect')
    this.failures++
    const wait = this.backoff.next(refused ? 'refused' : 'failure')
    const reason = `${end.kind}: ${end.detail}`
    if (this.failing !== reason) {
      const fields = { broker: this.config.url, reason: end.kind, detail: end.detail, retryInMs: wait }
      const message = `local broker ${this.config.url}: ${end.detail}; trying again in ${(wait / 1000).toFixed(1)} s (logged again only when this changes)`
      if (end.kind === 'unsettled') this.ctx.logger.warn(fields, message)
      else this.ctx.logger.error(fields, message)
      this.failing = reason
    }
    const attempt = this.state.kind === 'connecting' ? this.state.attempt + 1 : 1
    const timer = setTimeout(() => { void this.connect(attempt) }, wait)
    this.state = { kind: 'backoff', timer, until: Date.now() + wait }
  }

  private sessionOptions (): SessionOptions {
    const c = this.config
    const o: SessionOptions = {
      clientId: c.clientId ?? this.deps.clientId,
      protocolVersion: c.mqttVersion === '5' ? 5 : 4,
      keepaliveMs: c.keepalive,
      sessionExpirySeconds: Math.round(c.sessionExpiry / 1000),
      inFlight: c.inFlight,
      mappings: this.mappings,
      maxPayload: c.maxPayload,
      handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS
    }
    if (c.username !== undefined) o.username = c.username
    if (this.password !== undefined) o.password = this.password
    return o
  }

  /** A connected socket (TLS: handshake done), or rejects with why not, within the handshake timeout. */
  private async openSocket (): Promise<Socket> {
    const tls = this.config.tls
    const files = this.secure
      ? { ca: tls?.ca === undefined ? undefined : await readFile(tls.ca), cert: tls?.cert === undefined ? undefined : await readFile(tls.cert), key: tls?.key === undefined ? undefined : await readFile(tls.key) }
      : undefined
    return await new Promise<Socket>((resolve, reject) => {
      const socket: Socket = files === undefined
        ? netConnect({ host: this.host, port: this.port })
        : tlsConnect({ host: this.host, port: this.port, ...(isIP(this.host) === 0 ? { servername: this.host } : {}), ...definedOnly(files) })
      const timer = setTimeout(() => { socket.destroy(new Error(`no connection within ${HANDSHAKE_TIMEOUT_MS} ms`)) }, HANDSHAKE_TIMEOUT_MS)
      socket.once(files === undefined ? 'connect' : 'secureConnect', () => {
        clearTimeout(timer)
        socket.off('error', onError)
        socket.setNoDelay(true)
        resolve(socket)
      })
      const onError = (err: Error): void => {
        clearTimeout(timer)
        reject(err)
      }
      socket.once('error', onError)
    })
  }
}

function definedOnly<T extends Record<string, unknown>> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
