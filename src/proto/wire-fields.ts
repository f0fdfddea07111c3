/**
 * Typed access to protobufjs reflection messages (decode side) and canonical plain objects for
 * protobufjs to encode (encode side). Used by the reflection-based codecs (envelope, eviction
 * report, device frame, heartbeat); the Event codec is hand-written and does not need it.
 *
 * 64-bit integers: protobufjs 8 decodes uint64 as a Long object when the `long` package can be
 * required (it is a dependency, so normally yes) and as a plain number otherwise (e.g. a bundle
 * that leaves it out); both are accepted here and must fit a JS safe integer, else the decode
 * fails rather than silently rounding. On encode, protobufjs writes JS numbers above 2^32 exactly.
 *
 * Presence: protobufjs puts defaults on the message prototype (an absent optional uint64 reads
 * as Long 0, an absent bytes field as []), so presence is an own property. The encode side omits
 * proto3 default values, as protoc does, so both produce the same bytes.
 */
import { WireError } from './wire-reader.js'
import type { WireMessage, WireObject } from './schema.js'

interface LongLike { low: number, high: number }

function isLongLike (v: unknown): v is LongLike {
  return typeof v === 'object' && v !== null && typeof (v as LongLike).low === 'number' && typeof (v as LongLike).high === 'number'
}

export function has (m: WireMessage, name: string): boolean {
  return Object.hasOwn(m, name) && m[name] !== null && m[name] !== undefined
}

export function u64 (m: WireMessage, name: string): number {
  const v = m[name]
  if (v === undefined || v === null) return 0
  if (isLongLike(v)) {
    const high = v.high >>> 0
    if (high > 0x1fffff) throw new WireError(`${name} exceeds 2^53-1`)
    return high * 0x100000000 + (v.low >>> 0)
  }
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v
  throw new WireError(`${name} is not a uint64 that fits 2^53-1: ${String(v)}`)
}

/** uint32, int32, double and enum fields: protobufjs always returns numbers for them. */
export function num (m: WireMessage, name: string): number {
  const v = m[name]
  if (v === undefined || v === null) return 0
  if (typeof v !== 'number') throw new WireError(`${name} is not a number`)
  return v
}

export function str (m: WireMessage, name: string): string {
  const v = m[name]
  if (v === undefined || v === null) return ''
  if (typeof v !== 'string') throw new WireError(`${name} is not a string`)
  return v
}

export function bool (m: WireMessage, name: string): boolean {
  return m[name] === true
}

/** A view of the input bytes, as a plain Uint8Array even when protobufjs returns a Buffer. */
export function bytes (m: WireMessage, name: string): Uint8Array {
  const v = m[name]
  if (v instanceof Uint8Array) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
  if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) return new Uint8Array(0)
  throw new WireError(`${name} is not bytes`)
}

export function message (m: WireMessage, name: string): WireMessage | undefined {
  if (!has(m, name)) return undefined
  const v = m[name]
  if (typeof v !== 'object') throw new WireError(`${name} is not a message`)
  return v as WireMessage
}

export function messages (m: WireMessage, name: string): WireMessage[] {
  const v = m[name]
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) throw new WireError(`${name} is not a repeated field`)
  return v as WireMessage[]
}

export function stringMap (m: WireMessage, name: string): Record<string, string> | undefined {
  const v = m[name]
  if (typeof v !== 'object' || v === null) return undefined
  const entries = Object.entries(v)
  if (entries.length === 0) return undefined
  for (const [k, value] of entries) if (typeof value !== 'string') throw new WireError(`${name}.${k} is not a string`)
  return { ...(v as Record<string, string>) }
}

export function numberMap (m: WireMessage, name: string): Record<string, number> {
  const v = m[name]
  if (typeof v !== 'object' || v === null) return {}
  for (const [k, value] of Object.entries(v)) if (typeof value !== 'number') throw new WireError(`${name}.${k} is not a number`)
  return { ...(v as Record<string, number>) }
}

// Encode side: validate, then set only non-default values. A bad value is a programming error
// (the caller built the object), hence RangeError rather than a coded error.

export function putU64 (o: WireObject, name: string, v: number, always = false): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative safe integer, got ${String(v)}`)
  if (v !== 0 || always) o[name] = v
}

export function putU32 (o: WireObject, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} must be a uint32, got ${String(v)}`)
  if (v !== 0) o[name] = v
}

export function putI32 (o: WireObject, name: string, v: number): void {
  if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new RangeError(`${name} must be an int32, got ${String(v)}`)
  if (v !== 0) o[name] = v
}

export function putDouble (o: WireObject, name: string, v: number): void {
  if (typeof v !== 'number') throw new RangeError(`${name} must be a number, got ${typeof v}`)
  if (v !== 0 || Object.is(v, -0)) o[name] = v
}

export function putString (o: WireObject, name: string, v: string): void {
  if (typeof v !== 'string') throw new RangeError(`${name} must be a string, got ${typeof v}`)
  if (v !== '') o[name] = v
}

export function putBool (o: WireObject, name: string, v: boolean): void {
  if (v) o[name] = true
}

export function putBytes (o: WireObject, name: string, v: Uint8Array): void {
  if (!(v instanceof Uint8Array)) throw new RangeError(`${name} must be a Uint8Array`)
  if (v.length !== 0) o[name] = v
}
