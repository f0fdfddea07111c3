/**
 * JSON lines (firmware-bridge/PROTOCOL.md §3.3), for scripts: one object per line with the keys
 * of §3.2. `v` is a number, an object of numbers, a string, or {"base64": "..."} for raw bytes.
 * No CRC and no tag: a device that has a key cannot use JSON lines (bad_auth).
 *
 * The transport splits lines (and enforces the length limit while reading, so a line without
 * '\n' is never buffered whole); parseJsonLine parses one line without its '\n'.
 */
import { Buffer } from 'node:buffer'
import type { UncheckedDeviceFrame } from '../proto/codec.js'
import type { EventValue } from '../types.js'
import { deviceIdProblem, eventProblem } from './event-rules.js'
import { DEFAULT_MAX_FRAME_SIZE, reject, type DeviceEvent, type FrameOptions, type FrameResult } from './frame.js'

export type JsonLineOptions = Partial<FrameOptions>

const KEYS = new Set(['id', 'seq', 't', 'up', 'p', 's', 'v', 'tags'])
/** Canonical, padded base64 (RFC 4648 §4), as Python's base64.b64encode writes it. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

type JsonObject = Record<string, unknown>

function isObject (v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function describe (v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v
}

/** Copies an entry; a key named __proto__ must stay data, not set the prototype. */
function defineEntry<V> (record: Record<string, V>, key: string, value: V): void {
  if (key === '__proto__') Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true })
  else record[key] = value
}

function readValue (v: unknown): EventValue | string {
  if (typeof v === 'number') return { kind: 'number', number: v }
  if (typeof v === 'string') return { kind: 'text', text: v }
  if (!isObject(v)) return `"v" must be a number, an object of numbers, a string or {"base64": ...}, got ${describe(v)}`
  const names = Object.keys(v)
  if (names.length === 1 && names[0] === 'base64' && typeof v.base64 === 'string') {
    if (!BASE64.test(v.base64)) return '"v.base64" is not canonical padded base64'
    return { kind: 'raw', raw: new Uint8Array(Buffer.from(v.base64, 'base64')) }
  }
  const numbers: Record<string, number> = {}
  for (const name of names) {
    const x = v[name]
    if (typeof x !== 'number') return `"v.${name}" must be a number, got ${describe(x)}`
    defineEntry(numbers, name, x)
  }
  return { kind: 'numbers', numbers }
}

function readEvent (o: JsonObject): UncheckedDeviceFrame | string {
  for (const key of Object.keys(o)) if (!KEYS.has(key)) return `unknown key "${key}"`
  if (typeof o.id !== 'string') return `"id" must be a string, got ${describe(o.id)}`
  if (typeof o.seq !== 'number') return `"seq" must be a number, got ${describe(o.seq)}`
  const event: UncheckedDeviceFrame = { deviceId: o.id, seq: o.seq, priority: 1, stream: '' }
  if (o.t !== undefined) {
    if (typeof o.t !== 'number') return `"t" must be a number, got ${describe(o.t)}`
    event.deviceTimeMs = o.t
  }
  if (o.up !== undefined) {
    if (typeof o.up !== 'number') return `"up" must be a number, got ${describe(o.up)}`
    event.uptimeMs = o.up
  }
  if (o.p !== undefined) {
    if (typeof o.p !== 'number') return `"p" must be a number, got ${describe(o.p)}`
    event.priority = o.p
  }
  if (o.s !== undefined) {
    if (typeof o.s !== 'string') return `"s" must be a string, got ${describe(o.s)}`
    event.stream = o.s
  }
  if (o.v !== undefined) {
    const value = readValue(o.v)
    if (typeof value === 'string') return value
    event.value = value
  }
  if (o.tags !== undefined) {
    if (!isObject(o.tags)) return `"tags" must be an object, got ${describe(o.tags)}`
    const tags: Record<string, string> = {}
    const keys = Object.keys(o.tags)
    for (const k of keys) {
      const v = o.tags[k]
      if (typeof v !== 'string') return `tag "${k}" must be a string, got ${describe(v)}`
      defineEntry(tags, k, v)
    }
    // An empty object means no tags, as in protobuf.
    if (keys.length > 0) event.tags = tags
  }
  return event
}

/** Parses one JSON line (without its '\n'). Never throws. `bytes` is the line's UTF-8 length. */
export function parseJsonLine (line: string, opts: JsonLineOptions = {}): FrameResult {
  const max = opts.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE
  const bytes = Buffer.byteLength(line, 'utf8')
  if (bytes > max) return reject('oversize', `line of ${bytes} bytes, at most ${max}`, bytes)
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch (err) {
    return reject('bad_field', `not JSON: ${(err as Error).message}`, bytes)
  }
  if (!isObject(parsed)) return reject('bad_field', `a line must be a JSON object, got ${describe(parsed)}`, bytes)
  const id = typeof parsed.id === 'string' ? parsed.id : undefined
  const event = readEvent(parsed)
  if (typeof event === 'string') return reject('bad_field', event, bytes, id)
  if (opts.keyFor?.(event.deviceId) !== undefined) return reject('bad_auth', 'device has a key: JSON lines carry no authentication tag', bytes, id)
  const problem = eventProblem(event)
  if (problem !== undefined) return reject('bad_field', problem, bytes, id)
  return { ok: true, kind: 'event', event: event as DeviceEvent, authenticated: false, bytes }
}

/** The JSON line of an event (without '\n'), for tests and scripts; §3.2 defaults are omitted. */
export function encodeJsonEvent (e: DeviceEvent): string {
  const o: JsonObject = { id: e.deviceId, seq: e.seq }
  if (e.deviceTimeMs !== undefined) o.t = e.deviceTimeMs
  if (e.uptimeMs !== undefined) o.up = e.uptimeMs
  if (e.priority !== 1) o.p = e.priority
  if (e.stream !== '') o.s = e.stream
  if (e.value !== undefined) {
    switch (e.value.kind) {
      case 'number': o.v = e.value.number; break
      case 'numbers': o.v = e.value.numbers; break
      case 'text': o.v = e.value.text; break
      case 'raw': o.v = { base64: Buffer.from(e.value.raw.buffer, e.value.raw.byteOffset, e.value.raw.byteLength).toString('base64') }; break
    }
  }
  if (e.tags !== undefined) o.tags = e.tags
  return JSON.stringify(o)
}

/** The ack line for JSON-lines senders (PROTOCOL.md §4), with its '\n'. */
export function encodeJsonAck (deviceId: string, seq: number): string {
  const problem = deviceIdProblem(deviceId)
  if (problem !== undefined) throw new RangeError(problem)
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`seq must be a non-negative safe integer, got ${String(seq)}`)
  return `{"ack":${JSON.stringify(deviceId)},"seq":${seq}}\n`
}
