/** The uplink's options from the validated configuration. */
import type { Config } from '../config/index.js'
import { memoryBudget } from '../config/memory-budget.js'
import type { TlsCredentials } from '../pki/tls-options.js'
import { parseBrokerUrl } from './connect.js'
import type { UplinkOptions } from './session.js'
import type { LiveUplinkSettings } from './send-limits.js'
import { EdgefwdError } from '../errors.js'

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
    address: parseBrokerUrl(u.url),
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
