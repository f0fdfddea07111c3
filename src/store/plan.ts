import { decodeEvent, encodeEvictionReport } from '../proto/codec.js'
import type { EvictionReportData } from '../proto/codec.js'
import type { DropReasonName, EventRecord, Priority } from '../types.js'
import type { BackendWrite, EventPut, ExpiryEntry, ScannedEvent, StoreBackend } from './backend.js'
import { mergeReports, reportFromDrops } from './drop-ledger.js'
import type { Drop } from './drop-ledger.js'
import type { AppendResult } from './event-store.js'
import type { DeletionGuard } from './deletion-guard.js'
import { deadlineOf, storedBytes } from './keys.js'
import { dropKey, encodeMeta } from './meta.js'
import type { StoreMeta } from './meta.js'

export interface PlannedPut extends EventPut { record: EventRecord, bytes: number, dead: boolean }
export interface Victim { seq: number, bytes: number, value: Uint8Array, raw?: string, put?: PlannedPut }

/** One commit's worth of changes, computed before anything is written. */
export class Plan {
  readonly write: BackendWrite = { puts: [], dels: [], reportPuts: [], reportDels: [], expiryPuts: [], expiryDels: [] }
  readonly meta: StoreMeta
  readonly results: Array<Omit<AppendResult, 'durable'>> = []
  readonly settledLeases: number[] = []
  /** Stored events this plan evicts or expires (as opposed to acks). */
  readonly condemned: Array<{ priority: Priority, seq: number }> = []
  readonly evictCursor: Array<number | undefined> = []
  /** Pending report records folded into this plan's new one. */
  readonly absorbed: number[] = []
  newReport: EvictionReportData | undefined
  expired = 0
  private readonly puts: PlannedPut[] = []
  private readonly drops: Drop[] = []
  private used: number

  constructor (current: StoreMeta) {
    this.meta = { ...current, live: current.live.map(l => ({ ...l })), drops: new Map([...current.drops].map(([k, v]) => [k, { ...v }])) }
    this.used = this.meta.live.reduce((n, l) => n + l.bytes, 0)
  }

  usedBytes (): number { return this.used }

  add (put: PlannedPut): void {
    this.puts.push(put)
    this.live(put.priority, 1, put.bytes)
  }

  remove (priority: Priority, seq: number, bytes: number, raw?: string): void {
    this.write.dels.push({ priority, seq, raw })
    this.live(priority, -1, -bytes)
  }

  /**
   * Deletes delivered events: the lease's own objects are the delete keys, counted in one step.
   * Their deadlines are read only when some stored event may have one.
   */
  removeDelivered (events: readonly ScannedEvent[], deadlinesMayExist: boolean): void {
    const count = [0, 0, 0, 0]
    const bytes = [0, 0, 0, 0]
    for (const e of events) {
      this.write.dels.push(e)
      const expiresAt = deadlinesMayExist ? deadlineOf(e.value) : undefined
      if (expiresAt !== undefined) this.write.expiryDels.push({ expiresAt, priority: e.priority, seq: e.seq })
      count[e.priority] = (count[e.priority] ?? 0) + 1
      bytes[e.priority] = (bytes[e.priority] ?? 0) + storedBytes(e.value.byteLength, expiresAt !== undefined)
    }
    for (let p = 0; p < count.length; p++) if (count[p] !== 0) this.live(p as Priority, -(count[p] as number), -(bytes[p] as number))
  }

  /** A stored (or just accepted) event leaves for `reason`. */
  drop (priority: Priority, v: Victim, reason: DropReasonName): void {
    if (v.put !== undefined) {
      v.put.dead = true
      this.live(priority, -1, -v.bytes)
      this.count(priority, reason, v.bytes, v.put.record.gatewayTimeMs, v.put.record.deviceId, v.put.record.deviceSeq)
      return
    }
    this.remove(priority, v.seq, v.bytes, v.raw)
    this.condemned.push({ priority, seq: v.seq })
    const e = decodeEvent(v.value)
    if (e.expiresAtMs !== undefined) this.write.expiryDels.push({ expiresAt: e.expiresAtMs, priority, seq: v.seq })
    this.count(priority, reason, v.bytes, e.gatewayTimeMs, e.deviceId, e.deviceSeq)
  }

  /** An expiry index entry whose event is gone (left behind by a repair). */
  removeStaleExpiry (e: ExpiryEntry): void { this.write.expiryDels.push(e) }

  /** Whether the plan changes anything but the meta record. */
  isEmpty (): boolean {
    const w = this.write
    return this.puts.length === 0 && w.dels.length === 0 && w.reportPuts.length === 0 && w.reportDels.length === 0 &&
      w.expiryDels.length === 0 && this.drops.length === 0 && this.settledLeases.length === 0
  }

