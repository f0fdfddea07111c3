/**
 * The field rules of firmware-bridge/PROTOCOL.md §3, shared by the three event encodings
 * (protobuf, msgpack, JSON lines) and the hello frame. Each check returns undefined when the
 * input is valid, else the `detail` of a `bad_field` rejection: specific enough for a firmware
 * developer reading the gateway's log to find the bug.
 *
 * The decoders have already checked types (a string is a string); these are the range rules.
 */
import type { DeviceHelloData, UncheckedDeviceFrame } from '../proto/codec.js'
import { isPriority } from '../types.js'

/** PROTOCOL.md §3. Byte counts are UTF-8 bytes. */
export const FIELD_LIMITS = {
  deviceIdBytes: 64,
  streamBytes: 64,
  numbers: 32,
  textBytes: 1024,
  rawBytes: 8192,
  tags: 8,
  tagKeyBytes: 32,
  tagValueBytes: 64,
  /** Not in §3: a hello's firmware version is logged, so it is kept to a log-friendly size. */
  firmwareVersionBytes: 64
} as const

const MAX_SAFE = Number.MAX_SAFE_INTEGER

/** Printable ASCII 0x21..0x7E; `topicSafe` also excludes '/', '+', '#' (MQTT topic segment). */
function asciiProblem (what: string, s: string, maxBytes: number, topicSafe: boolean): string | undefined {
  // A UTF-16 length above the limit means at least that many UTF-8 bytes.
  if (s.length > maxBytes) return `${what} is longer than ${maxBytes} bytes`
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x21 || c > 0x7e) return `${what} has character U+${c.toString(16).toUpperCase().padStart(4, '0')} at index ${i}: printable ASCII (0x21-0x7E) only`
    if (topicSafe && (c === 0x2f || c === 0x2b || c === 0x23)) return `${what} contains '${String.fromCharCode(c)}' at index ${i}: it becomes an MQTT topic segment`
  }
  return undefined
}

/**
 * The last device id and stream that passed, so a device's next frame costs one comparison (the
 * protobuf reader even returns the same string instance). Measured: the rules for a typical
 * event went from 160 to 70 ns. '' never passes as a device id, so the initial value is safe.
 */
let lastGoodDeviceId = ''
let lastGoodStream = ''

/** Undefined when `id` is a valid device id (1-64 printable ASCII bytes, none of / + #). */
export function deviceIdProblem (id: string): string | undefined {
  if (id === lastGoodDeviceId) return undefined
  if (id.length === 0) return 'device id is empty'
  const problem = asciiProblem('device id', id, FIELD_LIMITS.deviceIdBytes, true)
  if (problem === undefined) lastGoodDeviceId = id
  return problem
}

export function isValidDeviceId (id: unknown): id is string {
  return typeof id === 'string' && deviceIdProblem(id) === undefined
}

/** The UTF-8 length of `s`, or -1 when it holds a lone surrogate (not encodable as UTF-8). */
export function utf8Length (s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c < 0xd800 || c > 0xdfff) n += 3
    else if (c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4
      i++
    } else {
      return -1
    }
  }
  return n
}

function textProblem (what: string, s: string, minBytes: number, maxBytes: number): string | undefined {
  // Fast path: every UTF-16 unit is at most 3 UTF-8 bytes, and ASCII strings are common.
  const n = s.length * 3 <= maxBytes && s.length >= minBytes ? -2 : utf8Length(s)
  if (n === -2) return wellFormed(s) ? undefined : `${what} is not valid UTF-8 (lone surrogate)`
  if (n < 0) return `${what} is not valid UTF-8 (lone surrogate)`
  if (n < minBytes) return `${what} is empty`
  if (n > maxBytes) return `${what} is ${n} bytes, at most ${maxBytes}`
  return undefined
}

function wellFormed (s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0xd800 || c > 0xdfff) continue
    if (c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++
    else return false
  }
  return true
}

function uint64Problem (what: string, v: number): string | undefined {
  if (!Number.isInteger(v) || v < 0) return `${what} must be a non-negative integer, got ${String(v)}`
  if (v > MAX_SAFE) return `${what} ${v} exceeds 2^53-1`
  return undefined
}

/**
 * Undefined when the event follows PROTOCOL.md §3; then it is a valid DeviceFrameData (the
 * caller may treat it as one).
 */
export function eventProblem (e: UncheckedDeviceFrame): string | undefined {
  const id = deviceIdProblem(e.deviceId)
  if (id !== undefined) return id
  const seq = uint64Problem('seq', e.seq)
  if (seq !== undefined) return seq
  if (e.deviceTimeMs !== undefined) {
    const p = uint64Problem('device time', e.deviceTimeMs)
    if (p !== undefined) return p
  }
  if (e.uptimeMs !== undefined) {
    const p = uint64Problem('uptime', e.uptimeMs)
    if (p !== undefined) return p
  }
  if (!isPriority(e.priority)) return `priority must be 0-3, got ${String(e.priority)}`
  if (e.stream !== lastGoodStream) {
    const p = asciiProblem('stream', e.stream, FIELD_LIMITS.streamBytes, false)
    if (p !== undefined) return p
    lastGoodStream = e.stream
  }
  if (e.value !== undefined) {
    const p = valueProblem(e.value)
    if (p !== undefined) return p
  }
  if (e.tags !== undefined) return tagsProblem(e.tags)
  return undefined
}

function valueProblem (v: NonNullable<UncheckedDeviceFrame['value']>): string | undefined {
  switch (v.kind) {
    case 'number':
      return undefined
    case 'text':
      return textProblem('text value', v.text, 0, FIELD_LIMITS.textBytes)
    case 'raw':
      return v.raw.length > FIELD_LIMITS.rawBytes ? `raw value is ${v.raw.length} bytes, at most ${FIELD_LIMITS.rawBytes}` : undefined
    case 'numbers': {
      const names = Object.keys(v.numbers)
      if (names.length > FIELD_LIMITS.numbers) return `${names.length} named numbers, at most ${FIELD_LIMITS.numbers}`
      for (const name of names) {
        // §3 sets no length for names; they must still be encodable (the store writes UTF-8).
        if (!wellFormed(name)) return 'a number name is not valid UTF-8 (lone surrogate)'
      }
      return undefined
    }
  }
}

function tagsProblem (tags: Record<string, string>): string | undefined {
  const keys = Object.keys(tags)
  if (keys.length > FIELD_LIMITS.tags) return `${keys.length} tags, at most ${FIELD_LIMITS.tags}`
  for (const k of keys) {
    const pk = textProblem('tag key', k, 1, FIELD_LIMITS.tagKeyBytes)
    if (pk !== undefined) return pk
    const pv = textProblem(`tag '${k}' value`, tags[k] as string, 0, FIELD_LIMITS.tagValueBytes)
    if (pv !== undefined) return pv
  }
  return undefined
}

/** Undefined when the hello is valid: a valid device id and a firmware version of at most 64 bytes. */
export function helloProblem (h: DeviceHelloData): string | undefined {
  return deviceIdProblem(h.deviceId) ?? textProblem('firmware version', h.firmwareVersion, 0, FIELD_LIMITS.firmwareVersionBytes)
}
