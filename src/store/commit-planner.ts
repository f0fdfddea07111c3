import { readGatewayTimeMs } from '../proto/codec.js'
import type { EvictionReportData } from '../proto/codec.js'
import { PRIORITIES, PRIORITY_COUNT } from '../types.js'
import type { EventRecord, Priority, PriorityName } from '../types.js'
import type { ExpiryEntry, ScannedEvent, StoreBackend } from './backend.js'
import type { DeletionGuard } from './deletion-guard.js'
import type { AppendResult } from './event-store.js'
import { storedBytes } from './keys.js'
import type { StoreMeta } from './meta.js'
import { Plan, VictimSource } from './plan.js'
import type { PlannedPut } from './plan.js'

/** An appended event, validated and encoded, with its store seq. */
export interface Encoded { record: EventRecord, seq: number, value: Uint8Array }

/** A lease being acked: its events are deleted, its reports delivered. */
export interface AckedLease { id: number, events: readonly ScannedEvent[], reportIds: readonly number[] }

/** What a commit is planned against; read only. */
export interface PlannerState {
  meta: StoreMeta
  backend: StoreBackend
  evictCursor: ReadonlyArray<number | undefined>
  leased: ReadonlyArray<Set<number>>
  guard: DeletionGuard
  /** false when no stored event carries its own deadline (none is read then). */
  deadlinesMayExist: boolean
  limits: { capacityBytes: number, overheadFactor: number, memoryMaxBytes: number, ttlMs?: Partial<Record<PriorityName, number>> | undefined }
  now: number
  nextSeq: number
  /** Report records not carried by any lease. */
  pendingReports: ReadonlyArray<{ id: number, data: EvictionReportData }>
}

/** Pending report records beyond which a commit folds them into its own. */
const MAX_PENDING_REPORTS = 32
/** Expiry index entries read per step of the sweep. */
const EXPIRY_CHUNK = 512
/**
 * Most events one commit expires: a plan holds its victims in memory, and a backlog (a day of
 * events passing their TTL at once after a restart) must not become one huge write. expire()
 * commits again until a commit expires fewer.
 */
export const MAX_EXPIRED_PER_COMMIT = 20_000

/**
 * Plans one commit: acks first (they free room), then TTL expiry (by priority, then by each
 * event's own deadline), then each appended event in
 * order, evicting the oldest unleased events of the lowest priority ≤ its own until it fits, or
 * refusing it. Nothing is written or changed here beyond marking victims in the guard.
 */
