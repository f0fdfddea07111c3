/**
 * IngestPipeline: what happens to parsed frames between a transport and the store.
 *
 * A transport parses what one read (or one tick of datagrams) delivered, with `frameOptions`
 * (max frame size and the device keys, so parseFrame checks tags), and hands the FrameResults
 * to `submit()`. For each frame, in order:
 *
 * 1. count it (total, per transport);
 * 2. a rejected frame is counted by reason, and per device when that device is already in the
 *    device table (see below), then logged, throttled;
 * 3. the device must be allowed (`unknown_device`) and, if it has a key, the frame must be
 *    authenticated (`bad_auth`; parseFrame checks the tag, this is the backstop, and it is what
 *    refuses JSON lines from keyed devices, which cannot carry a tag);
 * 4. a hello is counted and logged; an event must fit its device's token buckets
 *    (`rate_limited`: dropped, never queued);
 * 5. the event gets its priority and deadline from the rules (classify.ts), `gatewayTimeMs =
 *    now()`, `clockSkewed` when its device time is more than maxClockSkew away from now, and
 *    becomes an EventRecord.
 *
 * All events of one submit() go to the sink in ONE append (group commit then batches further).
 * The promise resolves with, per device, the highest seq that the sink accepted with
 * durable=true: the transport acknowledges exactly that. Events held in memory (disk full,
 * durable=false), refused by the store or lost to a failed append are never acknowledged.
 *
 * ## Bounded memory
 * Per-device state (counters, token buckets, matching rules) lives in an LRU table of
 * maxTrackedDevices entries. A device enters it only with a frame that passed parsing and the
 * unknown-device and auth checks, so spoofed ids in garbage cannot evict real devices; frames
 * rejected before that are counted per reason and transport only. A forgotten device comes back
 * with full buckets and zeroed counters (counted in `devicesForgotten`).
 */
import { pendingEventCost } from '../config/memory-budget.js'
import { isEdgefwdError } from '../errors.js'
import type { Logger } from '../observe/log.js'
import type { EventSink } from '../contracts.js'
import type { EventRecord } from '../types.js'
import { bump, IngestCounters, newDeviceCounters, type DeviceCounters, type IngestCounterSnapshot, type TransportDropReason } from './counters.js'
import { DevicePolicies, type DevicePolicy } from './device-policy.js'
import type { DeviceEvent, FrameResult } from './frame.js'
import { LruMap } from './lru-map.js'
import type { IngestOptions } from './options.js'
import { applyRules, Classifier, type DeviceRule, type RuleOutcome } from './classify.js'
import { TokenBucket } from './rate-limit.js'
import type { RejectReason, SourceFailure } from './reasons.js'
import { ThrottledLog } from './throttled-log.js'

export interface DeviceAck { deviceId: string, seq: number }

export interface SubmitResult {
  /** Events the sink accepted (durable or not). */
  accepted: number
  /** One per device: the highest seq stored durably by this submit. Empty when nothing was. */
  acks: readonly DeviceAck[]
  /**
   * Every event of this submit is on disk or was dropped for a counted reason (rejected, rate
   * limited, refused by the store). False when some are held in memory only (disk full) or were
   * lost to a failed append: a source whose peer can resend (an MQTT broker, before PUBACK) then
   * leaves them unacknowledged.
   */
  settled: boolean
}

/** What transports pass to parseFrame / StreamDeframer. */
export interface FrameParseOptions {
  maxFrameSize: number
  keyFor: (deviceId: string) => Uint8Array | undefined
}

interface DeviceState {
  policy: DevicePolicy
  counters: DeviceCounters
  bucket: TokenBucket
  rules: readonly DeviceRule[] | undefined
}

const NOTHING: SubmitResult = Object.freeze({ accepted: 0, acks: Object.freeze([]), settled: true })
const FAILED: SubmitResult = Object.freeze({ accepted: 0, acks: Object.freeze([]), settled: false })

