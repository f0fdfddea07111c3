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
  /** The highest seq committed when it opened: its snapshot holds every event up to it. */
  seqAtOpen: number
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
/** Most seqs the tail remembers per priority; past it the oldest are forgotten (a reader reads those). */
const TAIL_MAX = 8192
const NO_VALUE = new Uint8Array(0)

/**
 * Reads events for leases, oldest first within a priority, with one long-lived reader per
 * priority. A reader per lease was measured here to cost more than it reads: each new LevelDB
 * iterator seeks again, and classic-level holds each closed iterator's last batch in native memory
 * until V8 happens to collect it (~280 MB over a 1M-event drain). A reader sees the snapshot of
 * when it opened, so it is reopened when it reaches the end of that snapshot (to see newer
 * events) and after a nack (to go back); what was deleted since it opened is skipped through the
 * DeletionGuard. Newest-first draining scans from the top each time instead.
 *
 * The tail: once a reader has reached the end of its snapshot, what remains are the events
 * committed since it opened, and the store tells the drain each seq it commits (committed()).
 * Those are read by key (getEvents, one native call, no iterator) instead of by a new reader per
 * lease. Under a steady trickle the store is nearly empty and every lease reached the end of its
 * reader, so each opened an iterator (~20 a second at the default linger); Node 24 holds the
 * native memory of closed iterators far longer than Node 20 (an open/nextv/close loop: 134-138
 * MB RSS against 77). That was a part of the single executable's growth under load (the most of
 * it was mqtt-packet's length cache, see mqtt-length-cache.ts); with the tail a soak opens
 * about one iterator a second. The tail
 * serves only while it is complete above the cursor: it holds at most TAIL_MAX seqs per priority,
 * and when it forgets some (a backlog) or a nack moves the cursor back, readers take over again.
 *
 * Runs only in the store's lease lane; nack() and rewind() may be called at any time.
 */
export class Drain {
  private readonly readers: Array<ReaderState | undefined>
  /** Where a new reader starts (exclusive); undefined = the start of the priority. */
  private readonly cursor: Array<number | undefined>
  private readonly stale = new Set<number>()
  /** Per priority, seqs committed, ascending: every committed seq >= tailFrom is here or passed by the cursor. */
  private readonly tail: number[][]
  private readonly tailFrom: number[]
  /** The cursor a tail read started from, while it is in flight (see mayStillReturn). */
  private readonly tailReading: Array<number | undefined>
  /** The highest seq committed so far (any priority). */
  private maxCommitted = 0

  constructor (private readonly backend: StoreBackend, private readonly leased: Array<Set<number>>,
    private readonly guard: DeletionGuard, private readonly newestFirst: boolean, priorities: number) {
    this.readers = new Array(priorities).fill(undefined)
    this.cursor = new Array(priorities).fill(undefined)
    this.tail = Array.from({ length: priorities }, () => [])
    this.tailFrom = new Array<number>(priorities).fill(Infinity)
    this.tailReading = new Array(priorities).fill(undefined)
  }

  /** The store opened (or was repaired) with `nextSeq` as its next seq: the tail starts there. */
  startTail (nextSeq: number): void {
    for (const t of this.tail) t.length = 0
    this.tailFrom.fill(nextSeq)
    this.maxCommitted = nextSeq - 1
  }

  /** An event was committed (written to the backend): called in seq order, after the write. */
  committed (priority: Priority, seq: number): void {
    const t = this.tail[priority]
    if (seq > this.maxCommitted) this.maxCommitted = seq
    if (t === undefined || this.newestFirst) return
    t.push(seq)
    if (t.length > TAIL_MAX) {
      // Forget the older half: a reader reads those; the tail stays complete above what it keeps.
      const dropped = t.splice(0, TAIL_MAX / 2)
      this.tailFrom[priority] = Math.max(this.tailFrom[priority] ?? Infinity, (dropped[dropped.length - 1] as number) + 1)
    }
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
    const reading = this.tailReading[priority]
    if (reading !== undefined && seq > reading) return true
    const r = this.readers[priority]
    return r !== undefined && seq > (r.position ?? -1)
  }

