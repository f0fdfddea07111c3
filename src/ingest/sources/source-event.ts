/**
 * What the sources (MQTT topics, Modbus polls) share: turning a reading into the FrameResult the
 * IngestPipeline takes, so a mapped reading goes through exactly what a device frame goes
 * through after parsing: the field rules of PROTOCOL.md §3 (event-rules.ts), the device table,
 * rate limits, rules and counters.
 *
 * ## Sequence numbers
 * These devices send no sequence number, and the store, the uplink and the sink's verifier want
 * one per device. SeqAssigner gives a device `now_ms × 1000` for its first reading in this
 * process and +1 for each next one, so
 * - within a run a device's seqs are dense (the pipeline's `seqGaps` stays 0: no reading is
 *   numbered and then lost before the pipeline);
 * - across restarts they keep increasing as long as the clock does and a device averages under
 *   1000 readings per millisecond since its first, which no rate limit allows. A clock set back
 *   (a Pi without a real-time clock, before NTP) can repeat seqs; nothing dedupes on them
 *   (the sink dedupes whole batches by the gateway's batch seq), so that costs only the
 *   verifier's duplicate count.
 * 2^53 / 1000 ms is year 2255.
 */
import { eventProblem } from '../event-rules.js'
import { reject, type DeviceEvent, type FrameResult } from '../frame.js'
import { LruMap } from '../lru-map.js'
import type { EventValue, Priority } from '../../types.js'

/** The priority of a source's events before ingest.rules: `normal`, as for a JSON line without one. */
export const SOURCE_PRIORITY: Priority = 1

export class SeqAssigner {
  private readonly last: LruMap<string, number>

  constructor (maxDevices: number, private readonly now: () => number = Date.now) {
    this.last = new LruMap(maxDevices)
  }

  next (deviceId: string): number {
    const before = this.last.get(deviceId)
    const seq = before === undefined ? this.now() * 1000 : before + 1
    this.last.set(deviceId, seq)
    return seq
  }
}

export interface Reading {
  deviceId: string
  stream: string
  value: EventValue
  tags?: Record<string, string>
  /** What the reading cost on the wire (the MQTT payload, the Modbus response): rate limits count it. */
  bytes: number
}

/**
 * The reading as an accepted event, or a `bad_field` rejection naming the rule it breaks. The
 * seq is taken only for a reading that passes, so seqs stay dense.
 */
export function readingResult (r: Reading, seqs: SeqAssigner): FrameResult {
  const event: DeviceEvent = { deviceId: r.deviceId, seq: 0, priority: SOURCE_PRIORITY, stream: r.stream, value: r.value }
  if (r.tags !== undefined && Object.keys(r.tags).length > 0) event.tags = r.tags
  const problem = eventProblem(event)
  if (problem !== undefined) return reject('bad_field', problem, r.bytes, r.deviceId)
  event.seq = seqs.next(r.deviceId)
  return { ok: true, kind: 'event', event, authenticated: false, bytes: r.bytes }
}

