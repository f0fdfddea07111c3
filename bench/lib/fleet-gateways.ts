/**
 * Many real edgefwd gateways in one process, for the fleet bench: each is the real uplink session
 * (src/uplink/session.ts) over its own store in memory (the RingBuffer of the LevelDB store, on the
 * memory backend), with its own client id (its gateway id) and client certificate, publishing
 * over MQTT 3.1.1 (NATS's MQTT side speaks nothing else) to a node of a cluster picked at random
 * (`failover: 'random'`). The uplink's default settings but batches of 250 events (not 500).
 * What a bench needs of them: how many are online, what was delivered, when connections came
 * and went.
 *
 * Connections are seen through the session's own seam for opening them (UplinkOptions.connect
 * wraps connectMqtt): a connection's time is its CONNACK's, a loss's is when the client reports it
 * closed, failed or offline; neither is a poll's. Online, offline and given up are each session's
 * state when asked.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { createLogger, type Logger } from '../../src/observe/log.js'
import { openMemoryStore, type EventStore } from '../../src/store/index.js'
import type { BackoffOptions } from '../../src/backoff.js'
import { connectMqtt, type ConnectBroker } from '../../src/uplink/broker-connection.js'
import { parseBrokerUrl, type BrokerAddress } from '../../src/uplink/connect.js'
import { Uplink, type UplinkOptions } from '../../src/uplink/session.js'
import type { CertificatePem } from './fleet-pki.js'
import { SensorEventSource } from './sensor-events.js'
import { waitFor } from './wait.js'

/** The uplink's default backoff: 500 ms, doubling, full jitter, capped at 10 s (backoff.ts, uplink.backoff). */
export const FLEET_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 10_000, multiplier: 2 }

export interface FleetOptions {
  ids: readonly string[]
  /** mqtts:// URLs of the cluster's nodes. */
  brokerUrls: readonly string[]
  /** PEM of the CA the brokers' certificate chains to. */
  ca: string
  /** Each gateway's client certificate, by id (CN = id). */
  clients: ReadonlyMap<string, CertificatePem>
  /** Events in each gateway's store before its uplink starts. */
  eventsPerGateway: number
  /** Uplinks started per second by start(). */
  rampPerSecond: number
  backoff?: BackoffOptions
  /** Where the sessions' warnings and errors go, one pino JSON line each; absent, nowhere. */
  log?: (line: string) => void
}

export interface FleetStats {
  online: number
  /** Not online and not given up: not started yet, connecting, or backing off. */
  offline: number
  /** Sessions closing or closed (the uplink otherwise retries for ever): every one after stop(). */
  gaveUp: number
  eventsAppended: number
  /** Events whose batch was PUBACKed and deleted from the store. */
  eventsAcked: number
  /** Connections the sessions counted (online once each). */
  connects: number
  /** Failed connection attempts by reason (connectFailureReason: `connect`, `tls_rejected`, `refused_<code>`). */
  connectFailures: Record<string, number>
}

export interface Fleet {
  /** Appends `eventsPerGateway` events to every store, then starts the uplinks at `rampPerSecond`; resolves once all are started. */
  start: () => Promise<void>
  /** Appends `n` more events to every gateway's store. */
  appendMore: (n: number) => Promise<void>
  stats: () => FleetStats
  /** The CONNACK time (Unix ms) of every connection of every gateway, ascending. */
  connectTimes: () => number[]
  /** Now (Unix ms), the mark reconnectDelays() counts from. */
  markOutage: () => number
  /**
   * For each gateway that lost a connection at or after `sinceMs`: seconds from `sinceMs` to its
   * first CONNACK after that loss; Infinity for one not back yet, so that a percentile shows it.
   */
  reconnectDelays: (sinceMs: number) => number[]
  waitAllOnline: (timeoutMs: number) => Promise<void>
  /** Waits until every event appended was acked; throws after `timeoutMs`. */
  waitAllAcked: (timeoutMs: number) => Promise<void>
  /**
   * Stops every uplink (batches in flight get `graceMs` for their PUBACK, then the session's own
   * bounded offline status and DISCONNECT), then closes the stores. Again: the same stop.
   */
  stop: (graceMs?: number) => Promise<void>
}

/** Far above what a bench appends: a bound, not an allocation. Events are ~200 bytes. */
const STORE_CAPACITY_BYTES = 64 << 20
/** Events per append: the store's fast path (bench/store-bench.ts). */
const APPEND_CHUNK = 1000
/** Gateways appended to at a time by appendMore(). */
const APPEND_LANES = 32
const POLL_MS = 100

interface Gateway {
  readonly id: string
  readonly store: EventStore
  readonly uplink: Uplink
  readonly events: SensorEventSource
  appended: number
  readonly connects: number[]
  readonly losses: number[]
}

/** Opens every gateway's store and makes its uplink session; none is started yet. */
export async function openFleet (options: FleetOptions): Promise<Fleet> {
  if (!(options.rampPerSecond > 0)) throw new RangeError('openFleet: rampPerSecond must be > 0')
  if (new Set(options.ids).size !== options.ids.length) throw new RangeError('openFleet: gateway ids must be distinct')
  const log = options.log
  const logger = createLogger({ level: log === undefined ? 'silent' : 'warn', destination: { write: (line: string) => { log?.(line.trimEnd()) } } })
  const brokers = options.brokerUrls.map(parseBrokerUrl)
  const gateways = await Promise.all(options.ids.map(async id => await openGateway(id, brokers, options, logger)))
  return new GatewayFleet(gateways, options)
}

