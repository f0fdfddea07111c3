/**
 * Safe rollout of signed remote configuration updates on one gateway.
 *
 * An update (update.ts decides whether it may be applied) goes through:
 *   1. persisted as `pending` in the state file, with the highest version seen, before anything
 *      changes: a crash from here on comes back on `current`, the last good (state.ts);
 *   2. applied: live keys in place, or the forwarder restarted in-process when the update allows
 *      it (RolloutHost.apply);
 *   3. probation (control.probation): the gateway must be connected and have a publish
 *      acknowledged by the broker: its `probation` ack, a QoS 1 message, is that publish, so an
 *      idle gateway can pass too. A wrong broker address, a certificate the broker refuses, a
 *      blackholed port: none of them gets a PUBACK;
 *   4. passed: `current` := the update, `pending` cleared, ack `applied`. Failed (the deadline,
 *      or the new forwarder would not start): the previous configuration is applied again the
 *      same way, the version recorded as failed, ack `rolled_back`.
 * Every outcome is logged, counted (edgefwd_config_updates_total{result}) and acknowledged on
 * `<prefix>/<gateway>/config/ack` (retained JSON). Acks wait in a small outbox while offline.
 *
 * Updates are handled one at a time in arrival order. Retained messages come again on every
 * reconnect: the one carrying the highest version already processed is ignored quietly.
 *
 * close() is final: what is queued is dropped, an update in hand is given up where it stands
 * (a probation or an ack in flight stops waiting) and nothing is applied after it. One already
 * persisted as `pending` stays so: the next start comes back on the last good and reports it
 * rolled back (state.ts), as after a crash.
 */
import type { Config, ConfigBuilder } from '../config/index.js'
import type { Logger } from '../observe/log.js'
import type { MetricsRegistry } from '../observe/metrics.js'
import type { ConfigResult } from '../observe/catalog.js'
import { parseDocument, decideUpdate, type Decision } from './update.js'
import { verifyMessage, type OperatorKey } from './signing.js'
import type { ControlStateStore } from './state.js'
import { systemClock, type Clock } from '../clock.js'
import { every, sleepUnlessAborted, unlessAborted } from './clock.js'

/** What the rollout needs of the running gateway (the Supervisor). */
export interface RolloutHost {
  current: () => Config
  /** Applies a configuration: in place, or by restarting the forwarder when `restart`. Throws when a restart fails to start. */
  apply: (config: Config, restart: boolean) => Promise<void>
  /** QoS 1 publish on the current connection; true on its PUBACK. */
  publishConfirmed: (topic: string, payload: string, options: { retain: boolean, timeoutMs: number }) => Promise<boolean>
}

export interface RolloutOptions {
  keys: readonly OperatorKey[]
  state: ControlStateStore
  build: ConfigBuilder
  host: RolloutHost
  ackTopic: string
  gatewayId: string
  probationMs: number
  logger: Logger
  registry: MetricsRegistry
  clock?: Clock
}

export type AckStatus = 'probation' | 'applied' | 'rejected' | 'rolled_back'

export interface Ack {
  gateway: string
  version: number | null
  status: AckStatus
  reason?: ConfigResult
  detail?: string
  keys?: string[]
  time: string
}

const MAX_QUEUED = 8
const MAX_OUTBOX = 16
const RETRY_MS = 1000

/** What an open rollout holds. */
interface Work {
  readonly queue: Buffer[]
  /** Acks not yet confirmed by the broker, oldest first. */
  readonly outbox: Ack[]
  /** The outbox being sent, if it is. */
  flushing: Promise<void> | undefined
  readonly stopRetry: () => void
  /** Aborted by close(): whatever waits (a probation, a publish) stops waiting. */
  readonly abort: AbortController
}

/** The rollout's lifecycle: idle or handling updates (open), closing, closed (final). */
type Lifecycle =
  | { kind: 'idle', work: Work }
  | { kind: 'handling', work: Work, done: Promise<void> }
  | { kind: 'closing', done: Promise<void> }
  | { kind: 'closed' }

export class ConfigRollout {
  private state: Lifecycle
  private readonly clock: Clock

  constructor (private readonly o: RolloutOptions) {
    this.clock = o.clock ?? systemClock
    const stopRetry = every(this.clock, RETRY_MS, () => { void this.flush() })
    this.state = { kind: 'idle', work: { queue: [], outbox: [], flushing: undefined, stopRetry, abort: new AbortController() } }
  }

