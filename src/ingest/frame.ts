/**
 * The frame envelope of firmware-bridge/PROTOCOL.md §1-2 and §5, as pure functions: no I/O, no
 * state. UDP hands parseFrame one datagram; byte streams go through StreamDeframer
 * (stream-deframer.ts), which COBS-decodes and then calls parseFrameAt.
 *
 * parseFrame checks, in this order, and the first failure decides the reason:
 *   1. length: longer than maxFrameSize → oversize; shorter than 6 bytes → bad_field
 *   2. CRC32C → bad_crc
 *   3. version byte → bad_version
 *   4. type: unknown, or `ack` (which only the gateway sends) → bad_field
 *   5. body structure (protobuf, msgpack): not decodable → bad_field. The device id that picks
 *      the key is read from the body, so a body that cannot be read cannot be authenticated either.
 *   6. authentication (§5): a device with a key and no tag or a wrong tag → bad_auth. A tag from
 *      a device without a key is not checked: the frame is accepted with authenticated = false
 *      (so a key can be put on a device before it is added to the gateway's configuration).
 *   7. the field rules of §3 (event-rules.ts) → bad_field
 * So a frame that breaks a §3 rule and has a wrong tag is bad_auth: nothing of an unauthenticated
 * frame is trusted, not even its field values in log messages.
 *
 * No exceptions for any input bytes: every outcome is a FrameResult.
 */
import { decodeDeviceHello, readDeviceFrame, type DeviceFrameData, type DeviceHelloData, type UncheckedDeviceFrame } from '../proto/codec.js'
import { AUTH_TAG_LENGTH, MAX_KEY_LENGTH, MIN_KEY_LENGTH, authTagMatches, computeAuthTag } from './auth-tag.js'
import { cobsEncodeInto, cobsMaxEncodedLength } from './cobs.js'
import { crc32c } from './crc32c.js'
import { eventProblem, helloProblem, isValidDeviceId } from './event-rules.js'
import { decodeMsgpackBody } from './msgpack-event.js'
import type { RejectReason } from './reasons.js'

export const PROTOCOL_VERSION = 0x01
export const FRAME_TYPE_CODES = { event: 0x01, 'event-msgpack': 0x02, ack: 0x03, hello: 0x04 } as const
export type FrameType = keyof typeof FRAME_TYPE_CODES
/** Bit 7 of the type byte: a 16-byte authentication tag follows the body. */
export const TAG_FLAG = 0x80
export const CRC_LENGTH = 4
/** Version, type, empty body, CRC. */
export const MIN_FRAME_SIZE = 6
export const DEFAULT_MAX_FRAME_SIZE = 16384

export interface FrameOptions {
  /** The largest frame accepted, version to CRC, before COBS. PROTOCOL.md's default: 16384. */
  maxFrameSize: number
  /** The pre-shared key of a device, if it has one (PROTOCOL.md §5). */
  keyFor?: (deviceId: string) => Uint8Array | undefined
}

/** An accepted event: DeviceFrameData that follows every rule of PROTOCOL.md §3. */
export type DeviceEvent = DeviceFrameData

export type FrameResult =
  | { ok: true, kind: 'event', event: DeviceEvent, authenticated: boolean, bytes: number }
  | { ok: true, kind: 'hello', hello: DeviceHelloData, authenticated: boolean, bytes: number }
  | { ok: false, reason: RejectReason, deviceId?: string, detail: string, bytes: number }

export type FrameRejection = Extract<FrameResult, { ok: false }>

export interface FrameSpec {
  type: FrameType
  body: Uint8Array
  /** With a key, the frame carries an authentication tag (§5). 16 to 64 bytes. */
  key?: Uint8Array
}

/**
 * `deviceId` only when it is a valid device id: a rejected frame's id goes into metric labels
 * and logs, so garbage must not create new label values.
 */
export function reject (reason: RejectReason, detail: string, bytes: number, deviceId?: string): FrameRejection {
  return isValidDeviceId(deviceId) ? { ok: false, reason, deviceId, detail, bytes } : { ok: false, reason, detail, bytes }
}

/** The raw frame (as one UDP datagram carries it): version, type, body, optional tag, CRC. */
export function encodeFrame (f: FrameSpec): Uint8Array {
  const code = FRAME_TYPE_CODES[f.type]
  if (code === undefined) throw new RangeError(`unknown frame type ${String(f.type)}`)
  const key = f.key
  if (key !== undefined && (key.length < MIN_KEY_LENGTH || key.length > MAX_KEY_LENGTH)) {
    throw new RangeError(`a device key is ${MIN_KEY_LENGTH} to ${MAX_KEY_LENGTH} bytes, got ${key.length}`)
  }
  const bodyEnd = 2 + f.body.length
  const tagLength = key === undefined ? 0 : AUTH_TAG_LENGTH
  const out = new Uint8Array(bodyEnd + tagLength + CRC_LENGTH)
  out[0] = PROTOCOL_VERSION
  out[1] = key === undefined ? code : code | TAG_FLAG
  out.set(f.body, 2)
  if (key !== undefined) out.set(computeAuthTag(key, out, 0, bodyEnd), bodyEnd)
  writeCrc(out, out.length - CRC_LENGTH)
  return out
}

/** Writes the CRC32C of buf[0, end) little-endian at `end`. */
export function writeCrc (buf: Uint8Array, end: number): void {
  const crc = crc32c(buf, 0, end)
  buf[end] = crc & 0xff
  buf[end + 1] = (crc >>> 8) & 0xff
  buf[end + 2] = (crc >>> 16) & 0xff
  buf[end + 3] = crc >>> 24
}

