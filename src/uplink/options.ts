/** The uplink session's options, observer and stats, and its options from the validated configuration. */
import type { Config } from '../config/index.js'
import { memoryBudget } from '../config/memory-budget.js'
import type { Lease } from '../contracts.js'
import type { TlsCredentials } from '../pki/tls-options.js'
import type { DeadLinkReason } from '../types.js'
import type { BackoffOptions } from '../backoff.js'
import type { ConnectBroker } from './broker-connection.js'
import type { Clock } from '../clock.js'
import { parseBrokerUrl, type BrokerAddress } from './connect.js'
import type { CompressionOptions } from './envelope.js'
import type { FailoverOrder } from './brokers.js'
import type { InFlightCounts } from './in-flight.js'
import type { UplinkState } from './lifecycle.js'
import type { LiveUplinkSettings } from './send-limits.js'
import { EdgefwdError } from '../errors.js'

export interface UplinkOptions {
  /** The broker, or the nodes of a cluster to fail over between (brokers.ts); at least one. */
  brokers: readonly BrokerAddress[]
  /** How the next broker is chosen after a failure; `ordered` by default. */
  failover?: FailoverOrder
  credentials: () => TlsCredentials
  gatewayId: string
  protocolVersion: 4 | 5
  topics: { events: string, status: string }
  /** Batches in flight at most (also capped by the broker's Receive Maximum). */
  window: number
  batch: { maxEvents: number, maxBytes: number }
  /**
   * After a batch that was not full, wait this long before leasing the next, so a trickle of
   * events goes out in fewer, fuller batches; also how often an empty store is asked again.
   */
  lingerMs: number
  compression: CompressionOptions
  pubackTimeoutMs: number
  connectTimeoutMs: number
  keepaliveS: number
  backoff: BackoffOptions
  /** Envelope bytes per second at most (a metered link); undefined: no cap. */
  rateLimitBytesPerSecond?: number
  /** Envelope bytes per UTC day after which only `critical` events are sent; undefined: none. */
  dailyBudgetBytes?: number
  /** Batch sequence numbers: unique per gateway, increasing, never reused across restarts. */
  nextBatchSeq: () => number
  /** The time, timers and waits of the session; the real ones by default. */
  clock?: Clock
  /** Opens a broker connection; mqtt.js over mutual TLS (connectMqtt) by default. */
  connect?: ConnectBroker
  /** Backoff jitter and the random failover order; Math.random by default. */
  random?: () => number
  /** Told of deliveries and failed connection attempts (metrics); never on the uplink's own state. */
  observer?: UplinkObserver
}

export interface UplinkObserver {
  /** A batch's PUBACK came and the store deleted its events; `pubackMs` from publish to PUBACK. */
  batchAcked?: (lease: Lease, pubackMs: number) => void
  /** A connection attempt failed; `reason` is connectFailureReason()'s label. */
  connectFailed?: (reason: string) => void
}

export interface UplinkStats extends InFlightCounts {
  state: UplinkState
  connects: number
  disconnects: number
  /** Connections found dead, by what found them (each connection at most once). */
  deadLinks: Record<DeadLinkReason, number>
  published: number
  /** Events in published batches (resends included). */
  eventsPublished: number
  bytesSent: number
  inFlight: number
  lastError: string | undefined
  /** Failed connection attempts by connectFailureReason(). */
  connectFailures: Record<string, number>
  /** The wait before the next attempt while in backoff, else 0. */
  backoffMs: number
  /** Since when the session has not been online (Unix ms); undefined while online. */
  offlineSinceMs: number | undefined
  /** The last time it was offline after having been online, once it is over: from, until, and what ended the connection. */
  lastOutage: { sinceMs: number, untilMs: number, lastError: string | undefined } | undefined
  /** Envelope bytes sent in the current UTC day, and whether the daily budget is spent. */
  bytesToday: number
  budgetExhausted: boolean
  /** Times the rate cap made the session wait, and for how long in all. */
  rateWaits: number
  rateWaitMs: number
}

