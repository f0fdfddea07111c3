/**
 * The gateway process around its forwarder: starts it on the right configuration (the local one,
 * or the last good remote update on top of it), applies remote updates live or by an in-process
 * restart of the forwarder (rollout.ts), and answers the health endpoints whichever forwarder
 * runs. Without `control.publicKeys` it is a thin wrapper: the forwarder on the local
 * configuration, nothing subscribed.
 *
 * Its lifecycle is one value (`Lifecycle` below). stop() is final and memoised: nothing starts
 * after it (an update that arrives during or after it is not applied), a second call returns the
 * first's, and stopNow() during a stop only shortens it. A stop during a restart lets the restart
 * end where it stands (the forwarder it was stopping stops; one it had just started is stopped
 * again at once): no forwarder is left running, and each store is closed once.
 *
 * Dependency direction: cli → control → forwarder; the forwarder knows nothing of this.
 */
import { dirname, join, resolve } from 'node:path'
import type { Config, ConfigBuilder } from '../config/index.js'
import { Forwarder } from '../forwarder.js'
import type { TransportIo } from '../ingest/transports/index.js'
import type { HealthReport } from '../observe/http-server.js'
import type { ForwarderMetrics } from '../observe/forwarder-metrics.js'
import type { Logger } from '../observe/log.js'
import { gatewayTopics } from '../uplink/options.js'
import { ConfigRollout } from './rollout.js'
import { loadPublicKeys } from './signing.js'
import { ControlStateStore, recoverOnStart } from './state.js'

export interface SupervisorOptions<F extends SupervisedForwarder = Forwarder> {
  /** The local configuration, built once by the caller (build() gives the same). */
  config: Config
  /** Builds the configuration again with a remote update's overlay. */
  build: ConfigBuilder
  logger: Logger
  env: Readonly<Record<string, string | undefined>>
  version: string
  metrics: ForwarderMetrics
  /** Streams for the stdin transport (ingest.stdin); each forwarder it starts reads the same one. */
  io?: TransportIo
  /** Called when no forwarder could be started again after a failed restart: the process should exit non-zero. */
  onFatal: (err: unknown) => void
  /** Starts a forwarder on a configuration; Forwarder.start by default (tests: a stand-in). */
  startForwarder?: (config: Config) => Promise<F>
}

/** What the Supervisor uses of a forwarder. */
export type SupervisedForwarder = Pick<Forwarder, 'currentConfig' | 'health' | 'readiness' | 'reconfigure' | 'subscribe' | 'publishConfirmed' | 'stop' | 'stopNow'>

/**
 * running ⇄ restarting (a signed update that needs a restart); down: a failed restart left no
 * forwarder (onFatal was called; a rollback may still start one); stopping → stopped, from any
 * of them, final. `forwarder` in restarting and stopping: the one being stopped or just started,
 * if any (a stopNow() shortens its stop).
 */
type Lifecycle<F> =
  | { kind: 'running', forwarder: F }
  | { kind: 'restarting', forwarder: F | undefined, done: Promise<void> }
  | { kind: 'down' }
  | { kind: 'stopping', forwarder: F | undefined, fast: boolean, done: Promise<void> }
  | { kind: 'stopped' }

/** The state directory: control.stateDir, else `control` next to the store. */
export function controlStateDir (config: Config): string {
  return config.control.stateDir ?? join(dirname(resolve(config.store.path)), 'control')
}

export class Supervisor<F extends SupervisedForwarder = Forwarder> {
  private state: Lifecycle<F>
  /** Set once at start when remote configuration is on. */
  private rollout: ConfigRollout | undefined

  private constructor (private readonly o: SupervisorOptions<F>, private readonly startForwarder: (config: Config) => Promise<F>, first: F) {
    this.state = { kind: 'running', forwarder: first }
  }