async function openGateway (id: string, brokers: readonly BrokerAddress[], options: FleetOptions, logger: Logger): Promise<Gateway> {
  const client = options.clients.get(id)
  if (client === undefined) throw new Error(`openFleet: no client certificate for gateway ${id}`)
  const credentials = { ca: options.ca, cert: client.cert, key: client.key }
  const store = await openMemoryStore({ capacityBytes: STORE_CAPACITY_BYTES, expiryIntervalMs: 0 })
  const connects: number[] = []
  const losses: number[] = []
  let batchSeq = 0
  const uplinkOptions: UplinkOptions = {
    brokers,
    failover: 'random',
    credentials: () => credentials,
    gatewayId: id,
    protocolVersion: 4,
    topics: { events: `edgefwd/${id}/events`, status: `edgefwd/${id}/status` },
    window: 8,
    batch: { maxEvents: 250, maxBytes: 128 * 1024 },
    lingerMs: 50,
    compression: { compression: 'auto' },
    pubackTimeoutMs: 10_000,
    connectTimeoutMs: 10_000,
    keepaliveS: 30,
    backoff: options.backoff ?? FLEET_BACKOFF,
    nextBatchSeq: () => ++batchSeq,
    connect: watchedConnect(connects, losses)
  }
  const uplink = new Uplink(store, uplinkOptions, logger.child({ gateway: id }))
  return { id, store, uplink, events: new SensorEventSource(), appended: 0, connects, losses }
}

/** connectMqtt, noting each connection's CONNACK time and, once, the time it is lost. */
function watchedConnect (connects: number[], losses: number[]): ConnectBroker {
  return async (address, credentials, options) => {
    const connection = await connectMqtt(address, credentials, options)
    connects.push(Date.now())
    connection.onceLost(() => { losses.push(Date.now()) })
    return connection
  }
}

class GatewayFleet implements Fleet {
  private stopping: Promise<void> | undefined

  constructor (private readonly gateways: readonly Gateway[], private readonly options: FleetOptions) {}

  async start (): Promise<void> {
    await this.appendMore(this.options.eventsPerGateway)
    const startedAt = Date.now()
    for (const [i, gateway] of this.gateways.entries()) {
      const wait = startedAt + i * 1000 / this.options.rampPerSecond - Date.now()
      if (wait > 0) await sleep(wait)
      if (this.stopping !== undefined) return
      gateway.uplink.start()
    }
  }

  async appendMore (n: number): Promise<void> {
    let next = 0
    const lane = async (): Promise<void> => {
      for (let gateway = this.gateways[next++]; gateway !== undefined; gateway = this.gateways[next++]) await appendEvents(gateway, n)
    }
    await Promise.all(Array.from({ length: APPEND_LANES }, lane))
  }

  stats (): FleetStats {
    const stats: FleetStats = { online: 0, offline: 0, gaveUp: 0, eventsAppended: 0, eventsAcked: 0, connects: 0, connectFailures: {} }
    for (const gateway of this.gateways) {
      const uplink = gateway.uplink.stats()
      if (uplink.state === 'online') stats.online++
      else if (uplink.state === 'closing' || uplink.state === 'closed') stats.gaveUp++
      else stats.offline++
      stats.eventsAppended += gateway.appended
      stats.eventsAcked += uplink.eventsAcked
      stats.connects += uplink.connects
      for (const [reason, n] of Object.entries(uplink.connectFailures)) stats.connectFailures[reason] = (stats.connectFailures[reason] ?? 0) + n
    }
    return stats
  }

  connectTimes (): number[] {
    return this.gateways.flatMap(g => g.connects).sort((a, b) => a - b)
  }

  markOutage (): number { return Date.now() }

  reconnectDelays (sinceMs: number): number[] {
    const delays: number[] = []
    for (const { losses, connects } of this.gateways) {
      const lost = losses.find(t => t >= sinceMs)
      if (lost === undefined) continue
      const back = connects.find(t => t >= lost)
      delays.push(back === undefined ? Infinity : (back - sinceMs) / 1000)
    }
    return delays
  }

  async waitAllOnline (timeoutMs: number): Promise<void> {
    await waitFor('every gateway online', () => this.gateways.every(g => g.uplink.state() === 'online'), timeoutMs, POLL_MS)
  }

  async waitAllAcked (timeoutMs: number): Promise<void> {
    await waitFor('every event acked', () => {
      const { eventsAcked, eventsAppended } = this.stats()
      return eventsAcked >= eventsAppended
    }, timeoutMs, POLL_MS)
  }

  async stop (graceMs = 2000): Promise<void> {
    this.stopping ??= this.stopAll(graceMs)
    await this.stopping
  }

  private async stopAll (graceMs: number): Promise<void> {
    // Each stop is bounded by the session: the grace, then ≤ 1 s for `offline`, 2 s for the DISCONNECT, 1 s for store acks.
    await Promise.all(this.gateways.map(async g => { await g.uplink.stop(graceMs) }))
    await Promise.all(this.gateways.map(async g => { await g.store.close() }))
  }
}

/** `n` sensor events into the gateway's store; a refusal or an eviction would leave waitAllAcked waiting, so it throws. */
async function appendEvents (gateway: Gateway, n: number): Promise<void> {
  for (let done = 0; done < n;) {
    // The gateway time is the wall clock at the append, so a receiver can measure end to end.
    const now = Date.now()
    const chunk = Array.from({ length: Math.min(APPEND_CHUNK, n - done) }, (_, i) => ({ ...gateway.events.event(gateway.appended + i), gatewayTimeMs: now }))
    const result = await gateway.store.append(chunk)
    gateway.appended += result.accepted
    if (result.rejected.length > 0 || result.evicted > 0) {
      throw new Error(`gateway ${gateway.id}: the store refused ${result.rejected.length} and evicted ${result.evicted} events`)
    }
    done += chunk.length
  }
}
