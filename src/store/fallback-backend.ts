import { EdgefwdError } from '../errors.js'
import type { Logger } from '../observe/log.js'
import type { Priority } from '../types.js'
import { PRIORITY_COUNT } from '../types.js'
import { ScanReader } from './backend.js'
import type { BackendContent, BackendReader, BackendWrite, EventKey, ExpiryEntry, ScanOptions, ScannedEvent, SeqSpan, StoreBackend, WriteOutcome } from './backend.js'
import { compareExpiry, expiryKey } from './keys.js'
import { isDiskFull } from './level-backend.js'
import { MemoryBackend } from './memory-backend.js'

/** Thrown by write() on the write that found the disk full; nothing of that write was applied. */
export class DiskFullError extends EdgefwdError {
  constructor (cause: unknown) {
    super('EDGEFWD_ERR_STORE_DISK_FULL', 'store disk is full; switching to the in-memory fallback', { cause })
  }
}

/**
 * A disk backend with an in-memory overlay for when the disk is full (ENOSPC).
 *
 * disk mode:   writes go to disk. The first ENOSPC switches to memory mode and throws
 *              DiskFullError without applying anything, so the caller can re-plan the write
 *              within the memory bound.
 * memory mode: puts go to the overlay; deletes of overlay events remove them, deletes of disk
 *              events are remembered and hidden from scans; the latest meta is kept. Scans merge
 *              disk and overlay (overlay seqs are always newer within a priority). The expiry
 *              index is handled the same way: overlay entries, hidden disk entries, merged scans.
 * recover():   once the file system has room, reopens the database and writes overlay +
 *              remembered deletes + meta in one batch. On success the overlay is cleared and disk
 *              mode resumes; until then scans may fail if the reopen did.
 * A crash in memory mode loses the overlay: those appends resolved with durable=false.
 */
export class FallbackBackend implements StoreBackend {
  private mode: 'disk' | 'memory' = 'disk'
  private readonly overlay = new MemoryBackend()
  private readonly hiddenDels: Array<Set<number>> = Array.from({ length: PRIORITY_COUNT }, () => new Set())
  private readonly reportPuts = new Map<number, Uint8Array>()
  private readonly reportDels = new Set<number>()
  /** Disk expiry entries deleted in memory mode, by their key in hex. */
  private readonly hiddenExpiry = new Map<string, ExpiryEntry>()
  private meta: Uint8Array | undefined

  constructor (private readonly disk: StoreBackend, private readonly logger: Logger) {}

  get degraded (): boolean { return this.mode === 'memory' }

  async open (): Promise<BackendContent> {
    await this.overlay.open()
    return await this.disk.open()
  }

  async write (w: BackendWrite, sync: boolean): Promise<WriteOutcome> {
    if (this.mode === 'disk') {
      try {
        return await this.disk.write(w, sync)
      } catch (err) {
        if (!isDiskFull(err)) throw new EdgefwdError('EDGEFWD_ERR_STORE_IO', 'store write failed', { cause: err })
        this.mode = 'memory'
        this.logger.error({ code: 'EDGEFWD_ERR_STORE_DISK_FULL', err }, 'store disk full: new events are held in memory until space returns')
        throw new DiskFullError(err)
      }
    }
    this.overlay.applySync({ puts: w.puts, dels: [], reportPuts: [], reportDels: [], expiryPuts: w.expiryPuts, expiryDels: [] })
    for (const d of w.dels) {
      if (!this.overlay.deleteEvent(d.priority, d.seq)) this.hiddenDels[d.priority]?.add(d.seq)
    }
    for (const e of w.expiryDels) {
      if (!this.overlay.deleteExpiry(e)) this.hiddenExpiry.set(expiryKey(e), e)
    }
    for (const r of w.reportPuts) this.reportPuts.set(r.id, r.value)
    for (const id of w.reportDels) {
      if (!this.reportPuts.delete(id)) this.reportDels.add(id)
    }
    if (w.meta !== undefined) this.meta = w.meta
    return { durable: false }
  }

  async scan (priority: Priority, opts: ScanOptions): Promise<ScannedEvent[]> {
    if (this.mode === 'disk') return await this.disk.scan(priority, opts)
    const hidden = this.hiddenDels[priority] as Set<number>
    // Ask the disk for enough to fill the page even after hidden deletes are filtered out.
    const want = opts.limit + hidden.size
    const raw = await this.disk.scan(priority, { ...opts, limit: want })
    const fromDisk = raw.filter(e => !hidden.has(e.seq))
    // Overlay seqs are newer than every disk seq of the same priority: ascending, the overlay
    // follows only once the disk range is exhausted; descending, it comes first.
    if (!opts.reverse) {
      if (raw.length === want) return fromDisk.slice(0, opts.limit)
      return [...fromDisk, ...await this.overlay.scan(priority, opts)].slice(0, opts.limit)
    }
    const fromMemory = await this.overlay.scan(priority, opts)
    return [...fromMemory, ...fromDisk].slice(0, opts.limit)
  }

