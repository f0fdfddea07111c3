/**
 * The contracts between the forwarder's three parts, in one place both sides of each can see:
 * ingest hands events to an EventSink, the uplink drains a BatchSource. The store implements both
 * (src/store/ring-buffer.ts); ingest and the uplink import these, never the store
 * (test/unit/import-directions.test.ts keeps it so).
 */
import type { EvictionReportData } from './proto/codec.js'
import type { DropReasonName, EventRecord, Priority } from './types.js'

/** What ingest sees of the store. */
export interface EventSink {
  append (events: readonly EventRecord[]): Promise<AppendResult>
  /**
   * Whether an append now would go to disk: false while the store runs on its in-memory fallback
   * (disk full). An input that can leave data with its sender (a local broker) waits for true
   * rather than fill the fallback. A sink without it counts as durable.
   */
  durableNow?: () => boolean
}

export interface LeaseOptions { minPriority?: Priority }

/** What the uplink sees of the store. */
export interface BatchSource {
  /** `minPriority`: lease only events of this priority or higher (a data budget spent: critical only). */
  lease (maxEvents: number, maxBytes: number, options?: LeaseOptions): Promise<Lease | null>
  ack (leaseId: number): Promise<void>
  nack (leaseId: number): void
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
