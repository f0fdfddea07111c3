/**
 * RingBuffer: the store's policy (capacity, eviction, leases, group commit, faults) over a
 * StoreBackend. The design, invariants and crash guarantees are written at the top of index.ts.
 * It composes the group commit (group-commit.ts: which appends and acks are written together)
 * and the lease table (lease-table.ts: what the uplink holds), and plans, writes and applies
 * each commit, reads each lease, and repairs.
 */
import { EdgefwdError, isEdgefwdError } from '../errors.js'
import type { Logger } from '../observe/log.js'
import { decodeEvictionReport, encodeEvent, encodeEvictionReport, readGatewayTimeMs } from '../proto/codec.js'
import type { EvictionReportData } from '../proto/codec.js'
import { PRIORITIES, PRIORITY_COUNT, isPriority } from '../types.js'
import type { DropReasonName, EventRecord, Priority } from '../types.js'
import type { StoreBackend } from './backend.js'
import { mergeReports } from './drop-ledger.js'
import type { AppendResult, EventStore, Lease, LeaseOptions, RingBufferOptions, StoreState, StoreStats } from './event-store.js'
import { DiskFullError, FallbackBackend } from './fallback-backend.js'
import { KEY_NUMBER_MAX, storedBytes } from './keys.js'
import { decodeMeta, emptyMeta, encodeMeta } from './meta.js'
import type { StoreMeta } from './meta.js'
import { CompactionSchedule } from './compaction.js'
import { DeletionGuard } from './deletion-guard.js'
import { Drain, LeaseBudget } from './drain.js'
import { recountMeta } from './recount.js'
import type { Plan } from './plan.js'
import { MAX_EXPIRED_PER_COMMIT, planCommit } from './commit-planner.js'
import type { Encoded } from './commit-planner.js'
import { SerialLane } from './serial-lane.js'
import { WindowedGroupCommit } from './group-commit.js'
import type { CommitOptions, PendingAck, PendingAppend } from './group-commit.js'
import { MemoryLeaseTable } from './lease-table.js'

const DEFAULTS = { overheadFactor: 1, maxEventBytes: 64 * 1024, windowMs: 5, maxEvents: 1000, retryIntervalMs: 1000, memoryMaxBytes: 16 * 1024 * 1024 }

type Options = Required<Omit<RingBufferOptions, 'ttlMs' | 'groupCommit' | 'memoryFallback' | 'now'>> & {
  ttlMs: RingBufferOptions['ttlMs'], windowMs: number, maxEvents: number, memoryMaxBytes: number, retryIntervalMs: number
}

export class RingBuffer implements EventStore {
  private state: StoreState = 'new'
  private meta: StoreMeta = emptyMeta()
  private seqCounter = 1
  private readonly reports = new Map<number, { data: EvictionReportData, leased: boolean }>()
  private readonly leases: MemoryLeaseTable
  /** Events written since open, per priority (the `edgefwd_events_stored_total` counter). */
  private readonly stored: number[] = new Array<number>(PRIORITY_COUNT).fill(0)
  private readonly guard = new DeletionGuard(PRIORITY_COUNT)
  private readonly drain: Drain
  private readonly evictCursor: Array<number | undefined> = new Array(PRIORITY_COUNT).fill(undefined)
  /**
   * Whether any stored event may carry its own deadline: false while the expiry index is empty and
   * no such event has been appended, so a lease need not read each event for one (most stores
   * have no TTL rules; ~3% of the drain's main-thread time otherwise).
   */
  private deadlinesMayExist = true
  private closing: Promise<void> | undefined
  private readonly commits: WindowedGroupCommit
  private readonly writes = new SerialLane()
  private readonly leasing = new SerialLane()
  private readonly timers: NodeJS.Timeout[] = []
  private readonly compaction: CompactionSchedule
  private repairedAtOpen = false
  private readonly fallback: FallbackBackend | undefined
  private readonly opt: Options
  private readonly now: () => number

