import type { DropCountData, DroppedRangeData, EvictionReportData } from '../proto/codec.js'
import type { DropReasonName, Priority } from '../types.js'

/** One dropped event, as much as a report needs of it. */
export interface Drop {
  priority: Priority
  reason: DropReasonName
  bytes: number
  gatewayTimeMs: number
  deviceId: string
  deviceSeq: number
}

/** Ranges kept in one report; counts stay exact beyond it and `rangesTruncated` says so. */
export const MAX_REPORT_RANGES = 2000

/** Builds the report for a set of drops: exact counts per (priority, reason), per-device seq ranges. */
export function reportFromDrops (drops: readonly Drop[]): EvictionReportData {
  const counts = new Map<string, DropCountData>()
  for (const d of drops) {
    addCount(counts, {
      priority: d.priority, reason: d.reason, count: 1, bytes: d.bytes, firstGatewayTimeMs: d.gatewayTimeMs, lastGatewayTimeMs: d.gatewayTimeMs
    })
  }
  const ranges = drops.map((d): DroppedRangeData => ({
    deviceId: d.deviceId, firstSeq: d.deviceSeq, lastSeq: d.deviceSeq, count: 1, priority: d.priority, reason: d.reason
  }))
  return finish(counts, ranges, false)
}

/** Merges several reports (e.g. every pending report record a lease carries) into one. */
export function mergeReports (reports: readonly EvictionReportData[]): EvictionReportData {
  const counts = new Map<string, DropCountData>()
  const ranges: DroppedRangeData[] = []
  let truncated = false
  for (const r of reports) {
    for (const c of r.counts) addCount(counts, c)
    ranges.push(...r.ranges)
    truncated ||= r.rangesTruncated
  }
  return finish(counts, ranges, truncated)
}

function addCount (counts: Map<string, DropCountData>, c: DropCountData): void {
  const key = `${c.priority}:${c.reason}`
  const prev = counts.get(key)
  if (prev === undefined) { counts.set(key, { ...c }); return }
  prev.count += c.count
  prev.bytes += c.bytes
  prev.firstGatewayTimeMs = Math.min(prev.firstGatewayTimeMs, c.firstGatewayTimeMs)
  prev.lastGatewayTimeMs = Math.max(prev.lastGatewayTimeMs, c.lastGatewayTimeMs)
}

/**
 * One range per (device, priority, reason): [lowest, highest] dropped seq and how many were
 * dropped. A device's priorities interleave, so dropping only its low events leaves holes at every
 * other seq; keeping a range per hole would grow without bound. A receiver checks that the number
 * of seqs it never got inside a range equals the range's count (DroppedRange in the .proto).
 */
function coalesce (ranges: DroppedRangeData[]): DroppedRangeData[] {
  const byKey = new Map<string, DroppedRangeData>()
  for (const r of ranges) {
    const key = `${r.deviceId}\u0000${r.priority}\u0000${r.reason}`
    const prev = byKey.get(key)
    if (prev === undefined) { byKey.set(key, { ...r }); continue }
    prev.firstSeq = Math.min(prev.firstSeq, r.firstSeq)
    prev.lastSeq = Math.max(prev.lastSeq, r.lastSeq)
    prev.count += r.count
  }
  return [...byKey.values()].sort((a, b) =>
    a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : a.priority - b.priority || a.reason.localeCompare(b.reason))
}

function finish (counts: Map<string, DropCountData>, ranges: DroppedRangeData[], truncated: boolean): EvictionReportData {
  const merged = coalesce(ranges)
  return {
    counts: [...counts.values()].sort((a, b) => a.priority - b.priority || a.reason.localeCompare(b.reason)),
    ranges: merged.slice(0, MAX_REPORT_RANGES),
    rangesTruncated: truncated || merged.length > MAX_REPORT_RANGES
  }
}
