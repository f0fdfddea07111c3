/**
 * Uplink options for tests against a broker: the settings every uplink test shares, then the
 * test's own. Batch sequence numbers count from 1 per call.
 */
import type { TlsCredentials } from '../../src/pki/tls-options.js'
import { parseBrokerUrl } from '../../src/uplink/connect.js'
import type { UplinkOptions } from '../../src/uplink/session.js'

export function testUplinkOptions (url: string, credentials: () => TlsCredentials, over: Partial<UplinkOptions> = {}): UplinkOptions {
  let seq = 0
  const gatewayId = over.gatewayId ?? 'gw-1'
  return {
    brokers: [parseBrokerUrl(url)],
    credentials,
    gatewayId,
    protocolVersion: 5,
    topics: { events: `edgefwd/${gatewayId}/events`, status: `edgefwd/${gatewayId}/status` },
    window: 8,
    batch: { maxEvents: 250, maxBytes: 128 * 1024 },
    lingerMs: 20,
    compression: { compression: 'auto' },
    pubackTimeoutMs: 5000,
    connectTimeoutMs: 5000,
    keepaliveS: 30,
    backoff: { initialMs: 50, maxMs: 500, multiplier: 2 },
    nextBatchSeq: () => ++seq,
    ...over
  }
}