  constructor (private readonly backend: StoreBackend, options: RingBufferOptions, private readonly logger?: Logger) {
    this.fallback = backend instanceof FallbackBackend ? backend : undefined
    this.now = options.now ?? Date.now
    this.opt = {
      capacityBytes: options.capacityBytes,
      overheadFactor: options.overheadFactor ?? DEFAULTS.overheadFactor,
      maxEventBytes: options.maxEventBytes ?? DEFAULTS.maxEventBytes,
      durability: options.durability ?? 'sync',
      drainOrder: options.drainOrder ?? 'oldest-first',
      ttlMs: options.ttlMs,
      expiryIntervalMs: options.expiryIntervalMs ?? 1000,
      compactAfterDeletes: options.compactAfterDeletes ?? 100_000,
      windowMs: options.groupCommit?.windowMs ?? DEFAULTS.windowMs,
      maxEvents: options.groupCommit?.maxEvents ?? DEFAULTS.maxEvents,
      memoryMaxBytes: options.memoryFallback?.maxBytes ?? DEFAULTS.memoryMaxBytes,
      retryIntervalMs: options.memoryFallback?.retryIntervalMs ?? DEFAULTS.retryIntervalMs
    }
    if (!(this.opt.capacityBytes > 0)) throw new EdgefwdError('EDGEFWD_ERR_CONFIG_INVALID', 'store capacity must be positive')
    this.leases = new MemoryLeaseTable(PRIORITY_COUNT, (priority, seq) => {
      this.drain.rewind(priority, seq)
      this.evictCursor[priority] = Math.min(this.evictCursor[priority] ?? 0, seq - 1)
    })
    this.drain = new Drain(backend, this.leases.leased, this.guard, this.opt.drainOrder === 'newest-first', PRIORITY_COUNT)
    this.commits = new WindowedGroupCommit(this.writes, this.opt, (appends, acks, o) => this.writeGroup(appends, acks, o), () => this.state === 'open', logger)
    this.compaction = new CompactionSchedule(backend, this.opt.compactAfterDeletes, PRIORITY_COUNT, logger)
  }

  // ── lifecycle ────────────────────────────────────────────────────────────────────────────────

  async open (): Promise<void> {
    if (this.state !== 'new') throw new EdgefwdError('EDGEFWD_ERR_STORE_NOT_OPEN', `store cannot open from state ${this.state}`)
    this.state = 'opening'
    try {
      const content = await this.backend.open()
      this.repairedAtOpen = content.repaired === true
      const meta = content.repaired === true ? undefined : decodeMeta(content.meta)
      if (meta === undefined && (content.meta !== undefined || content.repaired === true)) {
        this.logger?.warn({ code: 'EDGEFWD_ERR_STORE_CORRUPT' }, 'store meta record missing or damaged; recounting from a full scan')
        this.meta = await recountMeta(this.backend, decodeMeta(content.meta))
      } else if (content.upgraded === true) {
        // Same events, longer keys: the byte totals are recounted; drops and sequences carry over.
        this.meta = await recountMeta(this.backend, meta)
      } else {
        this.meta = meta ?? emptyMeta()
      }
      for (const r of content.reports) {
        try {
          this.reports.set(r.id, { data: decodeEvictionReport(r.value), leased: false })
        } catch (err) {
          this.logger?.error({ code: 'EDGEFWD_ERR_STORE_CORRUPT', reportId: r.id, err }, 'damaged eviction report record ignored; its counts remain in the cumulative drop totals')
        }
        this.meta.nextReportId = Math.max(this.meta.nextReportId, r.id + 1)
      }
      this.seqCounter = this.meta.nextSeq
      this.drain.startTail(this.seqCounter)
      this.deadlinesMayExist = (await this.backend.scanExpiry(KEY_NUMBER_MAX, undefined, 1)).length > 0
    } catch (err) {
      this.state = 'closed'
      await this.backend.close().catch(() => {})
      throw err
    }
    this.state = 'open'
    // Always: besides the priority TTLs, events may carry their own deadline (TTL rules).
    if (this.opt.expiryIntervalMs > 0) {
      this.timers.push(setInterval(() => { this.expire().catch(err => this.logger?.error({ err }, 'store expiry failed')) }, this.opt.expiryIntervalMs).unref())
    }
    if (this.fallback !== undefined) {
      this.timers.push(setInterval(() => { this.tryRecoverDisk() }, this.opt.retryIntervalMs).unref())
    }
  }

