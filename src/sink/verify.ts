/**
 * SequenceVerifier: checks, per (gateway, device), that every device sequence number either
 * arrived or was reported dropped by that gateway.
 *
 * State per (gateway, device): the device seqs received and the seqs covered by DroppedRange
 * spans, both as IntervalSets, so memory grows with the number of holes, not of events (an
 * in-order stream is one interval). Nothing is kept per report: a report's ranges are merged
 * into the set as they arrive, before or after the events around them.
 *
 * Gap definition. A device's seqs may start anywhere, and the last seqs sent are unknowable, so
 * the span checked is [low, high] where low/high are the lowest/highest seq received or reported
 * dropped (a reported drop proves its seqs existed). With `expectedFirstSeq` set (e.g. 1), low is
 * at most that value, so a missing head of the stream counts too. In the span:
 *   missing            = seqs never received
 *   explainedMissing   = missing seqs inside some DroppedRange span of that gateway and device
 *   unexplainedMissing = the rest, listed as gaps (device, from, to)
 * A DroppedRange span may also hold seqs that were delivered (priorities of one device
 * interleave; see the proto), so a span explains only the seqs in it that never arrived.
 * A summary is a snapshot: events still in flight look like unexplained gaps until they arrive.
 *
 * Duplicates are event-level: the same (gateway, device, seq) received again, whatever batch it
 * came in (a batch regrouped after a restart has a new batch seq but the same device seqs).
 * `delivered` counts distinct events, so events fed = delivered + duplicates.
 *
 * Out of scope: a device whose seq restarts (reboot without a persisted counter) looks like
 * duplicates; a report with `rangesTruncated` may leave gaps unexplained (counted in
 * `truncatedReports` so a reader knows).
 */
import type { EvictionReportData, StoredEvent } from '../proto/codec.js'
import type { DecodedEnvelope } from './decode.js'
import { holes, IntervalSet } from './interval-set.js'

export interface SequenceVerifierOptions {
  /** When set, a device's span starts at most here, so missing first seqs count as gaps. */
  expectedFirstSeq?: number
  /** Unexplained gaps listed in a summary at most (the counts stay exact). Default 1000. */
  maxGapsListed?: number
}

export interface SequenceGap {
  gatewayId: string
  deviceId: string
  fromSeq: number
  toSeq: number
}

export interface DeviceSummary {
  gatewayId: string
  deviceId: string
  /** The span checked: lowest and highest seq received or reported dropped (see the module doc). */
  lowSeq: number
  highSeq: number
  delivered: number
  duplicates: number
  explainedMissing: number
  unexplainedMissing: number
}

export interface VerifierSummary {
  delivered: number
  duplicates: number
  explainedMissing: number
  unexplainedMissing: number
  /** Eviction reports that said more ranges existed than they carried. */
  truncatedReports: number
  /** DroppedRange entries ignored because firstSeq > lastSeq. */
  invalidRanges: number
  /** Sorted by gateway id, then device id. */
  perDevice: DeviceSummary[]
  /** Ascending per device; at most maxGapsListed. */
  unexplainedGaps: SequenceGap[]
  unexplainedGapsTruncated: boolean
}

interface DeviceState {
  received: IntervalSet
  dropped: IntervalSet
  delivered: number
  duplicates: number
}

