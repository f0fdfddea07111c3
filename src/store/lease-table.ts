/**
 * The lease table: the batches handed to the uplink and not yet settled, in memory only (after a
 * restart every event is leasable again: index.ts, invariant 4). It keeps which events are leased
 * per priority (the sets the drain and the planner check), settles a lease once (an ack or a nack,
 * never both), puts a nacked lease's events back at the head of the queue, and counts nacks
 * (`epoch`) so a commit planned before one does not move an eviction cursor past its events.
 * What a lease reads and what its ack writes are the RingBuffer's (drain.ts, commit-planner.ts).
 */
import { EdgefwdError } from '../errors.js'
import { concatBatch } from '../proto/codec.js'
import type { EvictionReportData } from '../proto/codec.js'
import type { Priority } from '../types.js'
import type { ScannedEvent } from './backend.js'
import type { Lease } from './event-store.js'

/** One lease held by the uplink: its events (their keys as read) and the report records it carries. */
export interface LeaseState { id: number, events: ScannedEvent[], reportIds: number[], settling: boolean }

export interface LeaseTable {
  /** Seqs of leased events, per priority: neither evicted, expired nor leased again. */
  readonly leased: ReadonlyArray<Set<number>>
  /** Bumped by every nack (and a repair), so work that started before one does not move a cursor past it. */
  readonly epoch: number
  /** Leases held. */
  readonly size: number
  /**
   * Holds a lease of `picked` (drain order, `bytes` of values) and of the pending report records
   * `reportIds`, and returns it as the uplink gets it; null (nothing held) when both are empty.
   * `carry` marks the reports as carried and merges them, once the lease is held.
   */
  issue (picked: ScannedEvent[], bytes: number, reportIds: number[], carry: (reportIds: readonly number[]) => EvictionReportData | undefined): Lease | null
  /** Marks a held lease as being settled. @throws EDGEFWD_ERR_STORE_UNKNOWN_LEASE when not held or already settling. */
  settle (leaseId: number): LeaseState
  /** A failed ack: the lease may be acked or nacked again. */
  unsettle (lease: LeaseState): void
  /** Settles the lease as a nack: forgotten, its events requeued. Returns it (its reports are the caller's). */
  nack (leaseId: number): LeaseState
  /** Events taken for a lease that failed part-way go back as a nack's do. */
  putBack (events: readonly ScannedEvent[]): void
  /** Acked leases whose commit was written: forgotten, their events no longer leased. */
  settled (leaseIds: readonly number[]): void
  /** Forgets every lease (close). */
  clear (): void
  /** Forgets every lease and every leased mark (a repair: all is delivered again). */
  reset (): void
}

export class MemoryLeaseTable implements LeaseTable {
  readonly leased: Array<Set<number>>
  private readonly leases = new Map<number, LeaseState>()
  private nackEpoch = 0
  private nextLeaseId = 1

  /** `requeued`: an event is back at the head of the queue (the drain and eviction cursors move back below it). */
  constructor (priorities: number, private readonly requeued: (priority: Priority, seq: number) => void) {
    this.leased = Array.from({ length: priorities }, () => new Set())
  }

  get epoch (): number { return this.nackEpoch }

  get size (): number { return this.leases.size }

  issue (picked: ScannedEvent[], bytes: number, reportIds: number[], carry: (reportIds: readonly number[]) => EvictionReportData | undefined): Lease | null {
    // The events read are the lease's keys as they are: one object per event, not two.
    const lease: LeaseState = { id: this.nextLeaseId, events: picked, reportIds, settling: false }
    const events: Uint8Array[] = new Array<Uint8Array>(picked.length)
    let firstStoreSeq = Infinity
    let lastStoreSeq = 0
    for (let i = 0; i < picked.length; i++) {
      const e = picked[i] as ScannedEvent
      events[i] = e.value
      if (e.seq < firstStoreSeq) firstStoreSeq = e.seq
      if (e.seq > lastStoreSeq) lastStoreSeq = e.seq
    }
    if (events.length === 0 && reportIds.length === 0) return null
    this.nextLeaseId++
    const report = carry(reportIds)
    this.leases.set(lease.id, lease)
    return {
      id: lease.id,
      events,
      batch: concatBatch(events),
      firstStoreSeq: events.length > 0 ? firstStoreSeq : 0,
      lastStoreSeq,
      bytes,
      report
    }
  }

  settle (leaseId: number): LeaseState {
    const lease = this.leases.get(leaseId)
    if (lease === undefined || lease.settling) {
      throw new EdgefwdError('EDGEFWD_ERR_STORE_UNKNOWN_LEASE', `lease ${leaseId} is not held (already acked or nacked, or from before a restart)`)
    }
    lease.settling = true
    return lease
  }

  unsettle (lease: LeaseState): void {
    lease.settling = false
  }

  nack (leaseId: number): LeaseState {
    const lease = this.settle(leaseId)
    this.leases.delete(leaseId)
    this.nackEpoch++
    for (const k of lease.events) this.requeue(k.priority, k.seq)
    return lease
  }

  putBack (events: readonly ScannedEvent[]): void {
    if (events.length > 0) this.nackEpoch++
    for (const e of events) this.requeue(e.priority, e.seq)
  }

  settled (leaseIds: readonly number[]): void {
    for (const id of leaseIds) {
      for (const k of this.leases.get(id)?.events ?? []) this.leased[k.priority]?.delete(k.seq)
      this.leases.delete(id)
    }
  }

  clear (): void {
    this.leases.clear()
  }

  reset (): void {
    this.leases.clear()
    for (const s of this.leased) s.clear()
    this.nackEpoch++
  }

  /** A leased event goes back to the head of the queue: no longer leased, both cursors moved back below it. */
  private requeue (priority: Priority, seq: number): void {
    this.leased[priority]?.delete(seq)
    this.requeued(priority, seq)
  }
}