export class IngestPipeline {
  readonly frameOptions: FrameParseOptions
  private policies: DevicePolicies
  private rules: Classifier
  private readonly devices: LruMap<string, DeviceState>
  private readonly stats = new IngestCounters()
  private readonly log: ThrottledLog
  private pending = 0
  private pendingByteCount = 0
  private lowWaiters: Array<{ below: number, belowBytes: number, wake: () => void }> = []

  constructor (private readonly sink: EventSink, private options: IngestOptions,
    logger: Logger, private readonly now: () => number = Date.now) {
    this.policies = new DevicePolicies(options)
    this.rules = new Classifier(options.rules)
    this.devices = new LruMap(options.maxTrackedDevices)
    this.log = new ThrottledLog(logger, options.logIntervalMs ?? 10_000, now)
    this.frameOptions = { maxFrameSize: options.maxFrameSize, keyFor: this.policies.keyFor }
  }

  /**
   * Applies new device policies (keys, rate limits), rules, the default rate limit, the clock-skew
   * bound and allowUnknownDevices (a remote configuration update) without dropping a connection.
   * Known devices get their new policy, rules and a new (full) token bucket at once; counters are
   * kept; a device no longer allowed is forgotten, so its next frame is refused. maxFrameSize and
   * maxTrackedDevices are fixed for the pipeline's life (a restart applies them).
   */
  reconfigure (options: IngestOptions): void {
    const now = this.now()
    this.options = { ...options, maxFrameSize: this.options.maxFrameSize, maxTrackedDevices: this.options.maxTrackedDevices }
    this.policies = new DevicePolicies(options)
    this.rules = new Classifier(options.rules)
    this.frameOptions.keyFor = this.policies.keyFor
    const gone: string[] = []
    for (const [id, device] of this.devices.entries()) {
      const policy = this.policies.lookup(id)
      if (policy === undefined) { gone.push(id); continue }
      device.policy = policy
      device.bucket = new TokenBucket(policy.rateLimit, this.options.maxFrameSize, now)
      device.rules = this.rules.forDevice(id)
    }
    for (const id of gone) this.devices.delete(id)
  }

  /** Whether the sink would write an append to disk now (EventSink.durableNow; true when it cannot say). */
  sinkDurable (): boolean { return this.sink.durableNow?.() ?? true }

  /** Events handed to the sink whose append has not resolved yet, over all transports. */
  get pendingEvents (): number { return this.pending }

  /**
   * What those events hold in memory, pendingEventCost() each: the parsed frame, the EventRecord
   * and the store's encoded copy. The memory budget bounds this (memory-budget.ts).
   */
  get pendingBytes (): number { return this.pendingByteCount }

  /**
   * Resolves once pendingEvents is at most `below` and pendingBytes at most `belowBytes` (at once
   * if they are). Lets a transport that paused on a global bound resume without polling.
   */
  async pendingAtMost (below: number, belowBytes = Infinity): Promise<void> {
    if (this.pending <= below && this.pendingByteCount <= belowBytes) return
    await new Promise<void>(resolve => this.lowWaiters.push({ below, belowBytes, wake: resolve }))
  }

  /** Processes one transport read's frames; see the module comment. Never rejects. */
  submit (transport: string, frames: readonly FrameResult[]): Promise<SubmitResult> {
    const now = this.now()
    const t = this.stats.transport(transport)
    const records: EventRecord[] = []
    let bytes = 0
    for (const f of frames) {
      this.stats.frames++
      t.frames++
      t.bytes += f.bytes
      if (!f.ok) {
        this.reject(transport, f.reason, f.deviceId, f.detail)
        continue
      }
      const deviceId = f.kind === 'event' ? f.event.deviceId : f.hello.deviceId
      const device = this.admit(transport, deviceId, f.authenticated, now)
      if (device === undefined) continue
      const c = device.counters
      c.frames++
      c.bytes += f.bytes
      c.lastSeenMs = now
      if (f.kind === 'hello') {
        this.stats.hellos++
        c.hellos++
        this.log.info('hello', () => ({ transport, hello: f.hello }), 'device hello')
        continue
      }
      const e = f.event
      if (c.lastSeq !== undefined && e.seq > c.lastSeq + 1) c.seqGaps += e.seq - c.lastSeq - 1
      c.lastSeq = e.seq
      if (!device.bucket.take(now, f.bytes)) {
        this.reject(transport, 'rate_limited', deviceId, 'over its events/s or bytes/s budget')
        continue
      }
      c.events++
      bytes += pendingEventCost(f.bytes)
      records.push(this.toRecord(e, applyRules(device.rules, e.stream, e.priority), now))
    }
    if (records.length === 0) return Promise.resolve(NOTHING)
    this.stats.events += records.length
    return this.append(transport, records, bytes)
  }