  /** @throws what Forwarder.start throws (store, TLS material), ConfigError, EDGEFWD_ERR_CONTROL_KEY/STATE. */
  static async start (o: SupervisorOptions): Promise<Supervisor>
  static async start<F extends SupervisedForwarder> (o: SupervisorOptions<F> & { startForwarder: (config: Config) => Promise<F> }): Promise<Supervisor<F>>
  static async start<F extends SupervisedForwarder> (o: SupervisorOptions<F>): Promise<Supervisor<F>> {
    // Without startForwarder F is Forwarder (the first overload).
    const startForwarder = o.startForwarder ?? (async (config: Config) => await Forwarder.start(config, {
      logger: o.logger, env: o.env, version: o.version, metrics: o.metrics, ...(o.io === undefined ? {} : { io: o.io })
    }) as unknown as F)
    const local = o.config
    if (local.control.publicKeys.length === 0) return new Supervisor(o, startForwarder, await startForwarder(local))
    const logger = o.logger.child({ module: 'control' })
    const keys = await loadPublicKeys(local.control.publicKeys)
    const state = await ControlStateStore.open(controlStateDir(local), logger)
    const recovery = recoverOnStart(state.get())
    if (recovery.rolledBack !== undefined) await state.update(recovery.data)
    const { config, version } = ConfigRollout.startingConfig({ local, keys, state, build: o.build, logger })
    o.metrics.registry.set('edgefwd_config_version', version)
    const supervisor = new Supervisor(o, startForwarder, await startForwarder(config))
    const topics = gatewayTopics(config)
    const rollout = new ConfigRollout({
      keys,
      state,
      build: o.build,
      logger,
      registry: o.metrics.registry,
      ackTopic: topics.configAck,
      gatewayId: config.gateway.id,
      probationMs: config.control.probation,
      host: {
        current: () => supervisor.config,
        apply: async (next, restart) => { await supervisor.apply(next, restart) },
        publishConfirmed: async (topic, payload, options) => await (supervisor.current?.publishConfirmed(topic, payload, options) ?? false),
      },
    })
    supervisor.rollout = rollout
    if (recovery.rolledBack !== undefined) rollout.recovered(recovery.rolledBack.version, recovery.rolledBack.reason)
    if (supervisor.current !== undefined) supervisor.subscribe(supervisor.current)
    logger.info({ topics: supervisor.configTopics(), keys: keys.map(k => k.keyId), version },
      `remote configuration on: ${supervisor.configTopics().join(', ')}; running version ${version === 0 ? '0 (the local configuration)' : version}`)
    return supervisor
  }

  get config (): Config {
    const f = this.current
    if (f === undefined) throw new Error('no forwarder is running')
    return f.currentConfig
  }

  /** The forwarder running (or being stopped by stop()); none while restarting. */
  get current (): F | undefined {
    const s = this.state
    return s.kind === 'running' || s.kind === 'stopping' ? s.forwarder : undefined
  }

  health (): HealthReport {
    return this.current?.health() ?? down(this.downDetail())
  }

  readiness (): HealthReport {
    const f = this.current
    return f?.readiness(f.currentConfig.observe.metrics.readyOfflineGrace) ?? down(this.downDetail())
  }

  /** Resolves once every remote update received so far has been handled (its probation included). */
  async settled (): Promise<void> { await this.rollout?.idle() }

  /** Stops gracefully; final. A second call returns the stop in progress. */
  async stop (): Promise<void> { await this.halt(false) }

  /** Stops without waiting for PUBACKs; during a graceful stop, shortens it (never a second stop beside it). */
  async stopNow (): Promise<void> { await this.halt(true) }

  private downDetail (): string {
    const { kind } = this.state
    return kind === 'restarting' || kind === 'stopping' || kind === 'stopped' ? kind : 'not running'
  }

  private async halt (fast: boolean): Promise<void> {
    const s = this.state
    if (s.kind === 'stopped') return
    if (s.kind === 'stopping') {
      if (fast && !s.fast) {
        s.fast = true
        await Promise.all([s.forwarder?.stopNow(), s.done])
      }
      await s.done
      return
    }
    const stopping: Extract<Lifecycle<F>, { kind: 'stopping' }> = { kind: 'stopping', forwarder: s.kind === 'down' ? undefined : s.forwarder, fast, done: Promise.resolve() }
    this.state = stopping
    stopping.done = this.shutdown(s, stopping)
    await stopping.done
  }