  /**
   * The configuration to start with: the local one with the last good update's overlay, when
   * there is one that still verifies and validates (a key removed from control.publicKeys, or a
   * local change that makes it invalid, falls back to the local configuration, logged).
   */
  static startingConfig (o: Pick<RolloutOptions, 'keys' | 'state' | 'build' | 'logger'> & { local: Config }): { config: Config, version: number } {
    const { local } = o
    const current = o.state.get().current
    if (current === undefined) return { config: local, version: 0 }
    const verified = verifyMessage(Buffer.from(current.message), o.keys)
    const parsed = verified.ok ? parseDocument(verified.document) : undefined
    if (parsed?.ok !== true) {
      o.logger.error({ version: current.version, detail: verified.ok ? parsed?.ok === false ? parsed.detail : '' : verified.detail },
        `the last good remote configuration (version ${current.version}) no longer verifies against control.publicKeys: running on the local configuration`)
      return { config: local, version: 0 }
    }
    try {
      return { config: o.build({ overlay: parsed.doc.config, source: `remote config v${current.version}` }), version: current.version }
    } catch (err) {
      o.logger.error({ err, version: current.version }, `the last good remote configuration (version ${current.version}) no longer validates with the local configuration: running on the local one`)
      return { config: local, version: 0 }
    }
  }

  /** Reports a rollback found at start (the process died during a probation). */
  recovered (version: number, reason: string): void {
    this.o.logger.error({ version, reason }, `remote configuration version ${version} rolled back: ${reason}`)
    this.count('rolled_back')
    this.acknowledge({ version, status: 'rolled_back', reason: 'rolled_back', detail: reason })
  }

  /** A message from a config topic; handled after those before it. Ignored once closed. */
  receive (payload: Buffer): void {
    const s = this.state
    if (s.kind !== 'idle' && s.kind !== 'handling') {
      this.o.logger.debug('remote configuration update ignored: the gateway is stopping')
      return
    }
    const { queue } = s.work
    if (queue.length >= MAX_QUEUED) {
      this.o.logger.warn({ queued: queue.length }, 'remote configuration updates arrive faster than they are handled: the oldest waiting one is dropped')
      queue.shift()
    }
    queue.push(Buffer.from(payload))
    if (s.kind === 'idle') {
      const { work } = s
      const done = this.drain(work).finally(() => { if (this.state.kind === 'handling') this.state = { kind: 'idle', work } })
      this.state = { kind: 'handling', work, done }
    }
  }

  /** Resolves when every received update has been handled (tests, stop). */
  async idle (): Promise<void> {
    for (let s = this.state; s.kind === 'handling' || s.kind === 'closing'; s = this.state) await s.done
  }

  /**
   * Final: drops what is queued, gives up the update in hand and resolves once it has let go
   * (the host's apply in progress, if any, has returned). A second call returns the first's.
   */
  async close (): Promise<void> {
    const s = this.state
    if (s.kind === 'closed') return
    if (s.kind === 'closing') { await s.done; return }
    const { work } = s
    work.stopRetry()
    work.queue.length = 0
    work.abort.abort()
    const done = (async () => {
      try {
        if (s.kind === 'handling') await s.done
        await work.flushing
      } finally {
        this.state = { kind: 'closed' }
      }
    })()
    this.state = { kind: 'closing', done }
    await done
  }

  /** The open rollout's work; undefined once close() was called. Read through a method: `state` changes across awaits. */
  private open (): Work | undefined {
    const s = this.state
    return s.kind === 'idle' || s.kind === 'handling' ? s.work : undefined
  }

  private async drain (work: Work): Promise<void> {
    for (let next = work.queue.shift(); next !== undefined && this.open() === work; next = work.queue.shift()) {
      try {
        await this.handle(next, work.abort.signal)
      } catch (err) {
        this.o.logger.error({ err }, 'a remote configuration update could not be handled')
      }
    }
  }

