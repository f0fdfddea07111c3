import type { Priority } from '../types.js'

/**
 * LevelDB key layout (all big-endian, so byte order is numeric order):
 *   'e' | priority (1 byte) | store seq (8 bytes)   an event; value = protobuf Event bytes
 *   'm'                                             the meta record (JSON, see meta.ts)
 *   'r' | report id (8 bytes)                       a pending eviction report (protobuf EvictionReport)
 * Ascending order of event keys is "lowest priority first, oldest first": eviction reads forward
 * from 'e'|0, draining reads each priority's range from 3 down.
 */

export const EVENT_KEY_BYTES = 10
const E = 0x65
const R = 0x72
export const META_KEY = Buffer.from('m')

export function eventKey (priority: Priority, seq: number): Buffer {
  const k = Buffer.allocUnsafe(EVENT_KEY_BYTES)
  k[0] = E
  k[1] = priority
  writeU64(k, 2, seq)
  return k
}

/** Seq of an event key; safe because seqs stay below 2^53. Byte arithmetic: runs per scanned event. */
export function seqOfEventKey (key: Uint8Array): number {
  return u32(key, 2) * 0x1_0000_0000 + u32(key, 6)
}

function u32 (b: Uint8Array, o: number): number {
  return ((b[o] as number) * 0x100_0000) + (((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number))
}

export function priorityRange (priority: Priority): { gte: Buffer, lt: Buffer } {
  return { gte: Buffer.from([E, priority]), lt: Buffer.from([E, priority + 1]) }
}

// Two 32-bit writes instead of BigInt: this runs once per appended event.
function writeU64 (buf: Buffer, offset: number, n: number): void {
  buf.writeUInt32BE(Math.floor(n / 0x1_0000_0000), offset)
  buf.writeUInt32BE(n >>> 0, offset + 4)
}

export function reportKey (id: number): Buffer {
  const k = Buffer.allocUnsafe(9)
  k[0] = R
  writeU64(k, 1, id)
  return k
}

export function idOfReportKey (key: Uint8Array): number {
  return u32(key, 1) * 0x1_0000_0000 + u32(key, 5)
}

export const REPORT_RANGE = { gte: Buffer.from([R]), lt: Buffer.from([R + 1]) }
