import { readExpiresAtMs } from '../proto/codec.js'
import type { Priority } from '../types.js'

/**
 * LevelDB key layout, version 2. Every key is printable ASCII; numbers are 14 lowercase hex
 * digits (56 bits, enough for any seq, id or time below 2^53), so byte order is numeric order:
 *   'e' | priority digit '0'..'3' | store seq               an event; value = protobuf Event bytes
 *   'm'                                                      the meta record (JSON, see meta.ts)
 *   'r' | report id                                          a pending eviction report (protobuf EvictionReport)
 *   'x' | expires at ms | priority digit | store seq         the expiry index: one empty record per
 *                                                            event that carries expires_at_ms, in the same batch
 * Ascending order of event keys is "lowest priority first, oldest first": eviction reads forward
 * from 'e0', draining reads each priority's range from 3 down. The expiry index is in deadline
 * order, so the TTL sweep reads only the entries already due.
 *
 * Why text: classic-level hands each key read to JavaScript as a new Buffer (its own native
 * backing store, which V8 must track and free) but a text key as a plain string. Reading
 * 1M events with one iterator took ~2.1 µs of main-thread time per event with binary keys and
 * ~1.4 µs with these (bench notes in docs/benchmarks.md); the drain is main-thread bound. The
 * cost is 6 more key bytes per event, mostly removed on disk by LevelDB's prefix compression.
 * Layout version 1 (binary: 'e' | priority byte | 8-byte big-endian seq) is detected at open.
 */

const HEX = 14
export const EVENT_KEY_BYTES = 2 + HEX
export const EXPIRY_KEY_BYTES = 2 + 2 * HEX

/** The largest number a key holds; seqs, ids and deadlines stay below it. */
export const KEY_NUMBER_MAX = 2 ** 53 - 1

/**
 * Bytes an event is counted as: its key, its value and, when it carries a deadline, its expiry
 * index entry (so the capacity bounds the index too).
 */
export function storedBytes (valueBytes: number, hasDeadline: boolean): number {
  return EVENT_KEY_BYTES + valueBytes + (hasDeadline ? EXPIRY_KEY_BYTES : 0)
}
export const META_KEY = 'm'

const PAD = '0'.repeat(HEX)
function hex (n: number): string {
  const s = n.toString(16)
  return s.length >= HEX ? s : PAD.slice(s.length) + s
}

/** The number in `key` at `offset` (HEX digits); NaN when they are not hex. Runs per event read: no substring. */
function numberAt (key: string, offset: number): number {
  let n = 0
  for (let i = offset; i < offset + HEX; i++) {
    const c = key.charCodeAt(i)
    // '0'-'9' → 0-9, 'a'-'f' → 10-15; anything else (or a short key) → NaN.
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : Number.NaN
    n = n * 16 + d
  }
  return n
}

const PRIORITY_CHARS = ['0', '1', '2', '3']

export function eventKey (priority: Priority, seq: number): string {
  return 'e' + (PRIORITY_CHARS[priority] as string) + hex(seq)
}

/** Seq of an event key; runs per scanned event. */
export function seqOfEventKey (key: string): number {
  return numberAt(key, 2)
}

export function priorityRange (priority: Priority): { gte: string, lt: string } {
  return { gte: 'e' + String(priority), lt: 'e' + String(priority + 1) }
}

export function reportKey (id: number): string {
  return 'r' + hex(id)
}

export function idOfReportKey (key: string): number {
  return numberAt(key, 1)
}

export const REPORT_RANGE = { gte: 'r', lt: 's' }

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

export function expiryKey (e: ExpiryEntry): string {
  return 'x' + hex(Math.min(e.expiresAt, KEY_NUMBER_MAX)) + (PRIORITY_CHARS[e.priority] as string) + hex(e.seq)
}

export function entryOfExpiryKey (key: string): ExpiryEntry {
  return {
    expiresAt: numberAt(key, 1),
    priority: (key.charCodeAt(1 + HEX) - 0x30) as Priority,
    seq: numberAt(key, 2 + HEX)
  }
}

/** Entries due strictly before `before`, after `after` (exclusive) when given. */
export function expiryRange (before: number, after: ExpiryEntry | undefined): { gt?: string, gte?: string, lt: string } {
  const lt = 'x' + hex(Math.max(0, Math.min(before, KEY_NUMBER_MAX)))
  return after === undefined ? { gte: 'x', lt } : { gt: expiryKey(after), lt }
}

export const EXPIRY_RANGE = { gte: 'x', lt: 'y' }

/** Total order of expiry entries, the same as their keys' byte order. */
export function compareExpiry (a: ExpiryEntry, b: ExpiryEntry): number {
  return a.expiresAt - b.expiresAt || a.priority - b.priority || a.seq - b.seq
}
