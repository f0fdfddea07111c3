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
 *
 * Source devices (`mqtt`: Tasmota-like publishers on the local broker; `modbus`: meters the
 * forwarder polls) send no seqs: the forwarder numbers their events itself. They are accounted by
 * the number each message or poll carries (tasmota-device.ts, modbus-meter.ts), which stands in
 * for the seq here:
 *   sent         mqtt: the messages the local broker acknowledged (PUBACK) to the publisher: from
 *                then on they are the broker's and the forwarder's to deliver. modbus: the polls
 *                the meter answered (1..its count), as it stood when it stopped answering at the
 *                end of the sending period, so no poll is answered while the run drains.
 *   delivered,   by that number: the first event carrying it, and any more (an MQTT message
 *   duplicates   the forwarder stored but had not acknowledged at a power cut comes again).
 *   evicted      the gateway's eviction reports name ranges of its own seqs, which say nothing
 *                about message numbers; their counts explain the device's missing numbers by
 *                count, per priority (a source device has one), as ingest rejections are.
 *   dropped at   the gateway's per-device rejection counts, as for framed devices; and for modbus
 *   ingest       devices, `poll_timeout`: polls the meter answered that the forwarder had given up
 *                on (its Modbus timeout fired first, or the late answer then failed the next
 *                read), up to the gateway's count of modbus timeouts, shared by all its modbus
 *                devices (the gateway counts them per transport only).
 *   lost before  modbus only: the polls in flight at a power cut (`deviceLost`): answered before
 *   gateway      the SIGKILL and not yet on disk, or answered into the dead connection after it.
 *                A poll runs until its event is durable before the next is sent, so that is the
 *                last poll answered before the cut and any answered after it, before the restart.
 *                Modbus has no acknowledgement: the gateway cannot get such a reading back.
 *                MQTT loses none: the local broker sends what was not acknowledged again.
 * Nothing else excuses a missing number, so a correct run has no unexplained one.
 */
import { PRIORITIES, type PriorityName } from '../src/index.js'
import type { PriorityRow } from './report.js'

export interface SentRecord { seq: number, priority: PriorityName, sentAtMs: number }

export interface DeviceLedger {
  transport: 'tcp' | 'udp' | 'mqtt' | 'modbus'
  /** Every event the device produced (first sends); for mqtt and modbus, by message or poll number (see above). */
  sent: readonly SentRecord[]
  /** Seqs the device itself gave up (disconnected without acks, its ring full, a failed send); modbus: polls in flight at a power cut. */
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

/** One device's columns (its drops at ingest summed). */
export interface DeviceTotals { sent: number, delivered: number, evicted: number, droppedAtIngest: number, lostBeforeGateway: number, duplicates: number, unexplained: number }

export interface AccountOptions {
  /** The gateway's count of failed Modbus polls for `timeout` (summed over restarts): see poll_timeout above. */
  modbusPollTimeouts?: number
}

export interface Accounting {
  rows: PriorityRow[]
  /** Per device id. */
  devices: Map<string, DeviceTotals>
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

/** Takes one event of any range of this priority that has some left (a source device's ranges are in gateway seqs). */
function takeByCount (left: Array<{ count: number, priority: PriorityName }>, priority: PriorityName): boolean {
  const r = left.find(x => x.priority === priority && x.count > 0)
  if (r === undefined) return false
  r.count--
  return true
}

const isSource = (transport: DeviceLedger['transport']): boolean => transport === 'mqtt' || transport === 'modbus'

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
  reported: ReadonlyMap<string, ReportedRanges>, options: AccountOptions = {}): Accounting {
  const rows = new Map<PriorityName, PriorityRow>(PRIORITIES.map(p => [p, {
    priority: p, sent: 0, delivered: 0, evicted: 0, droppedAtIngest: {}, lostBeforeGateway: 0, duplicates: 0, unexplained: 0
  }]))
  const row = (p: PriorityName): PriorityRow => rows.get(p) as PriorityRow
  const latencies: number[] = []
  const unexplained: UnexplainedEvent[] = []
  const perDevice = new Map<string, DeviceTotals>()
  let criticalUndelivered = 0
  let pollTimeouts = options.modbusPollTimeouts ?? 0

  for (const [deviceId, ledger] of [...devices].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
    const got = deliveries.get(deviceId)
    const ranges = (reported.get(deviceId) ?? []).map(r => ({ ...r }))
    const source = isSource(ledger.transport)
    const mine: DeviceTotals = { sent: 0, delivered: 0, evicted: 0, droppedAtIngest: 0, lostBeforeGateway: 0, duplicates: 0, unexplained: 0 }
    perDevice.set(deviceId, mine)
    const missing: SentRecord[] = []
    for (const e of ledger.sent) {
      const r = row(e.priority)
      r.sent++
      mine.sent++
      const latency = got?.latencyMs.get(e.seq)
      if (latency !== undefined) {
        const duplicates = got?.duplicates.get(e.seq) ?? 0
        r.delivered++
        mine.delivered++
        latencies.push(latency)
        r.duplicates += duplicates
        mine.duplicates += duplicates
        continue
      }
      if (e.priority === 'critical') criticalUndelivered++
      if (source ? takeByCount(ranges, e.priority) : takeFromRange(ranges, e.seq, e.priority)) { r.evicted++; mine.evicted++; continue }
      if (ledger.deviceLost.has(e.seq)) { r.lostBeforeGateway++; mine.lostBeforeGateway++; continue }
      missing.push(e)
    }
    // Attribute the missing events: the gateway's rejections first, then what never reached it.
    const rejections = Object.entries(ledger.gatewayRejected).filter(([, n]) => n > 0).map(([reason, n]) => ({ reason, left: n }))
    let lostBefore = ledger.transport === 'udp' ? Math.max(0, ledger.sent.length - ledger.deviceLost.size - ledger.gatewayFrames) : 0
    const dropped = (e: SentRecord, reason: string): void => {
      const d = row(e.priority).droppedAtIngest
      d[reason] = (d[reason] ?? 0) + 1
      mine.droppedAtIngest++
    }
    for (const e of missing) {
      const rejection = rejections.find(r => r.left > 0)
      if (rejection !== undefined) {
        rejection.left--
        dropped(e, rejection.reason)
      } else if (lostBefore > 0) {
        lostBefore--
        row(e.priority).lostBeforeGateway++
        mine.lostBeforeGateway++
      } else if (ledger.transport === 'modbus' && pollTimeouts > 0) {
        pollTimeouts--
        dropped(e, 'poll_timeout')
      } else {
        row(e.priority).unexplained++
        mine.unexplained++
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
    devices: perDevice,
    latencyMs: { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), max: latencies[latencies.length - 1] ?? 0, count: latencies.length },
    unexplained,
    criticalUndelivered,
    verdict: { ok: reasons.length === 0, reasons },
  }
}
