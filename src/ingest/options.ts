/**
 * IngestPipeline options, derived from the validated `ingest` configuration section (sizes in
 * bytes, durations in ms, keys decoded from hex). Tests build these directly.
 */
import type { Config } from '../config/index.js'
import { PRIORITIES, type Priority } from '../types.js'
import type { RateLimit } from './rate-limit.js'

export interface DeviceEntry {
  /** A device id, or a pattern with `*` / `?` (glob.ts). */
  pattern: string
  /** Pre-shared key: frames from this device must carry a valid tag (PROTOCOL.md section 5). */
  key?: Uint8Array
  /** Overrides of the default rate limit; absent fields keep the default. */
  rateLimit?: Partial<RateLimit>
}

/** One `ingest.rules` entry; sets a priority, a TTL, or both (classify.ts). */
export interface IngestRule {
  device?: string
  stream?: string
  priority?: Priority
  ttlMs?: number
}

export interface IngestOptions {
  maxFrameSize: number
  maxClockSkewMs: number
  allowUnknownDevices: boolean
  /** Exact ids win over patterns; patterns are tried in this order. */
  devices: readonly DeviceEntry[]
  rateLimit: RateLimit
  /** Per attribute, the first matching rule that sets it wins; no match keeps the device's priority and sets no deadline. */
  rules: readonly IngestRule[]
  /** Bound of the per-device table (counters, buckets): the least recently seen is forgotten. */
  maxTrackedDevices: number
  /** At most one log line per reason per this interval; default 10 s. */
  logIntervalMs?: number
}

export function ingestOptions (ingest: Config['ingest']): IngestOptions {
  const devices: DeviceEntry[] = Object.entries(ingest.devices).map(([pattern, d]) => {
    const entry: DeviceEntry = { pattern }
    if (d.key !== undefined) entry.key = Uint8Array.from(Buffer.from(d.key, 'hex'))
    if (d.rateLimit !== undefined) {
      const r: Partial<RateLimit> = {}
      if (d.rateLimit.eventsPerSecond !== undefined) r.eventsPerSecond = d.rateLimit.eventsPerSecond
      if (d.rateLimit.bytesPerSecond !== undefined) r.bytesPerSecond = d.rateLimit.bytesPerSecond
      if (d.rateLimit.burst !== undefined) r.burstMs = d.rateLimit.burst
      entry.rateLimit = r
    }
    return entry
  })
  return {
    maxFrameSize: ingest.maxFrameSize,
    maxClockSkewMs: ingest.maxClockSkew,
    allowUnknownDevices: ingest.allowUnknownDevices,
    devices,
    rateLimit: {
      eventsPerSecond: ingest.rateLimit.eventsPerSecond,
      bytesPerSecond: ingest.rateLimit.bytesPerSecond,
      burstMs: ingest.rateLimit.burst
    },
    rules: ingest.rules.map(r => {
      const rule: IngestRule = {}
      if (r.device !== undefined) rule.device = r.device
      if (r.stream !== undefined) rule.stream = r.stream
      if (r.priority !== undefined) rule.priority = PRIORITIES.indexOf(r.priority) as Priority
      if (r.ttl !== undefined) rule.ttlMs = r.ttl
      return rule
    }),
    maxTrackedDevices: ingest.maxTrackedDevices
  }
}
