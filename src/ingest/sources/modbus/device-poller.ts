/**
 * Polls one Modbus device: its planned reads (plan.ts) through the connection, then one event
 * per stream, `{ kind: 'numbers' }`, into the pipeline like any device's (source-event.ts).
 *
 * - Timing (poll-schedule.ts): fixed rate while healthy, a running poll makes the tick that falls
 *   due meanwhile skipped; backoff while failing; a device failing for `connect` is polled again
 *   as soon as its connection opens.
 * - A poll is all or nothing: the first read that fails ends it, nothing of it is submitted, and
 *   it is counted once (`countFailure`: `timeout`, `exception` or `connect`; an answer that fails
 *   a check counts as `timeout`, as no valid answer came in time). A read that spans unmapped
 *   addresses and gets exception 2 switches the device to gapless reads and is retried at once.
 * - Logged once per change of state: ok → failing (reason, exception code and name, the read),
 *   a failing device's reason changing, failing → ok ("recovered after N failed polls").
 * - A value that is not finite (a float32 NaN or ±Infinity from the device) is left out of its
 *   event (JSON has no NaN, and a NaN is no reading); logged when a register starts doing so. A
 *   stream left with no value makes no event.
 * - A poll runs until its submit resolved, so a device has at most one submit in flight; while
 *   the pipeline is over its global bound a poll is not made (counted as dropped `overloaded`).
 */
import type { Clock, ClockTimer } from '../../../clock.js'
import type { Logger } from '../../../observe/log.js'
import type { FrameResult } from '../../frame.js'
import { pipelineOverBound, type TransportContext } from '../../transports/transport.js'
import { readingResult, type SeqAssigner } from '../source-event.js'
import { exceptionName, type ReadFailure, type ReadOutcome } from './client.js'
import { registerValue, resolveRegisters, type ModbusDeviceConfig } from './decode.js'
import type { ModbusReader } from './link.js'
import { DEFAULT_PLAN, GAPLESS_PLAN, planReads, type PlannedRead } from './plan.js'
import { failureDelay, nextTick } from './poll-schedule.js'

export interface PollerDeps {
  ctx: TransportContext
  reader: ModbusReader
  seqs: SeqAssigner
  /** Lines carry the connection; the poller adds device and unitId. */
  logger: Logger
  clock: Clock
  random: () => number
}

type Schedule =
  | { kind: 'new' }
  | { kind: 'waiting', timer: ClockTimer, at: number }
  | { kind: 'polling', done: Promise<void> }
  | { kind: 'stopped' }

type Health =
  | { kind: 'ok' }
  | { kind: 'failing', failure: ReadFailure, exceptionCode: number | undefined, failedPolls: number, since: number }

export interface DevicePollStatus {
  deviceId: string
  unitId: number
  polls: number
  failedPolls: number
  skippedPolls: number
  health: 'ok' | ReadFailure
}

export class DevicePoller {
  private schedule: Schedule = { kind: 'new' }
  private health: Health = { kind: 'ok' }
  private plan: PlannedRead[]
  private gapless = false
  /** Start of the current fixed-rate run, and the tick the current or next poll belongs to. */
  private anchor = 0
  private tick = 0
  private polls = 0
  private failedPolls = 0
  private skippedPolls = 0
  private warnedSkip = false
  /** stream + NUL + name of the registers whose last value was not finite. */
  private readonly nonFinite = new Set<string>()

  constructor (private readonly device: ModbusDeviceConfig, private readonly deps: PollerDeps) {
    this.plan = planReads(resolveRegisters(device), DEFAULT_PLAN)
  }

  /** Polls now, then on schedule. */
  start (): void {
    if (this.schedule.kind !== 'new') return
    this.anchor = this.tick = this.deps.clock.now()
    this.run()
  }

  /** No poll after this; resolves once the poll in flight (its submit included) is done. */
  async stop (): Promise<void> {
    const s = this.schedule
    this.schedule = { kind: 'stopped' }
    if (s.kind === 'waiting') this.deps.clock.clearTimer(s.timer)
    if (s.kind === 'polling') await s.done
  }

  /** The connection (re)opened: a device waiting out a `connect` failure is polled at once. */
  connectionOpen (): void {
    const s = this.schedule
    if (s.kind !== 'waiting' || this.health.kind !== 'failing' || this.health.failure !== 'connect') return
    this.deps.clock.clearTimer(s.timer)
    this.waitUntil(this.deps.clock.now())
  }

  status (): DevicePollStatus {
    return {
      deviceId: this.device.id,
      unitId: this.device.unitId,
      polls: this.polls,
      failedPolls: this.failedPolls,
      skippedPolls: this.skippedPolls,
      health: this.health.kind === 'ok' ? 'ok' : this.health.failure
    }
  }

  private get log (): { device: string, unitId: number } { return { device: this.device.id, unitId: this.device.unitId } }

  private isStopped (): boolean { return this.schedule.kind === 'stopped' }

  private waitUntil (at: number): void {
    const timer = this.deps.clock.setTimer(() => { this.run() }, Math.max(0, at - this.deps.clock.now()))
    this.schedule = { kind: 'waiting', timer, at }
  }

  private run (): void {
    if (this.isStopped()) return
    const startedAt = this.deps.clock.now()
    // Nothing may escape a timer: an unexpected error is logged, and polling goes on.
    const unexpected = (err: unknown): false => {
      this.deps.logger.error({ ...this.log, err }, 'modbus poll failed unexpectedly')
      return false
    }
    const done = this.poll(startedAt)
      .catch(unexpected)
      .then(ok => { this.scheduleNext(ok) })
      .catch((err: unknown) => { unexpected(err) })
    if (!this.isStopped()) this.schedule = { kind: 'polling', done }
  }

