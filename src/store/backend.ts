import type { Priority } from '../types.js'
import type { ExpiryEntry } from './keys.js'

export type { ExpiryEntry } from './keys.js'

/**
 * The dumb half of the store: durable, ordered storage of event records, report records and one
 * meta record. It knows nothing of capacity, leases or eviction; RingBuffer does all of that and
 * hands the backend one atomic write per group commit.
 */

export interface EventKey {
  priority: Priority
  seq: number
  /** The backend's own encoding of the key, when it handed one out in a scan (saves re-encoding). */
  raw?: string
}
export interface EventPut extends EventKey { value: Uint8Array }
export interface ReportRecord { id: number, value: Uint8Array }

/** One atomic write: everything in it lands together or not at all. */
export interface BackendWrite {
  puts: EventPut[]
  dels: EventKey[]
  reportPuts: ReportRecord[]
  reportDels: number[]
  /** Expiry index entries to add and remove (see keys.ts); the events themselves are in puts/dels. */
  expiryPuts: ExpiryEntry[]
  expiryDels: ExpiryEntry[]
  /** The meta record describing the state after this write; omitted when the write leaves it as is. */
  meta?: Uint8Array
}

export interface BackendContent {
  meta: Uint8Array | undefined
  reports: ReportRecord[]
  /** The database was repaired or replaced: meta may not describe it and must be rebuilt by a scan. */
  repaired?: boolean
  /** Keys were converted from an earlier layout: meta counts old key sizes and must be rebuilt by a scan. */
  upgraded?: boolean
}

export interface ScanOptions {
  /** Exclusive lower bound (ascending) or upper bound (descending); undefined = range start. */
  from?: number
  reverse: boolean
  limit: number
}

/** Inclusive seq bounds within one priority. */
export interface SeqSpan { priority: Priority, first: number, last: number }

/**
 * An event read back, with its key: a lease keeps these and hands them to the commit as its
 * deletes as they are (no second object per delivered event).
 */
export interface ScannedEvent extends EventKey { value: Uint8Array }

/** A forward reader over one priority's events, on a snapshot taken when it was opened. */
export interface BackendReader {
  /** Up to `limit` events in ascending seq; fewer means the end of the snapshot. */
  next (limit: number): Promise<ScannedEvent[]>
  close (): Promise<void>
}

/** A reader made of scans, for backends without snapshots (it sees every change at once). */
export class ScanReader implements BackendReader {
  constructor (private readonly backend: Pick<StoreBackend, 'scan'>, private readonly priority: Priority, private position: number | undefined) {}

  async next (limit: number): Promise<ScannedEvent[]> {
    const events = await this.backend.scan(this.priority, { from: this.position, reverse: false, limit })
    this.position = events[events.length - 1]?.seq ?? this.position
    return events
  }

  async close (): Promise<void> {}
}

export interface WriteOutcome {
  /** false when the write went to an in-memory fallback instead of disk. */
  durable: boolean
}

export interface StoreBackend {
  open (): Promise<BackendContent>
  write (w: BackendWrite, sync: boolean): Promise<WriteOutcome>
  scan (priority: Priority, opts: ScanOptions): Promise<ScannedEvent[]>
  /** Up to `limit` expiry index entries due before `before`, ascending, after `after` when given. */
  scanExpiry (before: number, after: ExpiryEntry | undefined, limit: number): Promise<ExpiryEntry[]>
  /** The stored values of these events, in order; undefined where there is none. */
  getEvents (keys: readonly EventKey[]): Promise<Array<Uint8Array | undefined>>
  /**
   * Reclaims space held by deleted records, within the given seq spans per priority (all events
   * when omitted); may be a no-op.
   */
  compact (spans?: SeqSpan[]): Promise<void>
  close (): Promise<void>
  /** Bytes of events held in memory rather than on disk (0 for a healthy disk backend). */
  memoryBytes (): number
  /** A forward reader from just after `after` (undefined = the start); ScanReader if absent. */
  openReader?: (priority: Priority, after: number | undefined) => BackendReader
  /** Repairs damage found while running and reopens; content as open() gives it. */
  repair?: () => Promise<BackendContent>
  /** Free bytes on the file system holding the store, where that means something. */
  freeBytes?: () => Promise<number>
}