  /** Closes the store; a second call returns the close in progress (resolved once the database is closed). */
  async close (): Promise<void> {
    this.closing ??= this.closeNow()
    await this.closing
  }

  private async closeNow (): Promise<void> {
    if (this.state === 'closed') return
    this.state = 'closing'
    for (const t of this.timers) clearInterval(t)
    this.commits.cancelWindow()
    await this.leasing.run(async () => { await this.drain.closeAll() })
    while (this.commits.pending) await this.writes.run(async () => await this.commits.commit())
    await this.writes.idle()
    await this.compaction.idle()
    await this.backend.close()
    this.leases.clear()
    this.state = 'closed'
  }

  // ── append and group commit ──────────────────────────────────────────────────────────────────

  async append (events: readonly EventRecord[]): Promise<AppendResult> {
    this.assertOpen()
    if (events.length === 0) return { accepted: 0, rejected: [], evicted: 0, durable: true }
    const encoded = events.map((e, i) => this.encode(e, i))
    return await this.commits.append(encoded)
  }

  private encode (record: EventRecord, index: number): Encoded {
    const problem = validate(record)
    if (problem !== undefined) throw new EdgefwdError('EDGEFWD_ERR_EVENT_INVALID', `event ${index}: ${problem}`)
    const seq = this.seqCounter++
    const value = encodeEvent(record, seq)
    if (record.expiresAtMs !== undefined) this.deadlinesMayExist = true
    const overhead = storedBytes(0, record.expiresAtMs !== undefined)
    if (value.byteLength > this.opt.maxEventBytes || (overhead + value.byteLength) * this.opt.overheadFactor > this.opt.capacityBytes) {
      throw new EdgefwdError('EDGEFWD_ERR_EVENT_TOO_LARGE',
        `event ${index} from ${record.deviceId} encodes to ${value.byteLength} bytes; the store takes at most ${Math.min(this.opt.maxEventBytes, Math.floor(this.opt.capacityBytes / this.opt.overheadFactor) - overhead)}`)
    }
    return { record, seq, value }
  }

  /** Plans one group against the current state, writes it in one batch, then applies the plan. */
  private async writeGroup (appends: PendingAppend[], acks: PendingAck[], options: CommitOptions): Promise<number> {
    const epoch = this.leases.epoch
    let ackedLeases = acks
    let plan: Plan | undefined
    try {
      plan = await this.repairing(async () => await this.plan(appends, ackedLeases, options.expire === true, this.fallback?.degraded === true), () => { ackedLeases = [] })
      // A sweep that found nothing writes nothing (it runs every expiryInterval).
      if (appends.length === 0 && ackedLeases.length === 0 && plan.isEmpty()) return 0
      let durable: boolean
      try {
        durable = (await this.backend.write(plan.write, this.needsSync(plan))).durable
      } catch (err) {
        if (!(err instanceof DiskFullError)) throw err
        this.release(plan)
        plan = await this.plan(appends, ackedLeases, options.expire === true, true)
        durable = (await this.backend.write(plan.write, false)).durable
      }
      this.apply(plan, epoch)
      for (const a of acks) a.resolve()
      for (const [i, a] of appends.entries()) a.resolve({ ...(plan.results[i] as Omit<AppendResult, 'durable'>), durable })
    } catch (err) {
      if (plan !== undefined) this.release(plan)
      const failure = err instanceof EdgefwdError ? err : new EdgefwdError('EDGEFWD_ERR_STORE_IO', 'store write failed', { cause: err })
      this.logger?.error({ code: failure.code, err }, 'store commit failed; nothing of this group was written')
      for (const a of acks) { this.leases.unsettle(a.lease); a.reject(failure) }
      for (const a of appends) a.reject(failure)
      return 0
    }
    this.compaction.deleted(plan.write.dels)
    return plan.expired
  }

