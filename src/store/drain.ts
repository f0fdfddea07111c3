import type { Priority } from '../types.js'
import type { BackendReader, ScannedEvent, StoreBackend } from './backend.js'
import { ScanReader } from './backend.js'
import type { DeletionGuard } from './deletion-guard.js'

/** One lease's limits and what it holds so far. */
export class LeaseBudget {
  /** Events taken, in drain order. */
  readonly picked: ScannedEvent[] = []
  bytes = 0
  full = false

  constructor (readonly maxEvents: number, readonly maxBytes: number) {}

  /** Whether `e` may join; the first event always may, however large. */
  fits (e: ScannedEvent): boolean {
    return this.picked.length === 0 || this.bytes + e.value.byteLength <= this.maxBytes
  }

  add (e: ScannedEvent): void {
    this.picked.push(e)
    this.bytes += e.value.byteLength
    this.full = this.picked.length >= this.maxEvents || this.bytes >= this.maxBytes
  }
}

interface ReaderState {
  reader: BackendReader
  /** Seq of the last event taken from the reader (leased or skipped). */
  position: number | undefined
  buffer: ScannedEvent[]
  index: number
  atEnd: boolean
  /** Events read so far. */
  read: number
}

/**
 * A reader is reopened after this many events: its snapshot pins every table file it started
 * with, so compacted-away files stay on disk and mapped in memory until it closes (seen here:
 * ~56 MB of mapped tables in the middle of a 1M-event drain).
 */
const READER_REFRESH = 50_000
/** Most events read ahead in one call; each call is one native round trip. */
const READ_MAX = 4096
const READ_MIN = 256

/**
 * Reads events for leases, oldest first within a priority, with one long-lived reader per
 * priority. A reader per lease was measured here to cost more than it reads: each new LevelDB
 * iterator seeks again, and classic-level holds each closed iterator's last batch in native memory
 * until V8 happens to collect it (~280 MB over a 1M-event drain). A reader sees the snapshot of
 * when it opened, so it is reopened when it reaches the end of that snapshot (to see newer
 * events) and after a nack (to go back); what was deleted since it opened is skipped through the
 * DeletionGuard. Newest-first draining scans from the top each time instead.
 *
 * Runs only in the store's lease lane; nack() and rewind() may be called at any time.
 */
export class Drain {
  private readonly readers: Array<ReaderState | undefined>
  /** Where a new reader starts (exclusive); undefined = the start of the priority. */
  private readonly cursor: Array<number | undefined>
  private readonly stale = new Set<number>()

  constructor (private readonly backend: StoreBackend, private readonly leased: Array<Set<number>>,
    private readonly guard: DeletionGuard, private readonly newestFirst: boolean, priorities: number) {
    this.readers = new Array(priorities).fill(undefined)
    this.cursor = new Array(priorities).fill(undefined)
  }

  /** Positions of open readers, for DeletionGuard.prune. */
  positions (): Array<number | undefined> {
    return this.readers.map(r => r === undefined ? undefined : (r.position ?? -1))
  }

  /**
   * Whether a read may still hand out the event `seq` of `priority` from a snapshot older than its
   * deletion: the open reader has not passed it yet (it holds read-ahead, and its snapshot predates
   * the delete). Newest-first scans run alongside commits from the top each time: always.
   */
  mayStillReturn (priority: Priority, seq: number): boolean {
    if (this.newestFirst) return true
    const r = this.readers[priority]
    return r !== undefined && seq > (r.position ?? -1)
  }

  /** Events at or above `seq` are back in the queue (nack, failed commit): read them again. */
  rewind (priority: Priority, seq: number): void {
    const r = this.readers[priority]
    // Where reading would go on from: the open reader's position, unless already rewound.
    const current = r !== undefined && !this.stale.has(priority) ? r.position : this.cursor[priority]
    this.cursor[priority] = current === undefined ? undefined : Math.min(current, seq - 1)
    if (r !== undefined) this.stale.add(priority)
  }

  /** Forgets every position (after a repair): the next reads start from the beginning. */
  async reset (): Promise<void> {
    await this.closeAll()
    this.cursor.fill(undefined)
  }

  async closeAll (): Promise<void> {
    for (let p = 0; p < this.readers.length; p++) await this.close(p as Priority, false)
    this.stale.clear()
  }

  /** Adds leasable events of `priority` to the budget, marking each leased as it is taken. */
  async fill (priority: Priority, budget: LeaseBudget): Promise<void> {
    if (this.newestFirst) { await this.fillNewest(priority, budget); return }
    const leased = this.leased[priority] as Set<number>
    let reopened = false
    while (!budget.full) {
      // Awaited only when a reader must be closed first: an await per event was ~200 bytes of
      // promise and context each (a fifth of what a drain allocated; bench:footprint).
      let r = this.readers[priority]
      if (r === undefined || this.stale.has(priority)) r = await this.readerFor(priority)
      const e = r.buffer[r.index]
      if (e === undefined) {
        if (r.read >= READER_REFRESH) { await this.close(priority, true); continue }
        if (r.atEnd) {
          // The end of this reader's snapshot: one fresh reader may see events appended since.
          await this.close(priority, true)
          if (reopened) return
          reopened = true
          continue
        }
        const want = Math.min(READ_MAX, Math.max(READ_MIN, budget.maxEvents - budget.picked.length + 16))
        r.buffer = await r.reader.next(want)
        r.read += r.buffer.length
        r.index = 0
        r.atEnd = r.buffer.length < want
        continue
      }
      if (!budget.fits(e)) { budget.full = true; return }
      r.index++
      r.position = e.seq
      if (leased.has(e.seq) || this.guard.blocks(priority, e.seq)) continue
      // Marked at once, in the same synchronous step as the checks above: a commit planned from
      // now on leaves it alone.
      leased.add(e.seq)
      budget.add(e)
    }
  }

  private async fillNewest (priority: Priority, budget: LeaseBudget): Promise<void> {
    const leased = this.leased[priority] as Set<number>
    let from: number | undefined
    for (let exhausted = false; !budget.full && !exhausted;) {
      const limit = Math.min(READ_MAX, budget.maxEvents - budget.picked.length + leased.size)
      const chunk = await this.backend.scan(priority, { from, reverse: true, limit })
      exhausted = chunk.length < limit
      for (const e of chunk) {
        from = e.seq
        if (leased.has(e.seq) || this.guard.blocks(priority, e.seq)) continue
        if (!budget.fits(e)) { budget.full = true; break }
        leased.add(e.seq)
        budget.add(e)
        if (budget.full) break
      }
    }
  }

  private async readerFor (priority: Priority): Promise<ReaderState> {
    if (this.stale.has(priority)) {
      this.stale.delete(priority)
      await this.close(priority, false)
    }
    let r = this.readers[priority]
    if (r === undefined) {
      const after = this.cursor[priority]
      const reader = this.backend.openReader?.(priority, after) ?? new ScanReader(this.backend, priority, after)
      r = { reader, position: after, buffer: [], index: 0, atEnd: false, read: 0 }
      this.readers[priority] = r
    }
    return r
  }

  /** Closes a priority's reader; `advance` moves the start of the next one to where it stopped. */
  private async close (priority: Priority, advance: boolean): Promise<void> {
    const r = this.readers[priority]
    if (r === undefined) return
    this.readers[priority] = undefined
    if (advance) this.cursor[priority] = r.position
    await r.reader.close()
  }
}
