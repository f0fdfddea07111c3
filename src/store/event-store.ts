import type { EvictionReportData } from '../proto/codec.js'
import type { DropReasonName, EventRecord, Priority, PriorityName } from '../types.js'

/** What ingest sees of the store. */
export interface EventSink {
  append (events: readonly EventRecord[]): Promise<AppendResult>
}

export interface LeaseOptions { minPriority?: Priority }

/** What the uplink sees of the store. */
export interface BatchSource {
  /** `minPriority`: lease only events of this priority or higher (a data budget spent: critical only). */
  lease (maxEvents: number, maxBytes: number, options?: LeaseOptions): Promise<Lease | null>
  ack (leaseId: number): Promise<void>
  nack (leaseId: number): void
}

export interface EventStore extends EventSink, BatchSource {
  open (): Promise<void>
  /** Deletes events past their priority's TTL or their own deadline now (a timer also does this); returns how many. */
  expire (): Promise<number>
  /** Reclaims disk held by deleted events now (it also runs after compactAfterDeletes deletes). */
  compact (): Promise<void>
  stats (): StoreStats
  /** Replaces the priority TTLs; the next expiry sweep applies them. */
  setTtl (ttlMs: RingBufferOptions['ttlMs']): void
  /** Gateway time (Unix ms) of the oldest buffered event; undefined when the store is empty or not open. */
  oldestEventTimeMs (): Promise<number | undefined>
  close (): Promise<void>
}

export interface AppendResult {
  /** Events stored (they may still be evicted later, and reported if so). */
  accepted: number
  /** Events refused, by index in the call, with the reason. */
  rejected: Array<{ index: number, reason: DropReasonName }>
  /** Older events removed to make room for this group. */
  evicted: number
  /** true when the group is on disk (fsynced in `sync` mode); false when held in memory (disk full). */
  durable: boolean
}

export interface Lease {
  id: number
  /** Encoded Event messages, drain order. */
  events: Uint8Array[]
  /** The same events as an encoded protobuf Batch (a concatenation, no re-encode). */
  batch: Uint8Array
  firstStoreSeq: number
  lastStoreSeq: number
  /** Sum of event value bytes. */
  bytes: number
  /** Drops not yet delivered upstream; delivered (and forgotten) when this lease is acked. */
  report: EvictionReportData | undefined
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
