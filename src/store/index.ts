/**
 * # The store: a LevelDB ring buffer with eviction priorities
 *
 * A bounded, durable, priority-aware event queue over a StoreBackend (LevelDB in production, memory
 * in tests and simulation). All policy lives here; backends only store.
 *
 * ## Layout (see keys.ts)
 * Events are keyed `e | priority | seq`, value = encoded protobuf Event (so a Batch is a
 * concatenation). `seq` is one global counter, monotonic across restarts (persisted in meta).
 * The meta record holds live count/bytes per priority, the next seq and report id, and cumulative
 * drop counters. Report records (`r | id`) hold drops not yet delivered upstream. An event with its
 * own deadline (expires_at_ms, from a TTL rule) also has an expiry index record
 * (`x | deadline | priority | seq`), written and deleted in the same batch as the event.
 *
 * ## Invariants
 * 1. Every backend write is one atomic batch that carries the meta record describing the state
 *    after it: meta always equals what a full scan would count, so open needs no scan.
 * 2. used bytes × overheadFactor ≤ capacityBytes after every commit (key + value bytes counted).
 * 3. An event leaves the store only by ack (delivered), eviction or expiry; every eviction and
 *    expiry, and every incoming event refused, is counted per priority and reason in meta and
 *    written as a report record in the same batch. A report record is deleted only when a lease
 *    that carried it is acked. So no loss is silent, even across a crash.
 * 4. Leased (in flight) events are never evicted or expired. Leases live in memory only: after a
 *    restart every event is leasable again (at-least-once delivery).
 * 5. Two lanes. Writes (append groups, acks, expiry) run one at a time, each planned against the
 *    state it writes over. Leases run one at a time too, alongside writes, so reading the next
 *    batch overlaps writing the last. A plan marks what it evicts or expires in the same
 *    synchronous step that checks it is not leased; a lease marks what it takes as leased in the
 *    same step that checks it is not planned or deleted (DeletionGuard): no event is both
 *    delivered and dropped, and none is delivered after its delete.
 *
 * ## When full
 * An incoming event of priority P that does not fit evicts the oldest non-leased events of the
 * lowest priority first, among priorities ≤ P (events accepted earlier in the same group count as
 * stored). If only higher priorities (or leased events) remain, the incoming event is refused with
 * reason `rejected_full`. An event larger than the capacity or maxEventBytes is a caller error.
 *
 * ## Expiry
 * Two kinds, both counted as `expired_ttl`: a TTL per priority (`store.ttl`), swept by walking each
 * priority oldest first until the first event still young enough; and a deadline per event, swept
 * by reading the expiry index up to now, so the sweep reads only what is due. Leased events are
 * never expired. A sweep that finds nothing writes nothing.
 *
 * ## Group commit and durability
 * Appends that arrive within `groupCommit.windowMs` (or while a write is in flight) become one
 * write; `sync` fsyncs each group. append() resolves only after its group's write, so a caller can
 * acknowledge a device truthfully (`durable` says whether it reached the disk). Acks ride in the
 * same groups.
 *
 * ## What a crash can lose
 * With `sync`: nothing whose append resolved with durable=true. With `relaxed`: the groups the OS
 * had not written back. Appends made while the disk was full (durable=false, in-memory fallback).
 * Acks not yet written: those events are delivered again (duplicates, never loss).
 *
 * ## Modules
 * ring-buffer.ts (policy, lifecycle, lanes) · group-commit.ts (which appends and acks are written
 * together) · lease-table.ts (leases held by the uplink, ack/nack) · commit-planner.ts + plan.ts
 * (one commit, computed before it is written) · drain.ts (long-lived readers for leases) · deletion-guard.ts (reads that
 * overlap writes) · level-backend.ts, memory-backend.ts, fallback-backend.ts (storage; disk-full
 * fallback) · keys.ts, meta.ts, drop-ledger.ts (formats) · compaction.ts, recount.ts.
 *
 * ## Drain
 * Priorities from critical down; within one, oldest first (one long-lived reader per priority, so
 * reading never restarts at the range start and walks delete markers) or newest first. Only groups
 * that add events are fsynced: a lost ack or expiry brings events back (duplicates), never loses.
 *
 * ## Faults
 * A full disk (ENOSPC) switches to a bounded in-memory queue (appends resolve durable=false;
 * beyond the bound, refused as memory_queue_full) and back to disk once there is room. A damaged
 * database is repaired in place, or moved aside when repair fails; the totals are then recounted
 * and the error is logged with the path; it never stops the store from opening. A second process
 * gets EDGEFWD_ERR_STORE_LOCKED.
 */