/** A raw frame as a byte stream carries it: COBS-encoded, then one 0x00. */
export function toStreamFrame (frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(cobsMaxEncodedLength(frame.length) + 1)
  const n = cobsEncodeInto(frame, 0, frame.length, out, 0)
  out[n] = 0
  return out.slice(0, n + 1)
}

/** encodeFrame, COBS-encoded and 0x00-terminated, for TCP, unix sockets and serial lines. */
export function encodeStreamFrame (f: FrameSpec): Uint8Array {
  return toStreamFrame(encodeFrame(f))
}

/** Parses one raw frame (a UDP datagram, or a COBS-decoded stream frame). `bytes` = frame.length. */
export function parseFrame (frame: Uint8Array, opts: FrameOptions): FrameResult {
  return parseFrameAt(frame, 0, frame.length, opts, frame.length)
}

/**
 * parseFrame over buf[start, end), reporting `bytes` in the result (the stream deframer reports
 * the bytes the frame took on the wire). Nothing in the result refers to buf.
 */
export function parseFrameAt (buf: Uint8Array, start: number, end: number, opts: FrameOptions, bytes: number): FrameResult {
  const length = end - start
  if (length > opts.maxFrameSize) return reject('oversize', `frame of ${length} bytes, at most ${opts.maxFrameSize}`, bytes)
  if (length < MIN_FRAME_SIZE) return reject('bad_field', `frame of ${length} bytes, at least ${MIN_FRAME_SIZE}`, bytes)
  const crcAt = end - CRC_LENGTH
  const stored = ((buf[crcAt] as number) | ((buf[crcAt + 1] as number) << 8) | ((buf[crcAt + 2] as number) << 16) | ((buf[crcAt + 3] as number) << 24)) >>> 0
  const computed = crc32c(buf, start, crcAt)
  if (stored !== computed) return reject('bad_crc', `CRC32C ${hex32(stored)} does not match ${hex32(computed)}`, bytes)
  const version = buf[start] as number
  if (version !== PROTOCOL_VERSION) return reject('bad_version', `version ${version}, expected ${PROTOCOL_VERSION}`, bytes)
  const typeByte = buf[start + 1] as number
  const tagged = (typeByte & TAG_FLAG) !== 0
  const bodyEnd = tagged ? crcAt - AUTH_TAG_LENGTH : crcAt
  if (bodyEnd < start + 2) return reject('bad_field', `frame of ${length} bytes is too short for its authentication tag`, bytes)
  const type = typeByte & 0x7f
  switch (type) {
    case 0x01: {
      let event: UncheckedDeviceFrame
      try {
        event = readDeviceFrame(buf, start + 2, bodyEnd)
      } catch (err) {
        return reject('bad_field', `event body is not a DeviceFrame: ${(err as Error).message}`, bytes)
      }
      return acceptEvent(event, buf, start, bodyEnd, tagged, opts, bytes)
    }
    case 0x02: {
      const decoded = decodeMsgpackBody(buf, start + 2, bodyEnd)
      if (!decoded.ok) return reject('bad_field', `event-msgpack body: ${decoded.detail}`, bytes, decoded.deviceId)
      return acceptEvent(decoded.event, buf, start, bodyEnd, tagged, opts, bytes)
    }
    case 0x04:
      return acceptHello(buf, start, bodyEnd, tagged, opts, bytes)
    case 0x03:
      return reject('bad_field', 'an ack frame (type 3) goes from gateway to device, never the other way', bytes)
    default:
      return reject('bad_field', `unknown frame type ${type}`, bytes)
  }
}

/**
 * PROTOCOL.md §5 for one frame: false when the device has no key (the tag, if any, is not
 * checked), true when its tag verified, else why the frame must be rejected as bad_auth.
 */
function checkAuth (deviceId: string, buf: Uint8Array, start: number, bodyEnd: number, tagged: boolean, opts: FrameOptions): boolean | string {
  const key = opts.keyFor?.(deviceId)
  if (key === undefined) return false
  if (!tagged) return 'device has a key: frame has no authentication tag'
  if (!authTagMatches(key, buf, start, bodyEnd)) return 'authentication tag does not match'
  return true
}

function acceptEvent (event: UncheckedDeviceFrame, buf: Uint8Array, start: number, bodyEnd: number, tagged: boolean, opts: FrameOptions, bytes: number): FrameResult {
  const auth = opts.keyFor === undefined ? false : checkAuth(event.deviceId, buf, start, bodyEnd, tagged, opts)
  if (typeof auth === 'string') return reject('bad_auth', auth, bytes, event.deviceId)
  const problem = eventProblem(event)
  if (problem !== undefined) return reject('bad_field', problem, bytes, event.deviceId)
  // eventProblem checked every field DeviceFrameData narrows (priority 0..3, safe integers).
  return { ok: true, kind: 'event', event: event as DeviceEvent, authenticated: auth === true, bytes }
}

function acceptHello (buf: Uint8Array, start: number, bodyEnd: number, tagged: boolean, opts: FrameOptions, bytes: number): FrameResult {
  let hello: DeviceHelloData
  try {
    hello = decodeDeviceHello(buf.subarray(start + 2, bodyEnd))
  } catch (err) {
    return reject('bad_field', `hello body is not a DeviceHello: ${(err as Error).message}`, bytes)
  }
  const auth = opts.keyFor === undefined ? false : checkAuth(hello.deviceId, buf, start, bodyEnd, tagged, opts)
  if (typeof auth === 'string') return reject('bad_auth', auth, bytes, hello.deviceId)
  const problem = helloProblem(hello)
  if (problem !== undefined) return reject('bad_field', problem, bytes, hello.deviceId)
  return { ok: true, kind: 'hello', hello, authenticated: auth === true, bytes }
}

function hex32 (v: number): string {
  return '0x' + v.toString(16).padStart(8, '0')
}
