/**
 * The ack frame (type 0x03, firmware-bridge/PROTOCOL.md §4), gateway → device, sent once the
 * store has durably written a device's events up to `seq`. Body, fixed layout:
 *
 *   id length n (1 byte) | device id (n bytes) | seq (8 bytes, little-endian)
 *
 * Acks carry no authentication tag. parseAck is the device side (simulators, tests); a gateway
 * rejects an ack it receives (frame.ts).
 */
import { CRC_LENGTH, FRAME_TYPE_CODES, MIN_FRAME_SIZE, PROTOCOL_VERSION, toStreamFrame, writeCrc } from './frame.js'
import { crc32c } from './crc32c.js'
import { deviceIdProblem } from './event-rules.js'
import type { RejectReason } from './reasons.js'

const TWO_POW_32 = 0x100000000

export type AckResult =
  | { ok: true, deviceId: string, seq: number, bytes: number }
  | { ok: false, reason: RejectReason, detail: string, bytes: number }

/** The raw ack frame. Throws RangeError for an invalid device id or seq (a gateway bug). */
export function encodeAck (deviceId: string, seq: number): Uint8Array {
  const problem = deviceIdProblem(deviceId)
  if (problem !== undefined) throw new RangeError(problem)
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`seq must be a non-negative safe integer, got ${String(seq)}`)
  const n = deviceId.length
  const out = new Uint8Array(2 + 1 + n + 8 + CRC_LENGTH)
  out[0] = PROTOCOL_VERSION
  out[1] = FRAME_TYPE_CODES.ack
  out[2] = n
  // A valid device id is printable ASCII: one byte per character.
  for (let i = 0; i < n; i++) out[3 + i] = deviceId.charCodeAt(i)
  const at = 3 + n
  const low = seq % TWO_POW_32
  const high = Math.floor(seq / TWO_POW_32)
  for (let i = 0; i < 4; i++) {
    out[at + i] = (low >>> (8 * i)) & 0xff
    out[at + 4 + i] = (high >>> (8 * i)) & 0xff
  }
  writeCrc(out, out.length - CRC_LENGTH)
  return out
}

/** encodeAck, COBS-encoded and 0x00-terminated: what a stream transport writes. */
export function encodeStreamAck (deviceId: string, seq: number): Uint8Array {
  return toStreamFrame(encodeAck(deviceId, seq))
}

function fail (reason: RejectReason, detail: string, bytes: number): AckResult {
  return { ok: false, reason, detail, bytes }
}

/** Parses a raw ack frame (COBS already removed). Never throws. */
export function parseAck (frame: Uint8Array): AckResult {
  const bytes = frame.length
  if (bytes < MIN_FRAME_SIZE) return fail('bad_field', `frame of ${bytes} bytes, at least ${MIN_FRAME_SIZE}`, bytes)
  const crcAt = bytes - CRC_LENGTH
  const stored = ((frame[crcAt] as number) | ((frame[crcAt + 1] as number) << 8) | ((frame[crcAt + 2] as number) << 16) | ((frame[crcAt + 3] as number) << 24)) >>> 0
  if (stored !== crc32c(frame, 0, crcAt)) return fail('bad_crc', 'CRC32C does not match', bytes)
  if (frame[0] !== PROTOCOL_VERSION) return fail('bad_version', `version ${String(frame[0])}, expected ${PROTOCOL_VERSION}`, bytes)
  if (frame[1] !== FRAME_TYPE_CODES.ack) return fail('bad_field', `frame type ${String(frame[1])} is not an ack (3, without tag)`, bytes)
  const n = frame[2] as number
  if (crcAt !== 3 + n + 8) return fail('bad_field', `ack body of ${crcAt - 2} bytes does not fit a ${n}-byte device id`, bytes)
  let deviceId = ''
  for (let i = 0; i < n; i++) deviceId += String.fromCharCode(frame[3 + i] as number)
  const problem = deviceIdProblem(deviceId)
  if (problem !== undefined) return fail('bad_field', problem, bytes)
  const at = 3 + n
  let low = 0
  let high = 0
  for (let i = 3; i >= 0; i--) {
    low = low * 256 + (frame[at + i] as number)
    high = high * 256 + (frame[at + 4 + i] as number)
  }
  if (high > 0x1fffff) return fail('bad_field', 'seq exceeds 2^53-1', bytes)
  return { ok: true, deviceId, seq: high * TWO_POW_32 + low, bytes }
}