  /**
   * Only groups that add events are fsynced. A group of acks or expiries lost in a crash brings
   * its events back (delivered again: duplicates the receiver drops by batch id), never loses one;
   * the next synced group makes it durable anyway, as LevelDB's log is written in order.
   */
  private needsSync (plan: Plan): boolean {
    return this.opt.durability === 'sync' && plan.write.puts.length > 0
  }

  private async plan (appends: PendingAppend[], acks: PendingAck[], expire: boolean, degraded: boolean): Promise<Plan> {
    const plan = await planCommit({
      meta: this.meta,
      backend: this.backend,
      evictCursor: this.evictCursor,
      leased: this.leases.leased,
      guard: this.guard,
      deadlinesMayExist: this.deadlinesMayExist,
      limits: this.opt,
      now: this.now(),
      nextSeq: this.seqCounter,
      pendingReports: [...this.reports].filter(([, r]) => !r.leased).map(([id, r]) => ({ id, data: r.data }))
    }, appends.map(a => a.events), acks.map(a => a.lease), { expire, degraded })
    // Folded reports are marked leased meanwhile, so no lease carries one this commit replaces
    // (apply deletes them, release frees them).
    for (const id of plan.absorbed) (this.reports.get(id) as { leased: boolean }).leased = true
    return plan
  }

  private apply (plan: Plan, epoch: number): void {
    this.meta = plan.meta
    for (const k of plan.write.puts) {
      this.stored[k.priority] = (this.stored[k.priority] ?? 0) + 1
      this.drain.committed(k.priority, k.seq)
    }
    // A nack during planning may have moved a cursor back below what this plan saw: keep it there.
    if (epoch === this.leases.epoch) {
      for (let p = 0; p < PRIORITY_COUNT; p++) {
        const c = plan.evictCursor[p]
        if (c !== undefined) this.evictCursor[p] = Math.max(this.evictCursor[p] ?? 0, c)
      }
    }
    for (const k of plan.write.dels) this.guard.deleted(k.priority, k.seq, this.drain.mayStillReturn(k.priority, k.seq))
    for (const r of plan.write.reportPuts) this.reports.set(r.id, { data: plan.newReport as EvictionReportData, leased: false })
    for (const id of plan.write.reportDels) this.reports.delete(id)
    this.leases.settled(plan.settledLeases)
  }

  private release (plan: Plan): void {
    for (const k of plan.condemned) {
      this.guard.unplan(k.priority, k.seq)
      this.drain.rewind(k.priority, k.seq)
    }
    for (const id of plan.absorbed) {
      const r = this.reports.get(id)
      if (r !== undefined) r.leased = false
    }
  }

  // ── lease / ack / nack ───────────────────────────────────────────────────────────────────────

  async lease (maxEvents: number, maxBytes: number, options: LeaseOptions = {}): Promise<Lease | null> {
    this.assertOpen()
    const minPriority = options.minPriority ?? 0
    const run = async (): Promise<Lease | null> => await this.leasing.run(async () => await this.leaseNow(Math.max(1, maxEvents), Math.max(1, maxBytes), minPriority))
    try {
      return await run()
    } catch (err) {
      if (!isEdgefwdError(err, 'EDGEFWD_ERR_STORE_CORRUPT')) throw err
      await this.writes.run(async () => { await this.repair(err) })
      return await run()
    }
  }