  async scanExpiry (before: number, after: ExpiryEntry | undefined, limit: number): Promise<ExpiryEntry[]> {
    if (this.mode === 'disk') return await this.disk.scanExpiry(before, after, limit)
    // As in scan(): ask the disk for enough to fill the page after hidden entries are removed;
    // then the first `limit` of the merge are the first `limit` overall.
    const fromDisk = (await this.disk.scanExpiry(before, after, limit + this.hiddenExpiry.size))
      .filter(e => !this.hiddenExpiry.has(expiryKey(e)))
    const fromMemory = await this.overlay.scanExpiry(before, after, limit)
    return [...fromDisk, ...fromMemory].sort(compareExpiry).slice(0, limit)
  }

  async getEvents (keys: readonly EventKey[]): Promise<Array<Uint8Array | undefined>> {
    if (this.mode === 'disk') return await this.disk.getEvents(keys)
    const out: Array<Uint8Array | undefined> = keys.map(k => this.overlay.get(k.priority, k.seq))
    const fromDisk = keys.map((k, i) => ({ k, i })).filter(({ k, i }) => out[i] === undefined && this.hiddenDels[k.priority]?.has(k.seq) !== true)
    if (fromDisk.length > 0) {
      const values = await this.disk.getEvents(fromDisk.map(({ k }) => k))
      for (const [j, { i }] of fromDisk.entries()) out[i] = values[j]
    }
    return out
  }

  readonly openReader = (priority: Priority, after: number | undefined): BackendReader =>
    this.mode === 'disk' && this.disk.openReader !== undefined ? this.disk.openReader(priority, after) : new ScanReader(this, priority, after)

  /** Tries to move the overlay to disk; true when back in disk mode. */
  async recover (): Promise<boolean> {
    if (this.mode === 'disk') return true
    const w = this.pendingWrite()
    const needed = 2 * this.overlay.memoryBytes() + 64 * 1024
    if (this.disk.freeBytes !== undefined && await this.disk.freeBytes() < needed) return false
    try {
      // Reopen first: the failed write may have left a torn record at the end of LevelDB's log
      // and a sticky background error. Reopening recovers the log (dropping the torn record,
      // whose events are in the overlay) and starts a fresh one for the write below. Seen here:
      // writing through the old handle instead lost that batch at the next open.
      await this.disk.close()
      await this.disk.open()
      await this.disk.write(w, true)
    } catch (err) {
      this.logger.debug({ err }, 'store disk still unavailable')
      return false
    }
    this.clearOverlay()
    this.mode = 'disk'
    this.logger.warn({ events: w.puts.length }, 'store disk writable again: in-memory events moved to disk')
    return true
  }

  private pendingWrite (): BackendWrite {
    const puts = []
    const dels: EventKey[] = []
    for (let p = 0; p < PRIORITY_COUNT; p++) {
      const priority = p as Priority
      for (const e of this.overlay.entries(priority)) puts.push({ priority, seq: e.seq, value: e.value })
      for (const seq of this.hiddenDels[p] ?? []) dels.push({ priority, seq })
    }
    return {
      puts,
      dels,
      reportPuts: [...this.reportPuts].map(([id, value]) => ({ id, value })),
      reportDels: [...this.reportDels],
      expiryPuts: this.overlay.expiryEntries(),
      expiryDels: [...this.hiddenExpiry.values()],
      meta: this.meta
    }
  }

  private clearOverlay (): void {
    for (let p = 0; p < PRIORITY_COUNT; p++) {
      for (const e of [...this.overlay.entries(p as Priority)]) this.overlay.deleteEvent(p as Priority, e.seq)
      this.hiddenDels[p]?.clear()
    }
    for (const e of this.overlay.expiryEntries()) this.overlay.deleteExpiry(e)
    this.hiddenExpiry.clear()
    this.reportPuts.clear()
    this.reportDels.clear()
  }

  readonly repair = async (): Promise<BackendContent> => {
    if (this.disk.repair === undefined) throw new EdgefwdError('EDGEFWD_ERR_STORE_CORRUPT', 'store backend cannot repair itself')
    return await this.disk.repair()
  }

  async compact (spans?: SeqSpan[]): Promise<void> {
    if (this.mode === 'disk') await this.disk.compact(spans)
  }

  async close (): Promise<void> {
    if (this.mode === 'memory') await this.recover()
    await this.overlay.close()
    await this.disk.close()
  }

  memoryBytes (): number { return this.overlay.memoryBytes() }
}
