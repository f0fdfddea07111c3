import type { Priority } from '../types.js'
import { PRIORITY_COUNT } from '../types.js'
import type { BackendContent, BackendWrite, EventKey, ExpiryEntry, ScanOptions, ScannedEvent, StoreBackend, WriteOutcome } from './backend.js'
import { compareExpiry } from './keys.js'

/**
 * One priority's events: an ascending array of seqs plus a map of live values. Deleting only
 * removes the map entry; the array is compacted once more than half of it is dead, so scans stay
 * O(log n + k) and deletes O(1).
 */
class SeqIndex {
  constructor (private readonly priority: Priority) {}

  private seqs: number[] = []
  private readonly values = new Map<number, Uint8Array>()
  private dead = 0

  get size (): number { return this.values.size }

  put (seq: number, value: Uint8Array): void {
    if (this.values.has(seq)) { this.values.set(seq, value); return }
    const last = this.seqs[this.seqs.length - 1]
    if (last === undefined || seq > last) this.seqs.push(seq)
    else this.seqs.splice(this.lowerBound(seq), 0, seq)
    this.values.set(seq, value)
  }

  get (seq: number): Uint8Array | undefined { return this.values.get(seq) }

  delete (seq: number): boolean {
    if (!this.values.delete(seq)) return false
    if (++this.dead > 1024 && this.dead > this.seqs.length / 2) {
      this.seqs = this.seqs.filter(s => this.values.has(s))
      this.dead = 0
    }
    return true
  }

  scan (opts: ScanOptions): ScannedEvent[] {
    const out: ScannedEvent[] = []
    if (!opts.reverse) {
      for (let i = opts.from === undefined ? 0 : this.upperBound(opts.from); i < this.seqs.length && out.length < opts.limit; i++) {
        this.collect(this.seqs[i] as number, out)
      }
    } else {
      for (let i = (opts.from === undefined ? this.seqs.length : this.lowerBound(opts.from)) - 1; i >= 0 && out.length < opts.limit; i--) {
        this.collect(this.seqs[i] as number, out)
      }
    }
    return out
  }

  * entries (): Generator<ScannedEvent> {
    for (const s of this.seqs) {
      const value = this.values.get(s)
      if (value !== undefined) yield { priority: this.priority, seq: s, value }
    }
  }

  private collect (seq: number, out: ScannedEvent[]): void {
    const value = this.values.get(seq)
    if (value !== undefined) out.push({ priority: this.priority, seq, value })
  }

  /** First index whose seq is >= seq. */
  private lowerBound (seq: number): number {
    let lo = 0; let hi = this.seqs.length
    while (lo < hi) { const mid = (lo + hi) >>> 1; if ((this.seqs[mid] as number) < seq) lo = mid + 1; else hi = mid }
    return lo
  }

  /** First index whose seq is > seq. */
  private upperBound (seq: number): number {
    let lo = 0; let hi = this.seqs.length
    while (lo < hi) { const mid = (lo + hi) >>> 1; if ((this.seqs[mid] as number) <= seq) lo = mid + 1; else hi = mid }
    return lo
  }
}

/**
 * The expiry index: entries in deadline order in one array. Inserts are mostly at the end (one
 * TTL gives rising deadlines) and deletes mostly near the front (oldest delivered first).
 */
class ExpiryIndex {
  private readonly entries: ExpiryEntry[] = []

  get size (): number { return this.entries.length }

  put (e: ExpiryEntry): void {
    const i = this.lowerBound(e)
    const at = this.entries[i]
    if (at !== undefined && compareExpiry(at, e) === 0) return
    if (i === this.entries.length) this.entries.push({ ...e })
    else this.entries.splice(i, 0, { ...e })
  }

  delete (e: ExpiryEntry): boolean {
    const i = this.lowerBound(e)
    const at = this.entries[i]
    if (at === undefined || compareExpiry(at, e) !== 0) return false
    this.entries.splice(i, 1)
    return true
  }