  private async handle (message: Buffer, closed: AbortSignal): Promise<void> {
    const { state, logger } = this.o
    const highest = state.get().highestVersion
    const decision = decideUpdate({
      message,
      keys: this.o.keys,
      highestVersion: highest,
      buildConfig: (overlay) => this.o.build({ overlay, source: 'remote config' }),
      current: this.o.host.current(),
    })
    if (decision.result === 'old_version' && decision.version === highest) {
      logger.debug({ version: decision.version }, 'remote configuration already processed (a retained message after a reconnect)')
      return
    }
    if (decision.result !== 'accept') { await this.reject(decision); return }

    const { version, config, needsRestart, live, restart } = decision
    const previous = this.o.host.current()
    if (closed.aborted) return
    await state.update(s => ({ ...s, highestVersion: version, pending: { version, message: message.toString('utf8'), ...(s.current === undefined ? {} : { previousVersion: s.current.version }), appliedAtMs: this.clock.now(), restart: needsRestart } }))
    logger.info({ version, live, restart, needsRestart }, `applying remote configuration version ${version}${needsRestart ? ' (restarting the forwarder)' : ''}; probation ${this.o.probationMs} ms`)
    let failure: string | undefined
    try {
      // Closed from here on: the update stays pending (see the top of this file).
      if (closed.aborted) return
      await this.o.host.apply(config, needsRestart)
      if (!await this.probation(version, [...live, ...restart], closed)) failure = `no publish was acknowledged by the broker within the probation of ${this.o.probationMs} ms`
    } catch (err) {
      failure = `the forwarder did not start with it: ${err instanceof Error ? err.message : String(err)}`
    }
    if (closed.aborted) {
      logger.warn({ version }, `remote configuration version ${version}: the gateway stopped before its probation ended; the next start comes back on the last good`)
      return
    }
    if (failure === undefined) {
      await state.update(s => { const { pending: _, ...rest } = s; return { ...rest, current: { version, message: message.toString('utf8') } } })
      this.o.registry.set('edgefwd_config_version', version)
      this.count('applied')
      logger.info({ version }, `remote configuration version ${version} applied: the gateway delivered within its probation`)
      this.acknowledge({ version, status: 'applied', keys: [...live, ...restart] })
      return
    }
    logger.error({ version, reason: failure }, `remote configuration version ${version} rolled back: ${failure}`)
    await this.o.host.apply(previous, needsRestart)
    await state.update(s => { const { pending: _, ...rest } = s; return { ...rest, lastFailed: { version, reason: failure, atMs: this.clock.now() } } })
    this.count('rolled_back')
    this.acknowledge({ version, status: 'rolled_back', reason: 'rolled_back', detail: failure })
  }

  /** True once a QoS 1 publish made after the apply is acknowledged, false at the deadline. */
  private async probation (version: number, keys: string[], closed: AbortSignal): Promise<boolean> {
    const { clock } = this
    const deadline = clock.now() + this.o.probationMs
    const payload = JSON.stringify(this.ack({ version, status: 'probation', keys }))
    for (let left = deadline - clock.now(); left > 0 && !closed.aborted; left = deadline - clock.now()) {
      if (await unlessAborted(this.o.host.publishConfirmed(this.o.ackTopic, payload, { retain: true, timeoutMs: Math.min(left, 5000) }), closed) === true) return true
      await sleepUnlessAborted(clock, Math.min(RETRY_MS, Math.max(0, deadline - clock.now())), closed)
    }
    return false
  }

  private async reject (decision: Exclude<Decision, { result: 'accept' }>): Promise<void> {
    const { result, detail } = decision
    const version = decision.version
    // A trusted update that was refused still counts as processed, so its retained copy is not
    // refused again (and acknowledged again) after every reconnect; a bad signature proves nothing.
    if (result !== 'bad_signature' && version !== undefined && version > this.o.state.get().highestVersion) {
      await this.o.state.update(s => ({ ...s, highestVersion: version }))
    }
    this.o.logger.warn({ version, reason: result, detail }, `remote configuration${version === undefined ? '' : ` version ${version}`} rejected (${result}): ${detail}`)
    this.count(result)
    this.acknowledge({ version, status: 'rejected', reason: result, detail, ...(decision.result === 'restart_required' ? { keys: decision.restartKeys } : {}) })
  }

  private count (result: ConfigResult): void {
    this.o.registry.inc('edgefwd_config_updates_total', { result })
  }

  private ack (a: Omit<Ack, 'gateway' | 'time' | 'version'> & { version: number | undefined }): Ack {
    return { gateway: this.o.gatewayId, ...a, version: a.version ?? null, time: new Date(this.clock.now()).toISOString() }
  }

  /** Queues an ack and tries to send it now; the outbox keeps the newest MAX_OUTBOX while offline. Dropped once closed. */
  private acknowledge (a: Omit<Ack, 'gateway' | 'time' | 'version'> & { version: number | undefined }): void {
    const outbox = this.open()?.outbox
    if (outbox === undefined) return
    outbox.push(this.ack(a))
    if (outbox.length > MAX_OUTBOX) outbox.shift()
    void this.flush()
  }

  /** Sends the outbox, oldest first, until it is empty or a publish is not confirmed; one at a time. */
  private async flush (): Promise<void> {
    const work = this.open()
    if (work === undefined || work.flushing !== undefined) return
    work.flushing = this.send(work).finally(() => { work.flushing = undefined })
    await work.flushing
  }

  private async send (work: Work): Promise<void> {
    const { outbox, abort } = work
    for (let next = outbox[0]; next !== undefined && !abort.signal.aborted; next = outbox[0]) {
      if (await unlessAborted(this.o.host.publishConfirmed(this.o.ackTopic, JSON.stringify(next), { retain: true, timeoutMs: 5000 }), abort.signal) !== true) return
      if (outbox[0] === next) outbox.shift()
    }
  }
}