export async function planCommit (state: PlannerState, appends: ReadonlyArray<readonly Encoded[]>, acks: readonly AckedLease[],
  options: { expire: boolean, degraded: boolean }): Promise<Plan> {
  const { limits } = state
  const plan = new Plan(state.meta)
  const victims = Array.from({ length: PRIORITY_COUNT }, (_, p) =>
    new VictimSource(state.backend, p as Priority, state.evictCursor[p], state.leased[p] as Set<number>, state.guard))
  const fits = (bytes: number): boolean => (plan.usedBytes() + bytes) * limits.overheadFactor <= limits.capacityBytes

  for (const lease of acks) {
    plan.removeDelivered(lease.events, state.deadlinesMayExist)
    plan.write.reportDels.push(...lease.reportIds)
    plan.settledLeases.push(lease.id)
  }

  if (options.expire) {
    for (let p = 0; p < PRIORITY_COUNT; p++) {
      const ttl = limits.ttlMs?.[PRIORITIES[p] as PriorityName]
      if (ttl === undefined) continue
      const source = victims[p] as VictimSource
      const isExpired = (v: { value: Uint8Array }): boolean => plan.expired < MAX_EXPIRED_PER_COMMIT && readGatewayTimeMs(v.value) < state.now - ttl
      for (let v = await source.next(isExpired); v !== undefined; v = await source.next(isExpired)) {
        plan.drop(p as Priority, v, 'expired_ttl')
        plan.expired++
      }
    }
    await expireDeadlines(state, plan)
  }

  /** Evicts until `bytes` more fit; the number evicted, or undefined when it cannot fit. */
  const makeRoom = async (priority: Priority, bytes: number): Promise<number | undefined> => {
    let evicted = 0
    while (!fits(bytes)) {
      let found = false
      for (let q = 0; q <= priority && !found; q++) {
        const victim = await victims[q]?.next()
        if (victim === undefined) continue
        plan.drop(q as Priority, victim, 'evicted_for_space')
        evicted++
        found = true
      }
      if (!found) return undefined
    }
    return evicted
  }

  let memoryBytes = state.backend.memoryBytes()
  for (const events of appends) {
    const result: Omit<AppendResult, 'durable'> = { accepted: 0, rejected: [], evicted: 0 }
    for (let index = 0; index < events.length; index++) {
      const e = events[index] as Encoded
      const bytes = storedBytes(e.value.byteLength, e.record.expiresAtMs !== undefined)
      if (options.degraded && memoryBytes + e.value.byteLength > limits.memoryMaxBytes) {
        plan.refuse(e.record, bytes, 'memory_queue_full')
        result.rejected.push({ index, reason: 'memory_queue_full' })
        continue
      }
      // The common case, room to spare, stays synchronous: an await per event cost ~10% of
      // append throughput.
      const evicted = fits(bytes) ? 0 : await makeRoom(e.record.priority, bytes)
      if (evicted === undefined) {
        plan.refuse(e.record, bytes, 'rejected_full')
        result.rejected.push({ index, reason: 'rejected_full' })
        continue
      }
      result.evicted += evicted
      const put: PlannedPut = { priority: e.record.priority, seq: e.seq, value: e.value, record: e.record, bytes, dead: false }
      plan.add(put)
      victims[e.record.priority]?.addGroupPut(put)
      if (options.degraded) memoryBytes += e.value.byteLength
      result.accepted++
    }
    plan.results.push(result)
  }
  plan.finish(state.nextSeq, state.pendingReports.length >= MAX_PENDING_REPORTS ? state.pendingReports : [])
  for (const [p, v] of victims.entries()) plan.evictCursor[p] = v.cursor
  return plan
}

/**
 * Events whose own deadline (expires_at_ms, set by a TTL rule) has passed, read from the expiry
 * index in deadline order: only due entries are read, however large the store. Leased events
 * stay (as with the priority TTL) and are looked at again by the next sweep if they come back.
 */
async function expireDeadlines (state: PlannerState, plan: Plan): Promise<void> {
  const { backend, guard, leased } = state
  const takeable = (e: ExpiryEntry): boolean => leased[e.priority]?.has(e.seq) !== true && !guard.blocks(e.priority, e.seq)
  let after: ExpiryEntry | undefined
  for (let more = plan.expired < MAX_EXPIRED_PER_COMMIT; more;) {
    const due = await backend.scanExpiry(state.now, after, Math.min(EXPIRY_CHUNK, MAX_EXPIRED_PER_COMMIT - plan.expired))
    more = due.length === EXPIRY_CHUNK
    after = due[due.length - 1]
    const candidates = due.filter(takeable)
    if (candidates.length === 0) continue
    const values = await backend.getEvents(candidates)
    // After the last await: check again and mark in one synchronous step, as VictimSource does,
    // so a lease running meanwhile and this plan never both take an event.
    for (const [i, e] of candidates.entries()) {
      const value = values[i]
      if (value === undefined) { plan.removeStaleExpiry(e); continue }
      if (!takeable(e)) continue
      guard.plan(e.priority, e.seq)
      plan.drop(e.priority, { seq: e.seq, bytes: storedBytes(value.byteLength, true), value }, 'expired_ttl')
      plan.expired++
    }
    more &&= plan.expired < MAX_EXPIRED_PER_COMMIT
  }
}
