import { readExpiresAtMs } from '../proto/codec.js'
import type { Priority } from '../types.js'

/**
 * LevelDB key layout (all big-endian, so byte order is numeric order):
 *   'e' | priority (1 byte) | store seq (8 bytes)   an event; value = protobuf Event bytes
 *   'm'                                             the meta record (JSON, see meta.ts)
 *   'r' | report id (8 bytes)                       a pending eviction report (protobuf EvictionReport)
 *   'x' | expires at ms (8) | priority (1) | seq (8) the expiry index: one empty record per event
 *                                                   that carries expires_at_ms, in the same batch
 * Ascending order of event keys is "lowest priority first, oldest first": eviction reads forward
 * from 'e'|0, draining reads each priority's range from 3 down. The expiry index is in deadline
 * order, so the TTL sweep reads only the entries already due.
 */

export const EVENT_KEY_BYTES = 10
export const EXPIRY_KEY_BYTES = 18
const E = 0x65
const R = 0x72
const X = 0x78

/**
 * Bytes an event is counted as: its key, its value and, when it carries a deadline, its expiry
 * index entry (so the capacity bounds the index too).
 */
export function storedBytes (valueBytes: number, hasDeadline: boolean): number {
  return EVENT_KEY_BYTES + valueBytes + (hasDeadline ? EXPIRY_KEY_BYTES : 0)
}
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

/**
 * The deadline (expires_at_ms) of stored Event bytes, if any. Bytes that do not parse count as
 * having none, so one damaged value cannot stop leasing, eviction or a recount.
 */
export function deadlineOf (value: Uint8Array): number | undefined {
  try {
    return readExpiresAtMs(value)
  } catch {
    return undefined
  }
}

/** One expiry index entry: the event (priority, seq) is due at expiresAt. */
export interface ExpiryEntry { expiresAt: number, priority: Priority, seq: number }

export function expiryKey (e: ExpiryEntry): Buffer {
  const k = Buffer.allocUnsafe(EXPIRY_KEY_BYTES)
  k[0] = X
  writeU64(k, 1, e.expiresAt)
  k[9] = e.priority
  writeU64(k, 10, e.seq)
  return k
}

export function entryOfExpiryKey (key: Uint8Array): ExpiryEntry {
  return {
    expiresAt: u32(key, 1) * 0x1_0000_0000 + u32(key, 5),
    priority: key[9] as Priority,
    seq: u32(key, 10) * 0x1_0000_0000 + u32(key, 14)
  }
}

/** Entries due strictly before `before`, after `after` (exclusive) when given. */
export function expiryRange (before: number, after: ExpiryEntry | undefined): { gt?: Buffer, gte?: Buffer, lt: Buffer } {
  const lt = expiryKey({ expiresAt: before, priority: 0, seq: 0 })
  return after === undefined ? { gte: Buffer.from([X]), lt } : { gt: expiryKey(after), lt }
}

export const EXPIRY_RANGE = { gte: Buffer.from([X]), lt: Buffer.from([X + 1]) }

/** Total order of expiry entries, the same as their keys' byte order. */
export function compareExpiry (a: ExpiryEntry, b: ExpiryEntry): number {
  return a.expiresAt - b.expiresAt || a.priority - b.priority || a.seq - b.seq
}
