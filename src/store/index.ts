import type { Config } from '../config/index.js'
import type { Logger } from '../observe/log.js'
import type { EventStore, RingBufferOptions } from './event-store.js'
import { FallbackBackend } from './fallback-backend.js'
import { LevelBackend } from './level-backend.js'
import { MemoryBackend, MemoryVolume } from './memory-backend.js'
import { RingBuffer } from './ring-buffer.js'

export type { AppendResult, BatchSource, EventSink, EventStore, Lease, RingBufferOptions, StoreStats, StoreState, PriorityStats } from './event-store.js'
export { RingBuffer } from './ring-buffer.js'
export { MemoryBackend, MemoryVolume } from './memory-backend.js'
export { LevelBackend } from './level-backend.js'
export { FallbackBackend } from './fallback-backend.js'
export type { StoreBackend } from './backend.js'

/** The production store: LevelDB at `path`, with the in-memory fallback for a full disk. Opened. */
export async function openLevelStore (path: string, options: RingBufferOptions, logger: Logger): Promise<EventStore> {
  const store = new RingBuffer(new FallbackBackend(new LevelBackend({ path, logger }), logger), options, logger)
  await store.open()
  return store
}

/** A store in memory (tests, simulation). Pass the same volume again to simulate a restart. Opened. */
export async function openMemoryStore (options: RingBufferOptions, volume: MemoryVolume = new MemoryVolume(), logger?: Logger): Promise<EventStore> {
  const store = new RingBuffer(new MemoryBackend(volume), options, logger)
  await store.open()
  return store
}

/** The store's options from the validated configuration (sizes in bytes, durations in ms). */
export function storeOptions (store: Config['store']): RingBufferOptions {
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
    memoryFallback: { maxBytes: store.memoryFallback.maxBytes, retryIntervalMs: store.memoryFallback.retryInterval },
    compactAfterDeletes: store.compactAfterDeletes
  }
}
