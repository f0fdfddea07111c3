import type { Priority } from '../types.js'

/**
 * What a lease must not hand out although a read returned it. Reads run alongside writes, and a
 * LevelDB iterator reads a snapshot, so a read can return:
 *   - an event a commit has chosen to evict or expire but not yet written (`planned`);
 *   - an event deleted (acked, evicted, expired) after the read's snapshot was taken (`applied`).
 * Applied entries are needed only by snapshots older than them: short scans in the lease running
 * now, and long-lived drain readers that have not yet passed them. A delete no read can still
 * return is not recorded at all (the common case: acks of events the drain reader has passed),
 * and `prune` drops the rest at the start of each lease, so the guard stays as small as the
 * deletions in flight.
 */
export class DeletionGuard {
  private readonly planned: Array<Set<number>>
  private readonly applied: Array<Set<number>>

  constructor (priorities: number) {
    this.planned = Array.from({ length: priorities }, () => new Set())
    this.applied = Array.from({ length: priorities }, () => new Set())
  }

  plan (priority: Priority, seq: number): void { this.planned[priority]?.add(seq) }

  /** The commit that planned these failed: the events stay. */
  unplan (priority: Priority, seq: number): void { this.planned[priority]?.delete(seq) }

  /**
   * A delete reached the database. `visible`: whether a read in progress may still return the
   * event (see Drain.mayStillReturn); when none can, there is nothing to guard against and the
   * entry is not kept (most deletes are acks of events the drain reader has long passed).
   */
  deleted (priority: Priority, seq: number, visible: boolean): void {
    this.planned[priority]?.delete(seq)
    if (visible) this.applied[priority]?.add(seq)
  }

  blocks (priority: Priority, seq: number): boolean {
    return this.planned[priority]?.has(seq) === true || this.applied[priority]?.has(seq) === true
  }

  /**
   * Called when a lease starts: snapshots taken from now on see every applied delete, so keep
   * only what a live reader (positioned at `readerPosition[p]`) may still come across.
   */
  prune (readerPosition: ReadonlyArray<number | undefined>): void {
    for (const [p, set] of this.applied.entries()) {
      const position = readerPosition[p]
      if (position === undefined) { set.clear(); continue }
      for (const seq of set) if (seq <= position) set.delete(seq)
    }
  }
}
