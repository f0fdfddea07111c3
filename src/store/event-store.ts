import type { BatchSource, EventSink } from '../contracts.js'
import type { DropReasonName, Priority, PriorityName } from '../types.js'

// The store implements the contracts its callers see (src/contracts.ts); re-exported for its users.
export type { AppendResult, BatchSource, EventSink, Lease, LeaseOptions } from '../contracts.js'

export interface EventStore extends EventSink, BatchSource {
  open (): Promise<void>
  /** Deletes events past their priority's TTL or their own deadline now (a timer also does this); returns how many. */
  expire (): Promise<number>
  /** Reclaims disk held by deleted events now (it also runs after compactAfterDeletes deletes). */
  compact (): Promise<void>
  stats (): StoreStats
  /** Whether an append now would reach the disk: false while on the disk-full fallback (EventSink). */
  durableNow: () => boolean
  /** Replaces the priority TTLs; the next expiry sweep applies them. */
  setTtl (ttlMs: RingBufferOptions['ttlMs']): void
  /** Gateway time (Unix ms) of the oldest buffered event; undefined when the store is empty or not open. */
  oldestEventTimeMs (): Promise<number | undefined>
  close (): Promise<void>
}

export interface PriorityStats {
  priority: PriorityName
  events: number
  bytes: number
  leased: number
  /** Events written since the store was opened (appends that were kept, in memory or on disk). */
  stored: number
}

export interface StoreStats {
  state: StoreState
  mode: 'disk' | 'memory'
  capacityBytes: number
  /** key+value bytes of live events times the overhead factor, the figure compared to capacity. */
  usedBytes: number
  events: number
  perPriority: PriorityStats[]
  leases: number
  leasedEvents: number
  memoryBytes: number
  pendingAppends: number
  pendingReports: number
  nextSeq: number
  /** The database was found damaged at open and repaired or moved aside (EDGEFWD_ERR_STORE_CORRUPT). */
  repairedAtOpen: boolean
  /** Cumulative since the store was created. */
  drops: Array<{ priority: PriorityName, reason: DropReasonName, count: number, bytes: number }>
}

export type StoreState = 'new' | 'opening' | 'open' | 'closing' | 'closed'

export interface RingBufferOptions {
  capacityBytes: number
  /** Multiplier on key+value bytes for LevelDB's own overhead; default 1. */
  overheadFactor?: number
  maxEventBytes?: number
  durability?: 'sync' | 'relaxed'
  groupCommit?: { windowMs: number, maxEvents: number }
  drainOrder?: 'oldest-first' | 'newest-first'
  ttlMs?: Partial<Record<PriorityName, number>>
  /** How often the TTL sweep runs; 0 = only when expire() is called. */
  expiryIntervalMs?: number
  memoryFallback?: { maxBytes: number, retryIntervalMs: number }
  /** Compact the database after this many deletes; 0 = never. */
  compactAfterDeletes?: number
  now?: () => number
}

export type { Priority }
