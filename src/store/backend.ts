import type { Priority } from '../types.js'

/**
 * The dumb half of the store: durable, ordered storage of event records, report records and one
 * meta record. It knows nothing of capacity, leases or eviction; RingBuffer does all of that and
 * hands the backend one atomic write per group commit.
 */

export interface EventKey {
  priority: Priority
  seq: number
  /** The backend's own encoding of the key, when it handed one out in a scan (saves re-encoding). */
  raw?: Uint8Array
}
export interface EventPut extends EventKey { value: Uint8Array }
export interface ReportRecord { id: number, value: Uint8Array }

/** One atomic write: everything in it lands together or not at all. */
export interface BackendWrite {
  puts: EventPut[]
  dels: EventKey[]
  reportPuts: ReportRecord[]
  reportDels: number[]
  /** The meta record describing the state after this write. */
  meta: Uint8Array
}

export interface BackendContent {
  meta: Uint8Array | undefined
  reports: ReportRecord[]
  /** The database was repaired or replaced: meta may not describe it and must be rebuilt by a scan. */
  repaired?: boolean
}

export interface ScanOptions {
  /** Exclusive lower bound (ascending) or upper bound (descending); undefined = range start. */
  from?: number
  reverse: boolean
  limit: number
}

export interface ScannedEvent { seq: number, value: Uint8Array, raw?: Uint8Array }

export interface WriteOutcome {
  /** false when the write went to an in-memory fallback instead of disk. */
  durable: boolean
}

export interface StoreBackend {
  open (): Promise<BackendContent>
  write (w: BackendWrite, sync: boolean): Promise<WriteOutcome>
  scan (priority: Priority, opts: ScanOptions): Promise<ScannedEvent[]>
  /** Reclaims space held by deleted records; may be a no-op. */
  compact (): Promise<void>
  close (): Promise<void>
  /** Bytes of events held in memory rather than on disk (0 for a healthy disk backend). */
  memoryBytes (): number
  /** Repairs damage found while running and reopens; content as open() gives it. */
  repair?: () => Promise<BackendContent>
  /** Free bytes on the file system holding the store, where that means something. */
  freeBytes?: () => Promise<number>
}
