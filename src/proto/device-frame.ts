/** Codec for edgefwd.v1.DeviceFrame, one reading as a device sends it (inside the framed protocol). */
import type { EventValue, Priority } from '../types.js'
import { decodeGuard } from './decode-error.js'
import { checkPriority, priorityFromWire } from './enums.js'
import { wireTypes, type WireMessage, type WireObject } from './schema.js'
import { bytes, has, message, num, numberMap, putString, putU64, str, stringMap, u64 } from './wire-fields.js'

export interface DeviceFrameData {
  deviceId: string
  seq: number
  /** proto3 optional: absent stays absent, 0 stays 0. */
  deviceTimeMs?: number
  uptimeMs?: number
  priority: Priority
  stream: string
  /** A decoded `raw` value is a view of the input bytes. */
  value?: EventValue
  tags?: Record<string, string>
}

function valueToWire (o: WireObject, value: EventValue): void {
  switch (value.kind) {
    case 'number':
      if (typeof value.number !== 'number') throw new RangeError('value.number must be a number')
      o.number = value.number
      return
    case 'numbers':
      for (const [k, v] of Object.entries(value.numbers)) {
        if (typeof v !== 'number') throw new RangeError(`value.numbers.${k} must be a number`)
      }
      o.numbers = { values: value.numbers }
      return
    case 'text':
      if (typeof value.text !== 'string') throw new RangeError('value.text must be a string')
      o.text = value.text
      return
    case 'raw':
      if (!(value.raw instanceof Uint8Array)) throw new RangeError('value.raw must be a Uint8Array')
      o.raw = value.raw
      return
    default:
      throw new RangeError(`value.kind must be number, numbers, text or raw, got ${String((value as { kind: unknown }).kind)}`)
  }
}

function tagsToWire (o: WireObject, tags: Record<string, string>): void {
  const entries = Object.entries(tags)
  if (entries.length === 0) return
  for (const [k, v] of entries) if (typeof v !== 'string') throw new RangeError(`tags.${k} must be a string`)
  o.tags = tags
}

function valueFromWire (m: WireMessage): EventValue | undefined {
  // protobufjs sets the oneof's virtual property to the name of the member that was on the wire.
  switch (m.value) {
    case 'number': return { kind: 'number', number: num(m, 'number') }
    case 'numbers': return { kind: 'numbers', numbers: numberMap(message(m, 'numbers') ?? {}, 'values') }
    case 'text': return { kind: 'text', text: str(m, 'text') }
    case 'raw': return { kind: 'raw', raw: bytes(m, 'raw') }
    default: return undefined
  }
}

export function encodeDeviceFrame (f: DeviceFrameData): Uint8Array {
  const o: WireObject = {}
  putString(o, 'deviceId', f.deviceId)
  putU64(o, 'seq', f.seq)
  if (f.deviceTimeMs !== undefined) putU64(o, 'deviceTimeMs', f.deviceTimeMs, true)
  if (f.uptimeMs !== undefined) putU64(o, 'uptimeMs', f.uptimeMs, true)
  const priority = checkPriority(f.priority, 'priority')
  if (priority !== 0) o.priority = priority
  putString(o, 'stream', f.stream)
  if (f.value !== undefined) valueToWire(o, f.value)
  if (f.tags !== undefined) tagsToWire(o, f.tags)
  return wireTypes.DeviceFrame.encode(o)
}

/** Throws EdgefwdError EDGEFWD_ERR_PROTO_DECODE on bad bytes or an unknown priority. */
export function decodeDeviceFrame (b: Uint8Array): DeviceFrameData {
  return decodeGuard('DeviceFrame', b, (input) => {
    const m = wireTypes.DeviceFrame.decode(input)
    const frame: DeviceFrameData = {
      deviceId: str(m, 'deviceId'),
      seq: u64(m, 'seq'),
      priority: priorityFromWire(num(m, 'priority'), 'priority'),
      stream: str(m, 'stream')
    }
    if (has(m, 'deviceTimeMs')) frame.deviceTimeMs = u64(m, 'deviceTimeMs')
    if (has(m, 'uptimeMs')) frame.uptimeMs = u64(m, 'uptimeMs')
    const value = valueFromWire(m)
    if (value !== undefined) frame.value = value
    const tags = stringMap(m, 'tags')
    if (tags !== undefined) frame.tags = tags
    return frame
  })
}
