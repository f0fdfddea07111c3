/**
 * The simulation's verdict: every event a device sent ends up in exactly one column.
 *
 *   delivered            the sink received it (first delivery; later ones are duplicates)
 *   evicted              not delivered, and inside a range the gateway reported dropped
 *                        (evicted or expired) for that device, up to the range's count: loss,
 *                        but never silent
 *   dropped at ingest    refused by the gateway's checks (rate limit, bad frame, ...), counted by
 *                        the gateway per device and reason
 *   lost before gateway  never reached the gateway: the device's own ring overflowed, or (UDP
 *                        only, which has no acknowledgements) the datagram was lost on the way
 *   unexplained          everything else: an event the gateway took and neither delivered nor
 *                        reported. Must be zero.
 *
 * A device knows which of its events it gave up itself: those are lost before the gateway,
 * event by event. The gateway's counts are per device and reason, not per event, so the rest of
 * a device's missing events (neither delivered nor reported) are attributed to "dropped at
 * ingest" up to the gateway's rejection count, then, for UDP only, to datagrams lost on the way
 * up to what the gateway's frame count says never arrived, oldest first; what remains is
 * unexplained. For TCP the wire is not an excuse: TCP loses nothing while a connection lives, and
 * devices with acks resend what was not acknowledged.
 */
import { PRIORITIES, type PriorityName } from '../src/index.js'
import type { PriorityRow } from './report.js'

export interface SentRecord { seq: number, priority: PriorityName, sentAtMs: number }

export interface DeviceLedger {
  transport: 'tcp' | 'udp'
  /** Every event the device produced (first sends). */
  sent: readonly SentRecord[]
  /** Seqs the device itself gave up (disconnected without acks, its ring full, a failed send). */
  deviceLost: ReadonlySet<number>
  /** Frames the gateway received from this device (all attempts) and rejected, by reason; summed over restarts. */
  gatewayFrames: number
  gatewayRejected: Readonly<Record<string, number>>
}

/** What the sink saw of one device: first delivery latency by seq, and extra deliveries by seq. */
export interface DeviceDeliveries {
  latencyMs: Map<number, number>
  duplicates: Map<number, number>
}

/**
 * What the gateway reported dropped for one device: inclusive seq ranges and how many events
 * each held. A range may span seqs that were delivered or never stored (refused at ingest in
 * between), so it explains at most `count` of the missing seqs inside it.
 */
export type ReportedRanges = ReadonlyArray<{ from: number, to: number, count: number, priority: PriorityName }>

export interface UnexplainedEvent { deviceId: string, seq: number, priority: PriorityName }

export interface Accounting {
  rows: PriorityRow[]
  latencyMs: { p50: number, p99: number, max: number, count: number }
  unexplained: UnexplainedEvent[]
  criticalUndelivered: number
  verdict: { ok: boolean, reasons: string[] }
}

/**
 * Takes one event of a range of this priority holding `seq` that has some left; false when none
 * has. The priority must match: a device's priorities interleave, so its low range spans its
 * normal events too, and must not explain them.
 *
 * Ranges of one device and priority overlap (one per reason and report: a long outage's
 * evicted_for_space range can span a later rejected_full one). Called with ascending seqs, taking
 * from the range that ends first leaves the wider ranges for the seqs beyond: the greedy that
 * explains the most (first-fit left seqs past the narrow range unexplained).
 */
function takeFromRange (left: Array<{ from: number, to: number, count: number, priority: PriorityName }>, seq: number, priority: PriorityName): boolean {
  let best: { to: number, count: number } | undefined
  for (const r of left) {
    if (r.priority === priority && seq >= r.from && seq <= r.to && r.count > 0 && (best === undefined || r.to < best.to)) best = r
  }
  if (best === undefined) return false
  best.count--
  return true
}

function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number
}

/** Describes up to `max` unexplained events as ranges per device: "plc-1 seq 10–12, plc-2 seq 5". */
export function describeUnexplained (events: readonly UnexplainedEvent[], max = 5): string {
  const parts: string[] = []
  let i = 0
  while (i < events.length && parts.length < max) {
    const first = events[i] as UnexplainedEvent
    let last = first
    while (i + 1 < events.length && events[i + 1]?.deviceId === first.deviceId && events[i + 1]?.seq === last.seq + 1) last = events[++i] as UnexplainedEvent
    parts.push(`${first.deviceId} seq ${first.seq}${last.seq === first.seq ? '' : `–${last.seq}`}`)
    i++
  }
  return parts.join(', ') + (i < events.length ? ', …' : '')
}

export function account (devices: ReadonlyMap<string, DeviceLedger>, deliveries: ReadonlyMap<string, DeviceDeliveries>,
  reported: ReadonlyMap<string, ReportedRanges>): Accounting {
  const rows = new Map<PriorityName, PriorityRow>(PRIORITIES.map(p => [p, {
    priority: p, sent: 0, delivered: 0, evicted: 0, droppedAtIngest: {}, lostBeforeGateway: 0, duplicates: 0, unexplained: 0
  }]))
  const row = (p: PriorityName): PriorityRow => rows.get(p) as PriorityRow
  const latencies: number[] = []
  const unexplained: UnexplainedEvent[] = []
  let criticalUndelivered = 0

  for (const [deviceId, ledger] of [...devices].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
    const got = deliveries.get(deviceId)
    const ranges = (reported.get(deviceId) ?? []).map(r => ({ ...r }))
    const missing: SentRecord[] = []
    for (const e of ledger.sent) {
      const r = row(e.priority)
      r.sent++
      const latency = got?.latencyMs.get(e.seq)
      if (latency !== undefined) {
        r.delivered++
        latencies.push(latency)
        r.duplicates += got?.duplicates.get(e.seq) ?? 0
        continue
      }
      if (e.priority === 'critical') criticalUndelivered++
      if (takeFromRange(ranges, e.seq, e.priority)) { r.evicted++; continue }
      if (ledger.deviceLost.has(e.seq)) { r.lostBeforeGateway++; continue }
      missing.push(e)
    }
    // Attribute the missing events: the gateway's rejections first, then what never reached it.
    const rejections = Object.entries(ledger.gatewayRejected).filter(([, n]) => n > 0).map(([reason, n]) => ({ reason, left: n }))
    let lostBefore = ledger.transport === 'udp' ? Math.max(0, ledger.sent.length - ledger.deviceLost.size - ledger.gatewayFrames) : 0
    for (const e of missing) {
      const rejection = rejections.find(r => r.left > 0)
      if (rejection !== undefined) {
        rejection.left--
        const d = row(e.priority).droppedAtIngest
        d[rejection.reason] = (d[rejection.reason] ?? 0) + 1
      } else if (lostBefore > 0) {
        lostBefore--
        row(e.priority).lostBeforeGateway++
      } else {
        row(e.priority).unexplained++
        unexplained.push({ deviceId, seq: e.seq, priority: e.priority })
      }
    }
  }

  latencies.sort((a, b) => a - b)
  const reasons: string[] = []
  if (unexplained.length > 0) reasons.push(`${unexplained.length} events taken by the gateway were neither delivered nor reported dropped (${describeUnexplained(unexplained)})`)
  if (criticalUndelivered > 0) reasons.push(`${criticalUndelivered} critical events were not delivered`)
  return {
    rows: PRIORITIES.map(p => row(p)),
    latencyMs: { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), max: latencies[latencies.length - 1] ?? 0, count: latencies.length },
    unexplained,
    criticalUndelivered,
    verdict: { ok: reasons.length === 0, reasons },
  }
}
