/**
 * The uplink's in-flight window: the batches published and waiting for their PUBACK, and what
 * happens to each lease when its answer comes.
 *
 * - PUBACK → the store deletes the lease's events (`BatchSource.ack`). A delete that fails (an
 *   I/O error) is tried again (ACK_ATTEMPTS, growing waits); if it still fails the lease is
 *   nacked, so its events are sent again (the receiver drops the duplicates) rather than left
 *   leased until a restart. Each failure is counted.
 * - A failed publish, or the connection lost → the lease is nacked: its events go back to the
 *   queue and are sent again. Nothing is ever deleted because it was written to a socket.
 */
import { isEdgefwdError } from '../errors.js'
import type { Logger } from '../observe/log.js'
import type { BatchSource, Lease } from '../contracts.js'
import type { Clock, ClockTimer } from '../clock.js'

/** Attempts at a store ack after a PUBACK before the lease is nacked instead; waits between them. */
export const ACK_ATTEMPTS = 3
const ACK_RETRY_MS = 200

export interface InFlightCounts {
  acked: number
  nacked: number
  eventsAcked: number
  /** Events in batches returned to the store unacknowledged (nacked), to be sent again. */
  eventsResent: number
  /** Store acks (deletes after a PUBACK) that failed; see ACK_ATTEMPTS. */
  ackFailures: number
}

export interface InFlightWindow {
  /** Batches published and not yet answered. */
  readonly size: number
  /** Nothing in flight, and no store ack running or waiting to be tried again. */
  readonly isIdle: boolean
  /** Resolves once the window is idle (at once if it is): stop() waits on it, not by polling. */
  idle: () => Promise<void>
  readonly counts: Readonly<InFlightCounts>
  /** A batch was published; `timer` is its PUBACK timer. */
  track: (lease: Lease, timer: ClockTimer, sentAt: number) => void
  /**
   * The publish's answer: false when the lease is no longer tracked (already returned with a
   * lost connection). A failure nacks the lease; a success starts its ack.
   */
  settle: (leaseId: number, failed: boolean, now: number) => boolean
  /** A lease taken but never published goes back to the store. */
  returnUnsent: (leaseId: number) => void
  /** Every batch in flight goes back to the store; returns how many. */
  returnAll: () => number
}

interface Entry { lease: Lease, timer: ClockTimer, sentAt: number }

export class InFlightBatches implements InFlightWindow {
  private readonly entries = new Map<number, Entry>()
  /** Store acks running (PUBACKed batches whose delete is not done, retries included). */
  private acking = 0
  private idleWaiters: Array<() => void> = []
  readonly counts: InFlightCounts = { acked: 0, nacked: 0, eventsAcked: 0, eventsResent: 0, ackFailures: 0 }

  constructor (private readonly store: BatchSource, private readonly logger: Logger,
    private readonly clock: Clock, private readonly signal: AbortSignal,
    private readonly onAcked?: (lease: Lease, pubackMs: number) => void) {}

  get size (): number { return this.entries.size }

  get isIdle (): boolean { return this.entries.size === 0 && this.acking === 0 }

  async idle (): Promise<void> {
    if (this.isIdle) return
    await new Promise<void>(resolve => { this.idleWaiters.push(resolve) })
  }

  private wakeIfIdle (): void {
    if (this.idleWaiters.length === 0 || !this.isIdle) return
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const resolve of waiters) resolve()
  }

  track (lease: Lease, timer: ClockTimer, sentAt: number): void {
    this.entries.set(lease.id, { lease, timer, sentAt })
  }

  settle (leaseId: number, failed: boolean, now: number): boolean {
    const entry = this.entries.get(leaseId)
    if (entry === undefined) return false
    this.clock.clearTimer(entry.timer)
    this.entries.delete(leaseId)
    if (failed) {
      this.nack(entry.lease)
      this.wakeIfIdle()
    } else {
      this.acking++
      void this.settleAcked(entry.lease, now - entry.sentAt)
    }
    return true
  }

  returnUnsent (leaseId: number): void {
    this.store.nack(leaseId)
    this.counts.nacked++
  }

  returnAll (): number {
    const n = this.entries.size
    for (const entry of this.entries.values()) {
      this.clock.clearTimer(entry.timer)
      this.nack(entry.lease)
    }
    this.entries.clear()
    this.wakeIfIdle()
    return n
  }

  private nack (lease: Lease): void {
    this.store.nack(lease.id)
    this.counts.nacked++
    this.counts.eventsResent += lease.events.length
  }

  /**
   * The broker has the batch: delete its events. A failed delete is tried again; if it keeps
   * failing, the lease goes back to the store, so its events are sent again (duplicates the
   * receiver drops) instead of staying leased, neither resent nor evictable, until a restart.
   */
  private async settleAcked (lease: Lease, pubackMs: number): Promise<void> {
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.store.ack(lease.id)
          this.counts.acked++
          this.counts.eventsAcked += lease.events.length
          this.onAcked?.(lease, pubackMs)
          return
        } catch (err) {
          this.counts.ackFailures++
          const code = isEdgefwdError(err) ? err.code : undefined
          if (attempt >= ACK_ATTEMPTS || this.signal.aborted) {
            this.logger.error({ err, code, leaseId: lease.id, attempts: attempt }, 'store ack failed after the PUBACK: the batch goes back to the store and will be sent again')
            try {
              this.nack(lease)
            } catch (nackErr) {
              // The store closed meanwhile: the events were never deleted and are sent after a restart.
              this.logger.warn({ err: nackErr, leaseId: lease.id }, 'could not return the batch to the store; its events stay stored')
            }
            return
          }
          this.logger.warn({ err, code, leaseId: lease.id, attempt }, 'store ack failed after the PUBACK; trying again')
          await this.clock.sleep(ACK_RETRY_MS * attempt, this.signal).catch(() => {})
        }
      }
    } finally {
      this.acking--
      this.wakeIfIdle()
    }
  }
}