  refuse (r: EventRecord, bytes: number, reason: DropReasonName): void {
    this.count(r.priority, reason, bytes, r.gatewayTimeMs, r.deviceId, r.deviceSeq)
  }

  /**
   * Seals the plan: surviving puts, this commit's report record, the meta record. `absorb`: pending
   * report records to fold into this commit's one, so a long outage with steady evictions keeps a
   * bounded number of records rather than one per commit.
   */
  finish (nextSeq: number, absorb: ReadonlyArray<{ id: number, data: EvictionReportData }> = []): void {
    const live = this.puts.filter(p => !p.dead)
    this.write.puts = live
    for (const p of live) {
      if (p.record.expiresAtMs !== undefined) this.write.expiryPuts.push({ expiresAt: p.record.expiresAtMs, priority: p.priority, seq: p.seq })
    }
    if (this.drops.length > 0) {
      const own = reportFromDrops(this.drops)
      this.newReport = absorb.length > 0 ? mergeReports([...absorb.map(r => r.data), own]) : own
      this.write.reportDels.push(...absorb.map(r => r.id))
      this.absorbed.push(...absorb.map(r => r.id))
      this.write.reportPuts.push({ id: this.meta.nextReportId++, value: encodeEvictionReport(this.newReport) })
    }
    this.meta.nextSeq = nextSeq
    this.write.meta = encodeMeta(this.meta)
  }

  private live (priority: Priority, count: number, bytes: number): void {
    const l = this.meta.live[priority] as { count: number, bytes: number }
    l.count += count
    l.bytes += bytes
    this.used += bytes
  }

  private count (priority: Priority, reason: DropReasonName, bytes: number, gatewayTimeMs: number, deviceId: string, deviceSeq: number): void {
    this.drops.push({ priority, reason, bytes, gatewayTimeMs, deviceId, deviceSeq })
    const key = dropKey(priority, reason)
    const d = this.meta.drops.get(key) ?? { count: 0, bytes: 0 }
    d.count++
    d.bytes += bytes
    this.meta.drops.set(key, d)
  }
}

const SCAN_CHUNK = 512

/**
 * Eviction candidates of one priority for one plan, oldest first: stored events (scanned in chunks
 * from the eviction cursor, skipping leased ones), then events accepted earlier in the same group.
 */
export class VictimSource {
  private chunk: ScannedEvent[] = []
  private index = 0
  private exhausted = false
  private scanFrom: number | undefined
  private readonly groupPuts: PlannedPut[] = []
  private groupIndex = 0

  /** `cursor`: every event of this priority at or below it is gone or leased. */
  constructor (private readonly backend: StoreBackend, private readonly priority: Priority,
    public cursor: number | undefined, private readonly leased: Set<number>, private readonly guard: DeletionGuard) {
    this.scanFrom = cursor
  }

  addGroupPut (put: PlannedPut): void { this.groupPuts.push(put) }

  /**
   * Takes the oldest candidate, if `accept` (when given) agrees. The check against leases and
   * the marking as condemned happen in one synchronous step after the last await, so a lease
   * running meanwhile can never hand out an event this plan deletes, nor the reverse.
   */
  async next (accept?: (v: Victim) => boolean): Promise<Victim | undefined> {
    for (;;) {
      for (let e = this.chunk[this.index]; e !== undefined; e = this.chunk[this.index]) {
        // Leased, or already condemned by this plan (the expiry sweep takes events from anywhere).
        if (this.leased.has(e.seq) || this.guard.blocks(this.priority, e.seq)) { this.index++; continue }
        const v = { seq: e.seq, bytes: storedBytes(e.value.byteLength, deadlineOf(e.value) !== undefined), value: e.value, raw: e.raw }
        if (accept !== undefined && !accept(v)) return undefined
        this.index++
        this.cursor = e.seq
        this.guard.plan(this.priority, e.seq)
        return v
      }
      if (this.exhausted) break
      this.chunk = await this.backend.scan(this.priority, { from: this.scanFrom, reverse: false, limit: SCAN_CHUNK })
      this.index = 0
      this.exhausted = this.chunk.length < SCAN_CHUNK
      this.scanFrom = this.chunk[this.chunk.length - 1]?.seq ?? this.scanFrom
    }
    const put = this.groupPuts[this.groupIndex]
    if (put === undefined) return undefined
    const v = { seq: put.seq, bytes: put.bytes, value: put.value, put }
    if (accept !== undefined && !accept(v)) return undefined
    this.groupIndex++
    return v
  }
}
