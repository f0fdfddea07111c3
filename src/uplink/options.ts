/** The uplink's options from the validated configuration. */
import type { Config } from '../config/index.js'
import type { TlsCredentials } from '../pki/tls-options.js'
import { parseBrokerUrl } from './connect.js'
import type { UplinkOptions } from './session.js'
import { EdgefwdError } from '../errors.js'

/** Topics of one gateway: `<prefix>/<gateway>/events|status|health`. */
export function gatewayTopics (config: Pick<Config, 'gateway' | 'uplink'>): { events: string, status: string, health: string } {
  const base = `${config.uplink.topicPrefix}/${config.gateway.id}`
  return { events: `${base}/events`, status: `${base}/status`, health: `${base}/health` }
}

export function uplinkOptions (config: Pick<Config, 'gateway' | 'uplink'>, deps: { credentials: () => TlsCredentials, nextBatchSeq: () => number }): UplinkOptions {
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
    batch: { maxEvents: u.batch.maxEvents, maxBytes: u.batch.maxBytes },
    lingerMs: u.batch.linger,
    compression: { compression: u.compression, level: u.compressionLevel },
    pubackTimeoutMs: u.pubackTimeout,
    connectTimeoutMs: u.connectTimeout,
    keepaliveS: Math.max(1, Math.round(u.keepalive / 1000)),
    backoff: { initialMs: u.backoff.initial, maxMs: u.backoff.max, multiplier: u.backoff.multiplier, refusedMinMs: Math.min(u.backoff.refusedMin, u.backoff.max) },
    nextBatchSeq: deps.nextBatchSeq,
    ...(u.rateLimit === undefined ? {} : { rateLimitBytesPerSecond: u.rateLimit }),
    ...(u.dailyBudget === undefined ? {} : { dailyBudgetBytes: u.dailyBudget })
  }
}