  /** A transport dropped input before parsing it (e.g. UDP while the sink is overloaded). */
  countDrop (transport: string, reason: TransportDropReason, count = 1): void {
    bump(this.stats.transport(transport).dropped, reason, count)
    this.log.warn(`drop:${transport}:${reason}`, () => ({ transport, reason }), 'input dropped by the transport')
  }

  /** A socket, server or stream error: counted and logged (throttled per transport). */
  countError (transport: string, err: unknown, context: string): void {
    this.stats.transport(transport).errors++
    this.log.warn(`error:${transport}`, () => ({ transport, err, context }), `${transport} ${context} error`)
  }

  /**
   * A source could not read its devices (broker unreachable, device timed out): counted by
   * reason. Logging is the source's, once per change of state, so it is not done here.
   */
  countFailure (transport: string, reason: SourceFailure): void { bump(this.stats.transport(transport).failures, reason) }

  countConnection (transport: string): void { this.stats.transport(transport).connections++ }
  countAcks (transport: string, count: number): void { this.stats.transport(transport).acks += count }
  countAckTimeout (transport: string): void {
    this.stats.transport(transport).ackTimeouts++
    this.log.warn(`ack-timeout:${transport}`, () => ({ transport }), 'peer did not read acks in time')
  }

  counters (): IngestCounterSnapshot {
    const devices: Array<[string, DeviceCounters]> = []
    for (const [id, d] of this.devices.entries()) devices.push([id, d.counters])
    return this.stats.snapshot(devices, this.devices.evicted)
  }

  /** The device's state when it may send; undefined (and the frame counted as rejected) otherwise. */
  private admit (transport: string, deviceId: string, authenticated: boolean, now: number): DeviceState | undefined {
    let device = this.devices.get(deviceId)
    if (device === undefined) {
      const policy = this.policies.lookup(deviceId)
      if (policy === undefined) {
        this.reject(transport, 'unknown_device', deviceId, 'not in ingest.devices')
        return undefined
      }
      if (policy.key !== undefined && !authenticated) {
        this.reject(transport, 'bad_auth', deviceId, 'device has a key; frame has no valid tag')
        return undefined
      }
      device = {
        policy,
        counters: newDeviceCounters(now),
        bucket: new TokenBucket(policy.rateLimit, this.options.maxFrameSize, now),
        rules: this.rules.forDevice(deviceId)
      }
      this.devices.set(deviceId, device)
      return device
    }
    if (device.policy.key !== undefined && !authenticated) {
      this.reject(transport, 'bad_auth', deviceId, 'device has a key; frame has no valid tag')
      return undefined
    }
    return device
  }

  private reject (transport: string, reason: RejectReason, deviceId: string | undefined, detail: string): void {
    bump(this.stats.rejected, reason)
    bump(this.stats.transport(transport).rejected, reason)
    // Only devices already in the table: a rejected frame's id may be forged or noise.
    if (deviceId !== undefined) {
      const device = this.devices.get(deviceId)
      if (device !== undefined) bump(device.counters.rejected, reason)
    }
    this.log.warn(`reject:${reason}`, () => ({ transport, reason, deviceId, detail }), 'frame rejected')
  }

