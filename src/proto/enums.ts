/**
 * Enum mapping between edgefwd's names and the protobuf enum values. Priority 0..3 is the proto
 * value itself; DROP_REASONS[i] is DropReason value i + 1 (0 is DROP_REASON_UNSPECIFIED).
 * proto3 enums are open, so a decoder can meet values it has no name for: those fail the decode,
 * since edgefwd's types cannot carry them.
 */
import { DROP_REASONS, isPriority, type DropReasonName, type Priority } from '../types.js'
import { WireError } from './wire-reader.js'

export const COMPRESSIONS = ['none', 'gzip', 'deflate'] as const
export type CompressionName = typeof COMPRESSIONS[number]

export function priorityFromWire (v: number, field: string): Priority {
  if (!isPriority(v)) throw new WireError(`${field}: unknown priority ${v}`)
  return v
}

export function checkPriority (v: Priority, field: string): Priority {
  if (!isPriority(v)) throw new RangeError(`${field} must be 0..3, got ${String(v)}`)
  return v
}

export function dropReasonToWire (reason: DropReasonName, field: string): number {
  const i = DROP_REASONS.indexOf(reason)
  if (i < 0) throw new RangeError(`${field} must be one of ${DROP_REASONS.join(', ')}, got ${String(reason)}`)
  return i + 1
}

export function dropReasonFromWire (v: number, field: string): DropReasonName {
  const name = DROP_REASONS[v - 1]
  if (name === undefined) throw new WireError(`${field}: unknown drop reason ${v}`)
  return name
}

export function compressionToWire (c: CompressionName, field: string): number {
  const i = COMPRESSIONS.indexOf(c)
  if (i < 0) throw new RangeError(`${field} must be one of ${COMPRESSIONS.join(', ')}, got ${String(c)}`)
  return i
}

export function compressionFromWire (v: number, field: string): CompressionName {
  const name = COMPRESSIONS[v]
  if (name === undefined) throw new WireError(`${field}: unknown compression ${v}`)
  return name
}
