/**
 * The event-msgpack body (frame type 0x02, firmware-bridge/PROTOCOL.md §3.2): a msgpack map with
 * short keys, for MicroPython and scripts.
 *
 *   id   str                device id (required)
 *   seq  int >= 0           (required)
 *   t    int >= 0           device time, Unix ms
 *   up   int >= 0           uptime ms
 *   p    int 0-3            priority; default 1 (normal), unlike protobuf's 0
 *   s    str                stream; default ''
 *   v    number | map str→number | str | bin
 *   tags map str→str
 *
 * Strict: an unknown key, a nil, or a value of another type is bad_field. msgpack-shape.ts checks
 * the structure first; msgpackr then decodes (with Map results, so keys are never coerced or
 * renamed: msgpackr's objects turn a `__proto__` key into `__proto_`). Integers above 2^53-1 come
 * back from msgpackr as bigint; they are passed on as numbers > Number.MAX_SAFE_INTEGER so that
 * the §3 rules (after authentication) reject them like the protobuf path does.
 */
import { Packr, Unpackr } from 'msgpackr'
import type { UncheckedDeviceFrame } from '../proto/codec.js'
import type { EventValue } from '../types.js'
import { msgpackShapeProblem } from './msgpack-shape.js'
import type { DeviceEvent } from './frame.js'

const unpackr = new Unpackr({ mapsAsObjects: false, useRecords: false, int64AsType: 'bigint' })
// variableMapSize: the smallest map header (fixmap), as MicroPython and C encoders write it.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true })

export type MsgpackBodyResult =
  | { ok: true, event: UncheckedDeviceFrame }
  | { ok: false, detail: string, deviceId?: string }

const KEYS = new Set(['id', 'seq', 't', 'up', 'p', 's', 'v', 'tags'])

/** Stores a map entry; a device-chosen key named __proto__ must stay data, not set the prototype. */
function defineEntry<V> (record: Record<string, V>, key: string, value: V): void {
  if (key === '__proto__') Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true })
  else record[key] = value
}

/** A msgpack int or float as a number; bigints above 2^53 round (and then fail the §3 rules). */
function asNumber (v: unknown): number | undefined {
  if (typeof v === 'number') return v
  if (typeof v === 'bigint') return Number(v)
  return undefined
}

function fail (detail: string, deviceId?: unknown): MsgpackBodyResult {
  return typeof deviceId === 'string' ? { ok: false, detail, deviceId } : { ok: false, detail }
}

function readValue (v: unknown): EventValue | string {
  const n = asNumber(v)
  if (n !== undefined) return { kind: 'number', number: n }
  if (typeof v === 'string') return { kind: 'text', text: v }
  // msgpackr returns bin as a Buffer view of the input: copy, the input buffer is reused.
  if (v instanceof Uint8Array) return { kind: 'raw', raw: new Uint8Array(v) }
  if (v instanceof Map) {
    const numbers: Record<string, number> = {}
    for (const [name, x] of v as Map<string, unknown>) {
      const num = asNumber(x)
      if (num === undefined) return `'v' map entry '${name}' is not a number`
      defineEntry(numbers, name, num)
    }
    return { kind: 'numbers', numbers }
  }
  return `'v' must be a number, a map of numbers, a string or bin, got ${describe(v)}`
}

function describe (v: unknown): string {
  return v === null ? 'nil' : typeof v === 'object' ? 'a map' : typeof v
}

/**
 * Decodes body[start, end) into an event whose §3 rules are not yet checked (frame.ts checks them
 * after authentication). Never throws.
 */
export function decodeMsgpackBody (buf: Uint8Array, start: number, end: number): MsgpackBodyResult {
  const shape = msgpackShapeProblem(buf, start, end)
  if (shape !== undefined) return fail(shape)
  let map: Map<string, unknown>
  try {
    map = unpackr.unpack(buf, { start, end }) as Map<string, unknown>
  } catch (err) {
    // The shape check leaves little for msgpackr to object to, but it stays the last word.
    return fail(`not decodable: ${(err as Error).message}`)
  }
  const id = map.get('id')
  for (const key of map.keys()) if (!KEYS.has(key)) return fail(`unknown key '${key}'`, id)
  if (typeof id !== 'string') return fail(`'id' must be a string, got ${describe(id)}`)
  const seq = asNumber(map.get('seq'))
  if (seq === undefined) return fail(`'seq' must be an integer, got ${describe(map.get('seq'))}`, id)
  const event: UncheckedDeviceFrame = { deviceId: id, seq, priority: 1, stream: '' }
  for (const [key, name] of [['t', 'deviceTimeMs'], ['up', 'uptimeMs']] as const) {
    if (!map.has(key)) continue
    const v = asNumber(map.get(key))
    if (v === undefined) return fail(`'${key}' must be an integer, got ${describe(map.get(key))}`, id)
    event[name] = v
  }
  if (map.has('p')) {
    const p = asNumber(map.get('p'))
    if (p === undefined) return fail(`'p' must be an integer, got ${describe(map.get('p'))}`, id)
    event.priority = p
  }
  if (map.has('s')) {
    const s = map.get('s')
    if (typeof s !== 'string') return fail(`'s' must be a string, got ${describe(s)}`, id)
    event.stream = s
  }
  if (map.has('v')) {
    const value = readValue(map.get('v'))
    if (typeof value === 'string') return fail(value, id)
    event.value = value
  }
  if (map.has('tags')) {
    const tags = map.get('tags')
    if (!(tags instanceof Map)) return fail(`'tags' must be a map, got ${describe(tags)}`, id)
    const out: Record<string, string> = {}
    for (const [k, v] of tags as Map<string, unknown>) {
      if (typeof v !== 'string') return fail(`tag '${k}' must be a string, got ${describe(v)}`, id)
      defineEntry(out, k, v)
    }
    // An empty map means no tags, as in protobuf (where the two cannot be told apart).
    if (tags.size > 0) event.tags = out
  }
  return { ok: true, event }
}

/**
 * The msgpack body of an event, for tests and device simulators. Writes only what differs from
 * the §3.2 defaults; integers above 2^32 as msgpack uint64 (msgpackr would write a float64).
 */
export function encodeMsgpackEvent (e: DeviceEvent): Uint8Array {
  const m: Record<string, unknown> = { id: e.deviceId, seq: int(e.seq) }
  if (e.deviceTimeMs !== undefined) m.t = int(e.deviceTimeMs)
  if (e.uptimeMs !== undefined) m.up = int(e.uptimeMs)
  if (e.priority !== 1) m.p = e.priority
  if (e.stream !== '') m.s = e.stream
  if (e.value !== undefined) {
    switch (e.value.kind) {
      case 'number': m.v = e.value.number; break
      case 'numbers': m.v = new Map(Object.entries(e.value.numbers)); break
      case 'text': m.v = e.value.text; break
      case 'raw': m.v = e.value.raw; break
    }
  }
  if (e.tags !== undefined) m.tags = new Map(Object.entries(e.tags))
  return new Uint8Array(packr.pack(m))
}

function int (v: number): number | bigint {
  return v > 0xffffffff && Number.isSafeInteger(v) ? BigInt(v) : v
}