  due (before: number, after: ExpiryEntry | undefined, limit: number): ExpiryEntry[] {
    const out: ExpiryEntry[] = []
    let i = after === undefined ? 0 : this.lowerBound(after)
    if (after !== undefined && this.entries[i] !== undefined && compareExpiry(this.entries[i] as ExpiryEntry, after) === 0) i++
    for (; i < this.entries.length && out.length < limit; i++) {
      const e = this.entries[i] as ExpiryEntry
      if (e.expiresAt >= before) break
      out.push({ ...e })
    }
    return out
  }

  all (): ExpiryEntry[] { return this.entries.map(e => ({ ...e })) }

  private lowerBound (e: ExpiryEntry): number {
    let lo = 0; let hi = this.entries.length
    while (lo < hi) { const mid = (lo + hi) >>> 1; if (compareExpiry(this.entries[mid] as ExpiryEntry, e) < 0) lo = mid + 1; else hi = mid }
    return lo
  }
}

/** The state a MemoryBackend keeps; sharing one across backends simulates a restart. */
export class MemoryVolume {
  readonly events: SeqIndex[] = Array.from({ length: PRIORITY_COUNT }, (_, p) => new SeqIndex(p as Priority))
  readonly reports = new Map<number, Uint8Array>()
  readonly expiry = new ExpiryIndex()
  meta: Uint8Array | undefined
  bytes = 0
}

/** A non-durable backend: for tests, for simulation, and as the disk-full fallback. */
export class MemoryBackend implements StoreBackend {
  private isOpen = false

  constructor (readonly volume: MemoryVolume = new MemoryVolume()) {}

  async open (): Promise<BackendContent> {
    this.isOpen = true
    return {
      meta: this.volume.meta,
      reports: [...this.volume.reports].sort((a, b) => a[0] - b[0]).map(([id, value]) => ({ id, value }))
    }
  }

  async write (w: BackendWrite): Promise<WriteOutcome> {
    this.applySync(w)
    return { durable: false }
  }

  /** Applies a write synchronously; the fallback backend relies on this being atomic. */
  applySync (w: BackendWrite): void {
    const v = this.volume
    for (const p of w.puts) {
      const prev = v.events[p.priority]?.get(p.seq)
      v.events[p.priority]?.put(p.seq, p.value)
      v.bytes += p.value.byteLength - (prev?.byteLength ?? 0)
    }
    for (const d of w.dels) this.deleteEvent(d.priority, d.seq)
    for (const r of w.reportPuts) v.reports.set(r.id, r.value)
    for (const id of w.reportDels) v.reports.delete(id)
    for (const e of w.expiryPuts) v.expiry.put(e)
    for (const e of w.expiryDels) v.expiry.delete(e)
    if (w.meta !== undefined) v.meta = w.meta
  }

  /** Removes one expiry entry; false when it is not held here. */
  deleteExpiry (e: ExpiryEntry): boolean { return this.volume.expiry.delete(e) }

  /** Every expiry entry held here, in deadline order. */
  expiryEntries (): ExpiryEntry[] { return this.volume.expiry.all() }

  /** Removes one event; false when it is not held here. */
  deleteEvent (priority: Priority, seq: number): boolean {
    const index = this.volume.events[priority]
    const value = index?.get(seq)
    if (index === undefined || value === undefined) return false
    index.delete(seq)
    this.volume.bytes -= value.byteLength
    return true
  }

  async scan (priority: Priority, opts: ScanOptions): Promise<ScannedEvent[]> {
    return this.volume.events[priority]?.scan(opts) ?? []
  }

  async scanExpiry (before: number, after: ExpiryEntry | undefined, limit: number): Promise<ExpiryEntry[]> {
    return this.volume.expiry.due(before, after, limit)
  }

  async getEvents (keys: readonly EventKey[]): Promise<Array<Uint8Array | undefined>> {
    return keys.map(k => this.get(k.priority, k.seq))
  }

  get (priority: Priority, seq: number): Uint8Array | undefined { return this.volume.events[priority]?.get(seq) }

  * entries (priority: Priority): Generator<ScannedEvent> {
    yield * this.volume.events[priority]?.entries() ?? []
  }

  async compact (): Promise<void> {}

  async close (): Promise<void> { this.isOpen = false }

  memoryBytes (): number { return this.isOpen ? this.volume.bytes : 0 }
}