  private async leaseNow (maxEvents: number, maxBytes: number, minPriority: number): Promise<Lease | null> {
    this.guard.prune(this.drain.positions())
    const budget = new LeaseBudget(maxEvents, maxBytes)
    try {
      for (let p = PRIORITY_COUNT - 1; p >= minPriority && !budget.full; p--) {
        // Nothing leasable here: skip the read (each new iterator costs a seek).
        if ((this.meta.live[p]?.count ?? 0) <= (this.leases.leased[p]?.size ?? 0)) continue
        await this.drain.fill(p as Priority, budget)
      }
    } catch (err) {
      // A read failed part-way: what was already taken goes back as a nack's events do, leased no
      // longer and read again (the drain's position had passed them; without the rewind they were
      // skipped until a restart).
      this.leases.putBack(budget.picked)
      throw err
    }
    const reportIds = [...this.reports].filter(([, r]) => !r.leased).map(([id]) => id)
    return this.leases.issue(budget.picked, budget.bytes, reportIds, this.carryReports)
  }

  /** Marks pending report records as carried by a lease being issued; their drops merged into one report. */
  private readonly carryReports = (reportIds: readonly number[]): EvictionReportData | undefined => {
    const reports = reportIds.map(rid => this.reports.get(rid) as { data: EvictionReportData, leased: boolean })
    for (const r of reports) r.leased = true
    return reports.length > 0 ? mergeReports(reports.map(r => r.data)) : undefined
  }

  async ack (leaseId: number): Promise<void> {
    this.assertOpen()
    await this.commits.ack(this.leases.settle(leaseId))
  }

  nack (leaseId: number): void {
    this.assertOpen()
    const lease = this.leases.nack(leaseId)
    for (const rid of lease.reportIds) {
      const r = this.reports.get(rid)
      if (r !== undefined) r.leased = false
    }
  }

  // ── damage found while running ───────────────────────────────────────────────────────────────