  private scheduleNext (ok: boolean): void {
    if (this.isStopped()) return
    const now = this.deps.clock.now()
    if (this.health.kind === 'failing' && !ok) {
      this.waitUntil(now + failureDelay(this.device.interval, this.health.failedPolls, this.deps.random))
      return
    }
    const interval = this.device.interval
    let at = nextTick(this.anchor, interval, Math.max(now, this.tick))
    if (at - now > interval) {
      // The clock went back: start a new run rather than wait for the old anchor.
      this.anchor = now
      at = now + interval
    }
    const missed = Math.round((at - this.tick) / interval) - 1
    if (missed > 0) {
      this.skippedPolls += missed
      if (!this.warnedSkip) {
        this.warnedSkip = true
        this.deps.logger.warn({ ...this.log, interval, missed }, 'modbus poll took longer than its interval; polls are skipped')
      }
    }
    this.tick = at
    this.waitUntil(at)
  }

  /** True unless the poll failed. */
  private async poll (startedAt: number): Promise<boolean> {
    const { ctx } = this.deps
    if (this.overloaded()) {
      ctx.pipeline.countDrop('modbus', 'overloaded')
      return true
    }
    this.polls++
    const values: number[][] = []
    let bytes = 0
    for (let i = 0; i < this.plan.length; i++) {
      const read = this.plan[i] as PlannedRead
      const outcome = await this.deps.reader.read({ unitId: this.device.unitId, table: read.table, address: read.address, count: read.count })
      if (this.isStopped()) return true
      if (!outcome.ok) {
        if (outcome.failure === 'exception' && outcome.exceptionCode === 2 && read.gaps && !this.gapless) {
          this.regapless(read)
          values.length = 0
          bytes = 0
          i = -1
          continue
        }
        this.failed(outcome, read)
        return false
      }
      values.push(outcome.values)
      bytes += outcome.bytes
    }
    const results = this.readings(values, bytes)
    this.succeeded(startedAt)
    if (results.length > 0) await ctx.pipeline.submit('modbus', results)
    return true
  }

  private overloaded (): boolean { return pipelineOverBound(this.deps.ctx) }

  private regapless (read: PlannedRead): void {
    this.gapless = true
    this.plan = planReads(resolveRegisters(this.device), GAPLESS_PLAN)
    this.deps.logger.info({ ...this.log, table: read.table, address: read.address, count: read.count },
      'modbus device refused a read spanning unmapped addresses (exception 2); reading its registers without gaps')
  }

  private failed (outcome: Extract<ReadOutcome, { ok: false }>, read: PlannedRead): void {
    this.failedPolls++
    this.deps.ctx.pipeline.countFailure('modbus', outcome.failure === 'bad_response' ? 'timeout' : outcome.failure)
    const h = this.health
    const code = outcome.exceptionCode
    if (h.kind === 'ok' || h.failure !== outcome.failure || h.exceptionCode !== code) {
      this.deps.logger.warn({
        ...this.log,
        reason: outcome.failure,
        ...(code === undefined ? {} : { exceptionCode: code, exceptionName: exceptionName(code) }),
        table: read.table,
        address: read.address,
        count: read.count,
        detail: outcome.detail,
        ...(h.kind === 'failing' ? { previousReason: h.failure, failedPolls: h.failedPolls } : {})
      }, h.kind === 'ok' ? 'modbus device failing' : 'modbus device still failing, for another reason')
    }
    this.health = {
      kind: 'failing',
      failure: outcome.failure,
      exceptionCode: code,
      failedPolls: (h.kind === 'failing' ? h.failedPolls : 0) + 1,
      since: h.kind === 'failing' ? h.since : this.deps.clock.now()
    }
  }

  private succeeded (startedAt: number): void {
    const h = this.health
    if (h.kind !== 'failing') return
    this.health = { kind: 'ok' }
    this.anchor = this.tick = startedAt
    this.deps.logger.info({ ...this.log, failedPolls: h.failedPolls, failingForMs: this.deps.clock.now() - h.since },
      `modbus device recovered after ${h.failedPolls} failed polls`)
  }

  /** One reading per stream, the response bytes shared among them. */
  private readings (values: readonly number[][], bytes: number): FrameResult[] {
    const streams = new Map<string, Array<[string, number]>>()
    this.plan.forEach((read, i) => {
      const words = values[i] as number[]
      for (const { register, index } of read.fields) {
        const value = registerValue(register, words, index)
        const key = `${register.stream}\u0000${register.name}`
        if (!Number.isFinite(value)) {
          if (!this.nonFinite.has(key)) {
            this.nonFinite.add(key)
            this.deps.logger.warn({ ...this.log, register: register.name, stream: register.stream, value: String(value) },
              'modbus register value is not a finite number; left out of its event')
          }
          continue
        }
        this.nonFinite.delete(key)
        let entries = streams.get(register.stream)
        if (entries === undefined) streams.set(register.stream, entries = [])
        entries.push([register.name, value])
      }
    })
    const results: FrameResult[] = []
    const share = Math.floor(bytes / Math.max(1, streams.size))
    for (const [stream, entries] of streams) {
      const cost = results.length === 0 ? bytes - share * (streams.size - 1) : share
      // fromEntries defines own properties: a register named "__proto__" stays a number.
      const numbers = Object.fromEntries(entries)
      results.push(readingResult({ deviceId: this.device.id, stream, value: { kind: 'numbers', numbers }, bytes: cost }, this.deps.seqs))
    }
    return results
  }
}