  /**
   * The rollout lets go of the update in hand first (so nothing is applied after this); a restart
   * in progress ends by itself (see restart()); a running forwarder is stopped here.
   */
  private async shutdown (from: Exclude<Lifecycle<F>, { kind: 'stopping' | 'stopped' }>, stopping: { fast: boolean }): Promise<void> {
    try {
      const closing = this.rollout?.close()
      if (from.kind === 'restarting') {
        // Its failure, if any, is the restart's to report (the rollout logs it).
        if (stopping.fast) from.forwarder?.stopNow().catch(() => {})
        await from.done.catch(() => {})
      }
      if (from.kind === 'running') await (stopping.fast ? from.forwarder.stopNow() : from.forwarder.stop())
      await closing
    } finally {
      this.state = { kind: 'stopped' }
    }
  }

  private configTopics (): string[] {
    const config = this.config
    return [gatewayTopics(config).config, ...(config.control.fleetTopic === undefined ? [] : [config.control.fleetTopic])]
  }

  private subscribe (forwarder: F): void {
    const rollout = this.rollout
    if (rollout === undefined) return
    forwarder.subscribe(this.configTopics(), (_topic, payload) => { rollout.receive(payload) })
  }

  /**
   * Live: the forwarder takes the new settings in place. Restart: the forwarder stops gracefully
   * (batches in flight get their PUBACKs or go back to the store) and a new one starts; when the
   * new one cannot start, the old configuration is started again and the error thrown (the
   * rollout reports it). When that fails too, nothing can run: onFatal. Once stop() was called,
   * nothing is applied.
   */
  private async apply (next: Config, restart: boolean): Promise<void> {
    const s = this.state
    if (s.kind === 'stopping' || s.kind === 'stopped') return
    if (s.kind === 'restarting') throw new Error('a restart is already in progress')
    if (!restart && s.kind === 'running') { s.forwarder.reconfigure(next); return }
    const restarting: Extract<Lifecycle<F>, { kind: 'restarting' }> = { kind: 'restarting', forwarder: s.kind === 'running' ? s.forwarder : undefined, done: Promise.resolve() }
    this.state = restarting
    restarting.done = this.restart(restarting.forwarder, next)
    await restarting.done
  }

  /** Between its steps, a restart looks whether a stop came: it then starts nothing more. */
  private async restart (old: F | undefined, next: Config): Promise<void> {
    try {
      if (old !== undefined) {
        await old.stop()
        this.holding(undefined)
        if (this.stopRequested()) return
      }
      try {
        await this.launch(next)
      } catch (err) {
        const previous = old?.currentConfig
        if (previous === undefined || this.stopRequested()) throw err
        try {
          await this.launch(previous)
        } catch (again) {
          this.o.onFatal(again)
        }
        throw err
      }
    } finally {
      if (this.state.kind === 'restarting') this.state = { kind: 'down' }
    }
  }

  /** Starts a forwarder and makes it the running one; when a stop came meanwhile, stops it again at once instead. */
  private async launch (config: Config): Promise<void> {
    const started = await this.startForwarder(config)
    const s = this.state
    if (s.kind !== 'stopping') {
      this.state = { kind: 'running', forwarder: started }
      this.subscribe(started)
      return
    }
    s.forwarder = started
    try {
      await (s.fast ? started.stopNow() : started.stop())
    } finally {
      s.forwarder = undefined
    }
  }

  /** Read through methods: TypeScript would keep `state` narrowed across an await. */
  private stopRequested (): boolean { return this.state.kind === 'stopping' || this.state.kind === 'stopped' }

  private holding (forwarder: F | undefined): void {
    const s = this.state
    if (s.kind === 'restarting' || s.kind === 'stopping') s.forwarder = forwarder
  }
}

function down (detail: string): HealthReport {
  return { ok: false, checks: { forwarder: { ok: false, detail } } }
}