import type { Config } from '../config/index.js'
import type { MemoryBudget } from '../config/memory-budget.js'
import type { Logger } from '../observe/log.js'
import type { EventStore, RingBufferOptions } from './event-store.js'
import { FallbackBackend } from './fallback-backend.js'
import { LevelBackend, type LevelMemoryOptions } from './level-backend.js'
import { MemoryBackend, MemoryVolume } from './memory-backend.js'
import { RingBuffer } from './ring-buffer.js'

export type { AppendResult, BatchSource, EventSink, EventStore, Lease, LeaseOptions, RingBufferOptions, StoreStats, StoreState, PriorityStats } from './event-store.js'
export { RingBuffer } from './ring-buffer.js'
export { MemoryBackend, MemoryVolume } from './memory-backend.js'
export { LevelBackend, type LevelMemoryOptions } from './level-backend.js'
export { FallbackBackend } from './fallback-backend.js'
export type { StoreBackend } from './backend.js'

/**
 * The production store: LevelDB at `path`, with the in-memory fallback for a full disk. Opened.
 * `memory`: LevelDB's memtable and block cache sizes (levelMemory(budget)); absent, its defaults.
 */
export async function openLevelStore (path: string, options: RingBufferOptions, logger: Logger, memory?: LevelMemoryOptions): Promise<EventStore> {
  const store = new RingBuffer(new FallbackBackend(new LevelBackend(memory === undefined ? { path, logger } : { path, logger, memory }), logger), options, logger)
  await store.open()
  return store
}

/** A store in memory (tests, simulation). Pass the same volume again to simulate a restart. Opened. */
export async function openMemoryStore (options: RingBufferOptions, volume: MemoryVolume = new MemoryVolume(), logger?: Logger): Promise<EventStore> {
  const store = new RingBuffer(new MemoryBackend(volume), options, logger)
  await store.open()
  return store
}

/** LevelDB's memory options under a memory budget; undefined (LevelDB's own defaults) without one. */
export function levelMemory (budget: MemoryBudget | undefined): LevelMemoryOptions | undefined {
  return budget === undefined ? undefined : { ...budget.level }
}

/**
 * The store's options from the validated configuration (sizes in bytes, durations in ms). A
 * memory budget caps the disk-full fallback queue at its share.
 */
export function storeOptions (store: Config['store'], budget?: MemoryBudget): RingBufferOptions {
  const ttlMs: RingBufferOptions['ttlMs'] = {}
  for (const p of ['low', 'normal', 'high', 'critical'] as const) {
    const ttl = store.ttl[p]
    if (ttl !== undefined) ttlMs[p] = ttl
  }
  return {
    capacityBytes: store.capacity,
    overheadFactor: store.overheadFactor,
    maxEventBytes: store.maxEventSize,
    durability: store.durability,
    groupCommit: { windowMs: store.groupCommit.window, maxEvents: store.groupCommit.maxEvents },
    drainOrder: store.drainOrder,
    ttlMs,
    expiryIntervalMs: store.expiryInterval,
    memoryFallback: { maxBytes: Math.min(store.memoryFallback.maxBytes, budget?.memoryFallbackBytes ?? Infinity), retryIntervalMs: store.memoryFallback.retryInterval },
    compactAfterDeletes: store.compactAfterDeletes
  }
}