  private toRecord (e: DeviceEvent, { priority, ttlMs }: RuleOutcome, now: number): EventRecord {
    const r: EventRecord = { deviceId: e.deviceId, deviceSeq: e.seq, gatewayTimeMs: now, priority, stream: e.stream }
    if (ttlMs !== undefined) r.expiresAtMs = now + ttlMs
    if (e.deviceTimeMs !== undefined) {
      r.deviceTimeMs = e.deviceTimeMs
      if (Math.abs(e.deviceTimeMs - now) > this.options.maxClockSkewMs) {
        r.clockSkewed = true
        this.stats.clockSkewed++
      }
    }
    if (e.uptimeMs !== undefined) r.deviceUptimeMs = e.uptimeMs
    // parseFrame guarantees nothing in a result refers to the transport's buffer (raw values are
    // copies), so the value is taken as is.
    if (e.value !== undefined) r.value = e.value
    if (e.tags !== undefined) r.tags = e.tags
    return r
  }

  private async append (transport: string, records: EventRecord[], bytes: number): Promise<SubmitResult> {
    this.pending += records.length
    this.pendingByteCount += bytes
    try {
      return await this.store(transport, records, true)
    } finally {
      this.pending -= records.length
      this.pendingByteCount -= bytes
      if (this.lowWaiters.length > 0) this.wakeWaiters()
    }
  }

  private wakeWaiters (): void {
    const still: typeof this.lowWaiters = []
    for (const w of this.lowWaiters) {
      if (this.pending <= w.below && this.pendingByteCount <= w.belowBytes) w.wake()
      else still.push(w)
    }
    this.lowWaiters = still
  }

  private async store (transport: string, records: EventRecord[], retryOneByOne: boolean): Promise<SubmitResult> {
    this.stats.store.appends++
    let result
    try {
      result = await this.sink.append(records)
    } catch (err) {
      // The store validates more than the codecs do (its maxEventSize may be below
      // maxFrameSize): one bad event must not cost its batch-mates, so retry them one by one.
      const eventError = isEdgefwdError(err, 'EDGEFWD_ERR_EVENT_TOO_LARGE') || isEdgefwdError(err, 'EDGEFWD_ERR_EVENT_INVALID')
      if (eventError && retryOneByOne && records.length > 1) {
        const parts = await Promise.all(records.map(async r => await this.store(transport, [r], false)))
        return { accepted: parts.reduce((n, p) => n + p.accepted, 0), acks: mergeAcks(parts), settled: parts.every(p => p.settled) }
      }
      this.stats.store.failed += records.length
      this.log.error(`store:${transport}`, () => ({ transport, err, events: records.length }), 'store append failed; events not stored')
      return FAILED
    }
    for (const r of result.rejected) bump(this.stats.store.refused, r.reason)
    if (!result.durable) {
      this.stats.store.notDurable += result.accepted
      return { accepted: result.accepted, acks: [], settled: false }
    }
    this.stats.store.durable += result.accepted
    const refused = result.rejected.length === 0 ? undefined : new Set(result.rejected.map(r => r.index))
    return { accepted: result.accepted, acks: highestSeqs(records, refused), settled: true }
  }
}

function highestSeqs (records: readonly EventRecord[], refused: ReadonlySet<number> | undefined): DeviceAck[] {
  const best = new Map<string, number>()
  for (let i = 0; i < records.length; i++) {
    if (refused?.has(i) === true) continue
    const r = records[i] as EventRecord
    const seq = best.get(r.deviceId)
    if (seq === undefined || r.deviceSeq > seq) best.set(r.deviceId, r.deviceSeq)
  }
  return Array.from(best, ([deviceId, seq]) => ({ deviceId, seq }))
}

function mergeAcks (parts: readonly SubmitResult[]): DeviceAck[] {
  const best = new Map<string, number>()
  for (const p of parts) {
    for (const a of p.acks) {
      const seq = best.get(a.deviceId)
      if (seq === undefined || a.seq > seq) best.set(a.deviceId, a.seq)
    }
  }
  return Array.from(best, ([deviceId, seq]) => ({ deviceId, seq }))
}