function compareStrings (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

export class SequenceVerifier {
  readonly #expectedFirstSeq: number | undefined
  readonly #maxGapsListed: number
  readonly #gateways = new Map<string, Map<string, DeviceState>>()
  #truncatedReports = 0
  #invalidRanges = 0

  constructor (options: SequenceVerifierOptions = {}) {
    this.#expectedFirstSeq = options.expectedFirstSeq
    this.#maxGapsListed = options.maxGapsListed ?? 1000
  }

  /** Feeds a decoded envelope: its eviction report (if any) and its events. */
  addEnvelope (decoded: DecodedEnvelope): void {
    const gatewayId = decoded.envelope.gatewayId
    if (decoded.envelope.evictionReport !== undefined) this.addEvictionReport(gatewayId, decoded.envelope.evictionReport)
    this.addEvents(gatewayId, decoded.events)
  }

  addEvents (gatewayId: string, events: readonly StoredEvent[]): void {
    for (const e of events) {
      const d = this.#device(gatewayId, e.deviceId)
      if (d.received.add(e.deviceSeq) === 1) d.delivered++
      else d.duplicates++
    }
  }

  addEvictionReport (gatewayId: string, report: EvictionReportData): void {
    if (report.rangesTruncated) this.#truncatedReports++
    for (const r of report.ranges) {
      if (r.firstSeq > r.lastSeq) {
        this.#invalidRanges++
        continue
      }
      this.#device(gatewayId, r.deviceId).dropped.add(r.firstSeq, r.lastSeq)
    }
  }

  /** Sizes of what is held, for tests and metrics. */
  stats (): { devices: number, intervals: number } {
    let devices = 0
    let intervals = 0
    for (const devs of this.#gateways.values()) {
      for (const d of devs.values()) {
        devices++
        intervals += d.received.intervalCount + d.dropped.intervalCount
      }
    }
    return { devices, intervals }
  }

  summary (): VerifierSummary {
    const out: VerifierSummary = {
      delivered: 0,
      duplicates: 0,
      explainedMissing: 0,
      unexplainedMissing: 0,
      truncatedReports: this.#truncatedReports,
      invalidRanges: this.#invalidRanges,
      perDevice: [],
      unexplainedGaps: [],
      unexplainedGapsTruncated: false
    }
    for (const gatewayId of [...this.#gateways.keys()].sort(compareStrings)) {
      const devs = this.#gateways.get(gatewayId) as Map<string, DeviceState>
      for (const deviceId of [...devs.keys()].sort(compareStrings)) {
        const d = devs.get(deviceId) as DeviceState
        const s = this.#deviceSummary(gatewayId, deviceId, d, out)
        out.perDevice.push(s)
        out.delivered += s.delivered
        out.duplicates += s.duplicates
        out.explainedMissing += s.explainedMissing
        out.unexplainedMissing += s.unexplainedMissing
      }
    }
    return out
  }

  #deviceSummary (gatewayId: string, deviceId: string, d: DeviceState, out: VerifierSummary): DeviceSummary {
    const lows = [d.received.min, d.dropped.min, this.#expectedFirstSeq].filter((v): v is number => v !== undefined)
    const highs = [d.received.max, d.dropped.max].filter((v): v is number => v !== undefined)
    const lowSeq = Math.min(...lows)
    const highSeq = Math.max(...highs)
    const s: DeviceSummary = {
      gatewayId, deviceId, lowSeq, highSeq, delivered: d.delivered, duplicates: d.duplicates, explainedMissing: 0, unexplainedMissing: 0
    }
    const dropped = [...d.dropped.intervals()]
    let k = 0
    const unexplained = (fromSeq: number, toSeq: number): void => {
      s.unexplainedMissing += toSeq - fromSeq + 1
      if (out.unexplainedGaps.length < this.#maxGapsListed) out.unexplainedGaps.push({ gatewayId, deviceId, fromSeq, toSeq })
      else out.unexplainedGapsTruncated = true
    }
    // Both hole lists are ascending, so one pointer into `dropped` serves every hole.
    for (const [lo, hi] of holes(d.received, lowSeq, highSeq)) {
      let next = lo
      while (next <= hi) {
        while (k < dropped.length && (dropped[k] as [number, number])[1] < next) k++
        const r = dropped[k]
        if (r === undefined || r[0] > hi) {
          unexplained(next, hi)
          break
        }
        if (r[0] > next) unexplained(next, r[0] - 1)
        const end = Math.min(hi, r[1])
        s.explainedMissing += end - Math.max(next, r[0]) + 1
        next = end + 1
      }
    }
    return s
  }

  #device (gatewayId: string, deviceId: string): DeviceState {
    let devs = this.#gateways.get(gatewayId)
    if (devs === undefined) {
      devs = new Map()
      this.#gateways.set(gatewayId, devs)
    }
    let d = devs.get(deviceId)
    if (d === undefined) {
      d = { received: new IntervalSet(), dropped: new IntervalSet(), delivered: 0, duplicates: 0 }
      devs.set(deviceId, d)
    }
    return d
  }
}