/** Topics of one gateway: `<prefix>/<gateway>/events|status|health|config|config/ack`. */
export function gatewayTopics (config: Pick<Config, 'gateway' | 'uplink'>): { events: string, status: string, health: string, config: string, configAck: string } {
  const base = `${config.uplink.topicPrefix}/${config.gateway.id}`
  return { events: `${base}/events`, status: `${base}/status`, health: `${base}/health`, config: `${base}/config`, configAck: `${base}/config/ack` }
}

/**
 * Batches in flight are leased, and leased events cannot be evicted. If `window` batches of
 * `batch.maxBytes` could hold the whole store, then during a blackhole (until the PUBACK timeout)
 * everything buffered may be in flight, and the only room left for a new critical event would be
 * an older critical one. So a batch takes at most capacity / (2 × window): what is in flight never
 * holds more than half of the store. The default store (256 MiB, window 8) leaves 128 KiB alone.
 * Under a memory budget, what is in flight also stays within its uplink share (memory-budget.ts):
 * the batches and mqtt.js's copies of them are on the heap until their PUBACK.
 */
export function batchMaxBytes (configured: number, window: number, storeCapacity: number, inFlightBytes = Infinity): number {
  return Math.min(configured, Math.max(1024, Math.floor(Math.min(storeCapacity / 2, inFlightBytes) / window)))
}

/** The memory budget's bound on batches in flight (window × batch.maxBytes); none when it is off. */
function inFlightBound (config: Pick<Config, 'process'>): number {
  return memoryBudget(config.process.memory)?.uplinkInFlightBytes ?? Infinity
}

/** The uplink settings a running session can take without a restart (Uplink.reconfigure). */
export function liveUplinkSettings (config: Pick<Config, 'uplink' | 'store' | 'process'>): LiveUplinkSettings {
  const u = config.uplink
  return {
    batch: { maxEvents: u.batch.maxEvents, maxBytes: batchMaxBytes(u.batch.maxBytes, u.window, config.store.capacity, inFlightBound(config)) },
    lingerMs: u.batch.linger,
    rateLimitBytesPerSecond: u.rateLimit,
    dailyBudgetBytes: u.dailyBudget
  }
}

export function uplinkOptions (config: Pick<Config, 'gateway' | 'uplink' | 'store' | 'process'>, deps: { credentials: () => TlsCredentials, nextBatchSeq: () => number }): UplinkOptions {
  const u = config.uplink
  if (u.url === undefined) {
    throw new EdgefwdError('EDGEFWD_ERR_CONFIG_INVALID', 'uplink.url is not set: edgefwd run needs the broker to deliver to', { hint: 'set uplink.url: mqtts://broker.example:8883 (and tls.ca, tls.cert, tls.key)' })
  }
  const { events, status } = gatewayTopics(config)
  return {
    brokers: u.url.map(parseBrokerUrl),
    failover: u.failover,
    credentials: deps.credentials,
    gatewayId: config.gateway.id,
    protocolVersion: u.mqttVersion === '5' ? 5 : 4,
    topics: { events, status },
    window: u.window,
    batch: { maxEvents: u.batch.maxEvents, maxBytes: batchMaxBytes(u.batch.maxBytes, u.window, config.store.capacity, inFlightBound(config)) },
    lingerMs: u.batch.linger,
    compression: { compression: u.compression, level: u.compressionLevel },
    pubackTimeoutMs: u.pubackTimeout,
    connectTimeoutMs: u.connectTimeout,
    keepaliveS: Math.max(1, Math.round(u.keepalive / 1000)),
    backoff: { initialMs: u.backoff.initial, maxMs: u.backoff.max, multiplier: u.backoff.multiplier, refusedMinMs: u.backoff.refusedMin },
    nextBatchSeq: deps.nextBatchSeq,
    ...(u.rateLimit === undefined ? {} : { rateLimitBytesPerSecond: u.rateLimit }),
    ...(u.dailyBudget === undefined ? {} : { dailyBudgetBytes: u.dailyBudget })
  }
}
