/** Codec for edgefwd.v1.EvictionReport and its parts (DropCount, DroppedRange), via reflection. */
import type { DropReasonName, Priority } from '../types.js'
import { decodeGuard } from './decode-error.js'
import { checkPriority, dropReasonFromWire, dropReasonToWire, priorityFromWire } from './enums.js'
import { wireTypes, type WireMessage, type WireObject } from './schema.js'
import { bool, messages, num, putBool, putString, putU64, str, u64 } from './wire-fields.js'

export interface DropCountData {
  priority: Priority
  reason: DropReasonName
  count: number
  bytes: number
  firstGatewayTimeMs: number
  lastGatewayTimeMs: number
}

export interface DroppedRangeData {
  deviceId: string
  firstSeq: number
  lastSeq: number
  count: number
  priority: Priority
  reason: DropReasonName
}

export interface EvictionReportData {
  counts: DropCountData[]
  ranges: DroppedRangeData[]
  rangesTruncated: boolean
}

export function dropCountToWire (d: DropCountData, path: string): WireObject {
  const o: WireObject = {}
  const priority = checkPriority(d.priority, `${path}.priority`)
  if (priority !== 0) o.priority = priority
  o.reason = dropReasonToWire(d.reason, `${path}.reason`)
  putU64(o, 'count', d.count)
  putU64(o, 'bytes', d.bytes)
  putU64(o, 'firstGatewayTimeMs', d.firstGatewayTimeMs)
  putU64(o, 'lastGatewayTimeMs', d.lastGatewayTimeMs)
  return o
}

export function dropCountFromWire (m: WireMessage, path: string): DropCountData {
  return {
    priority: priorityFromWire(num(m, 'priority'), `${path}.priority`),
    reason: dropReasonFromWire(num(m, 'reason'), `${path}.reason`),
    count: u64(m, 'count'),
    bytes: u64(m, 'bytes'),
    firstGatewayTimeMs: u64(m, 'firstGatewayTimeMs'),
    lastGatewayTimeMs: u64(m, 'lastGatewayTimeMs')
  }
}

function droppedRangeToWire (r: DroppedRangeData, path: string): WireObject {
  const o: WireObject = {}
  putString(o, 'deviceId', r.deviceId)
  putU64(o, 'firstSeq', r.firstSeq)
  putU64(o, 'lastSeq', r.lastSeq)
  putU64(o, 'count', r.count)
  const priority = checkPriority(r.priority, `${path}.priority`)
  if (priority !== 0) o.priority = priority
  o.reason = dropReasonToWire(r.reason, `${path}.reason`)
  return o
}

function droppedRangeFromWire (m: WireMessage, path: string): DroppedRangeData {
  return {
    deviceId: str(m, 'deviceId'),
    firstSeq: u64(m, 'firstSeq'),
    lastSeq: u64(m, 'lastSeq'),
    count: u64(m, 'count'),
    priority: priorityFromWire(num(m, 'priority'), `${path}.priority`),
    reason: dropReasonFromWire(num(m, 'reason'), `${path}.reason`)
  }
}

export function evictionReportToWire (r: EvictionReportData): WireObject {
  const o: WireObject = {}
  if (r.counts.length > 0) o.counts = r.counts.map((d, i) => dropCountToWire(d, `counts[${i}]`))
  if (r.ranges.length > 0) o.ranges = r.ranges.map((d, i) => droppedRangeToWire(d, `ranges[${i}]`))
  putBool(o, 'rangesTruncated', r.rangesTruncated)
  return o
}

export function evictionReportFromWire (m: WireMessage): EvictionReportData {
  return {
    counts: messages(m, 'counts').map((d, i) => dropCountFromWire(d, `counts[${i}]`)),
    ranges: messages(m, 'ranges').map((d, i) => droppedRangeFromWire(d, `ranges[${i}]`)),
    rangesTruncated: bool(m, 'rangesTruncated')
  }
}

export function encodeEvictionReport (r: EvictionReportData): Uint8Array {
  return wireTypes.EvictionReport.encode(evictionReportToWire(r))
}

/** Throws EdgefwdError EDGEFWD_ERR_PROTO_DECODE on bad bytes or unknown enum values. */
export function decodeEvictionReport (b: Uint8Array): EvictionReportData {
  return decodeGuard('EvictionReport', b, (bytes) => evictionReportFromWire(wireTypes.EvictionReport.decode(bytes)))
}