  /** Events at or above `seq` are back in the queue (nack, failed commit): read them again. */
  rewind (priority: Priority, seq: number): void {
    const r = this.readers[priority]
    // Where reading would go on from: the open reader's position, unless already rewound.
    const current = r !== undefined && !this.stale.has(priority) ? r.position : this.cursor[priority]
    this.cursor[priority] = current === undefined ? undefined : Math.min(current, seq - 1)
    // Also without a reader: a tail read in flight must not move the cursor past the rewind.
    this.stale.add(priority)
  }

  /** Forgets every position (after a repair): the next reads start from the beginning. */
  async reset (): Promise<void> {
    await this.closeAll()
    this.cursor.fill(undefined)
    for (const t of this.tail) t.length = 0
    this.tailFrom.fill(Infinity)
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
      if (r === undefined && this.tailServes(priority)) { await this.fillFromTail(priority, budget); return }
      if (r === undefined || this.stale.has(priority)) r = await this.readerFor(priority)
      const e = r.buffer[r.index]
      if (e === undefined) {
        if (r.read >= READER_REFRESH) { await this.close(priority, true); continue }
        if (r.atEnd) {
          // The end of this reader's snapshot, which held every event committed before it opened:
          // what is left came since, all of it in the tail unless the tail forgot some.
          await this.close(priority, true)
          if (this.tailCovers(priority, r.seqAtOpen)) {
            this.cursor[priority] = Math.max(this.cursor[priority] ?? 0, r.seqAtOpen)
            await this.fillFromTail(priority, budget)
            return
          }
          if (reopened) return
          reopened = true
          continue
        }
        const want = Math.min(READ_MAX, Math.max(READ_MIN, budget.maxEvents - budget.picked.length + 16))
        r.buffer = await r.reader.next(want)
        r.read += r.buffer.length
        r.index = 0
        // Only an empty read is the end: nextv stops early at its byte bound (highWaterMarkBytes),
        // and taking a short read for the end would skip the rest of the snapshot.
        r.atEnd = r.buffer.length === 0
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

  /** Whether every event above the cursor is in the tail (and nothing sent the cursor back). */
  private tailServes (priority: Priority): boolean {
    return this.tailCovers(priority, this.cursor[priority] ?? 0)
  }

  /** Whether the tail holds every event of `priority` committed after `seq` (and no rewind is pending). */
  private tailCovers (priority: Priority, seq: number): boolean {
    return !this.newestFirst && !this.stale.has(priority) && seq + 1 >= (this.tailFrom[priority] ?? Infinity)
  }

  /** Adds events from the tail, by key; what is gone (acked, evicted, expired) is passed over. */
  private async fillFromTail (priority: Priority, budget: LeaseBudget): Promise<void> {
    const leased = this.leased[priority] as Set<number>
    const seqs = this.tail[priority] as number[]
    let passed = 0
    while (passed < seqs.length && (seqs[passed] as number) <= (this.cursor[priority] ?? 0)) passed++
    seqs.splice(0, passed)
    while (!budget.full && seqs.length > 0) {
      const from = this.cursor[priority] ?? 0
      const keys: ScannedEvent[] = seqs.slice(0, Math.min(READ_MAX, Math.max(READ_MIN, budget.maxEvents - budget.picked.length)))
        .map(seq => ({ priority, seq, value: NO_VALUE }))
      // Until it returns, deletes of these are guarded (mayStillReturn): the values may predate them.
      this.tailReading[priority] = from
      let values: Array<Uint8Array | undefined>
      try {
        values = await this.backend.getEvents(keys)
      } finally {
        this.tailReading[priority] = undefined
      }
      // A nack meanwhile moved the cursor back: what was read is not leased; readers take over.
      if (this.stale.has(priority)) return
      let taken = 0
      for (const e of keys) {
        if (budget.full) break
        const value = values[taken]
        if (value !== undefined && !leased.has(e.seq) && !this.guard.blocks(priority, e.seq)) {
          e.value = value
          if (!budget.fits(e)) { budget.full = true; break }
          leased.add(e.seq)
          budget.add(e)
        }
        this.cursor[priority] = e.seq
        taken++
      }
      seqs.splice(0, taken)
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
      r = { reader, position: after, buffer: [], index: 0, atEnd: false, read: 0, seqAtOpen: this.maxCommitted }
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