  /**
   * Runs `fn` (in the write lane); if it finds the database damaged, repairs it and runs `fn` once
   * more. `onRepair` lets the caller drop work that referred to the forgotten leases.
   */
  private async repairing<T> (fn: () => Promise<T>, onRepair?: () => void): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      if (!isEdgefwdError(err, 'EDGEFWD_ERR_STORE_CORRUPT')) throw err
      await this.repair(err)
      onRepair?.()
      return await fn()
    }
  }

  /**
   * Repairs the database in place, recounts, and forgets every lease: their events are delivered
   * again (duplicates, never loss). Called in the write lane; waits for the lease lane to be idle
   * (the lease lane never waits for the write lane, so this cannot deadlock).
   */
  private async repair (cause: unknown): Promise<void> {
    await this.leasing.run(async () => { await this.repairNow(cause) })
  }

  private async repairNow (cause: unknown): Promise<void> {
    if (this.backend.repair === undefined) throw cause
    await this.backend.repair()
    this.deadlinesMayExist = true
    this.meta = await recountMeta(this.backend, this.meta)
    this.meta.nextSeq = this.seqCounter
    this.leases.reset()
    await this.drain.reset()
    this.drain.startTail(this.seqCounter)
    this.evictCursor.fill(undefined)
    for (const r of this.reports.values()) r.leased = false
    // Report records may have been lost with the damage: write back every one still pending.
    const reportPuts = [...this.reports].map(([id, r]) => ({ id, value: encodeEvictionReport(r.data) }))
    await this.backend.write({ puts: [], dels: [], reportPuts, reportDels: [], expiryPuts: [], expiryDels: [], meta: encodeMeta(this.meta) }, true)
  }

  // ── expiry, compaction, disk recovery ────────────────────────────────────────────────────────

  async expire (): Promise<number> {
    this.assertOpen()
    let total = 0
    // One commit expires at most MAX_EXPIRED_PER_COMMIT (bounded memory); appends and acks get
    // the write lane between two of them.
    for (;;) {
      const n = await this.writes.run(async () => await this.commits.commit({ expire: true }))
      total += n
      if (n < MAX_EXPIRED_PER_COMMIT || this.state !== 'open') return total
    }
  }

  async compact (): Promise<void> {
    this.assertOpen()
    await this.compaction.idle()
    await this.writes.run(async () => { await this.backend.compact() })
  }

  private tryRecoverDisk (): void {
    if (this.fallback?.degraded !== true || this.state !== 'open') return
    // Recovery reopens the database: no read or write may be in flight, and no reader kept.
    this.writes.run(async () => await this.leasing.run(async () => {
      await this.drain.closeAll()
      return await this.fallback?.recover()
    }))
      .catch(err => this.logger?.error({ err }, 'store disk recovery failed'))
  }

  // ── stats ────────────────────────────────────────────────────────────────────────────────────

  /** EventSink.durableNow: not while the disk-full fallback holds the store in memory. */
  readonly durableNow = (): boolean => this.fallback?.degraded !== true

  stats (): StoreStats {
    const perPriority = PRIORITIES.map((name, p) => ({
      priority: name, events: this.meta.live[p]?.count ?? 0, bytes: this.meta.live[p]?.bytes ?? 0, leased: this.leases.leased[p]?.size ?? 0, stored: this.stored[p] ?? 0
    }))
    const liveBytes = perPriority.reduce((n, p) => n + p.bytes, 0)
    return {
      state: this.state,
      mode: this.fallback?.degraded === true ? 'memory' : 'disk',
      capacityBytes: this.opt.capacityBytes,
      usedBytes: Math.ceil(liveBytes * this.opt.overheadFactor),
      events: perPriority.reduce((n, p) => n + p.events, 0),
      perPriority,
      leases: this.leases.size,
      leasedEvents: perPriority.reduce((n, p) => n + p.leased, 0),
      memoryBytes: this.backend.memoryBytes(),
      pendingAppends: this.commits.pendingEvents,
      pendingReports: this.reports.size,
      nextSeq: this.seqCounter,
      repairedAtOpen: this.repairedAtOpen,
      drops: [...this.meta.drops].map(([k, v]) => {
        const [p, reason] = k.split(':') as [string, DropReasonName]
        return { priority: PRIORITIES[Number(p)] as typeof PRIORITIES[number], reason, count: v.count, bytes: v.bytes }
      })
    }
  }

  /** New priority TTLs (a remote configuration update); the next expiry sweep applies them. */
  setTtl (ttlMs: RingBufferOptions['ttlMs']): void {
    this.opt.ttlMs = ttlMs === undefined ? undefined : { ...ttlMs }
  }

  /**
   * Gateway time of the oldest buffered event (undefined: the store is empty). One read per
   * priority that holds events: the first key of a priority's range is its oldest event (store
   * seqs grow with arrival), whatever the drain order. For heartbeats and scrapes, not hot paths.
   */
  async oldestEventTimeMs (): Promise<number | undefined> {
    if (this.state !== 'open') return undefined
    let oldest: number | undefined
    for (let p = 0; p < PRIORITY_COUNT; p++) {
      if ((this.meta.live[p]?.count ?? 0) === 0) continue
      const [first] = await this.backend.scan(p as Priority, { reverse: false, limit: 1 })
      if (first === undefined) continue
      const t = readGatewayTimeMs(first.value)
      if (oldest === undefined || t < oldest) oldest = t
    }
    return oldest
  }

  private assertOpen (): void {
    if (this.state !== 'open') throw new EdgefwdError('EDGEFWD_ERR_STORE_NOT_OPEN', `store is ${this.state}`)
  }
}

function validate (e: EventRecord): string | undefined {
  if (typeof e.deviceId !== 'string' || e.deviceId.length === 0 || Buffer.byteLength(e.deviceId) > 64) return 'deviceId must be 1-64 bytes'
  if (!isPriority(e.priority)) return `priority must be 0-3, got ${String(e.priority)}`
  if (!Number.isSafeInteger(e.deviceSeq) || e.deviceSeq < 0) return `deviceSeq must be a non-negative safe integer, got ${String(e.deviceSeq)}`
  if (!Number.isFinite(e.gatewayTimeMs) || e.gatewayTimeMs < 0) return 'gatewayTimeMs must be a non-negative number'
  if (typeof e.stream !== 'string') return 'stream must be a string'
  if (e.expiresAtMs !== undefined && (!Number.isSafeInteger(e.expiresAtMs) || e.expiresAtMs < 0)) return 'expiresAtMs must be a non-negative safe integer'
  return undefined
}
