/**
 * The gateway process around its forwarder: starts it on the right configuration (the local one,
 * or the last good remote update on top of it), applies remote updates live or by an in-process
 * restart of the forwarder (rollout.ts), and answers the health endpoints whichever forwarder
 * runs. Without `control.publicKeys` it is a thin wrapper: the forwarder on the local
 * configuration, nothing subscribed.
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

export interface SupervisorOptions {
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
}

/** The state directory: control.stateDir, else `control` next to the store. */
export function controlStateDir (config: Config): string {
  return config.control.stateDir ?? join(dirname(resolve(config.store.path)), 'control')
}

export class Supervisor {
  private forwarder: Forwarder | undefined
  private rollout: ConfigRollout | undefined
  private restarting = false

  private constructor (private readonly o: SupervisorOptions) {}

  /** @throws what Forwarder.start throws (store, TLS material), ConfigError, EDGEFWD_ERR_CONTROL_KEY/STATE. */
  static async start (o: SupervisorOptions): Promise<Supervisor> {
    const supervisor = new Supervisor(o)
    const local = o.config
    if (local.control.publicKeys.length === 0) {
      supervisor.forwarder = await supervisor.startForwarder(local)
      return supervisor
    }
    const logger = o.logger.child({ module: 'control' })
    const keys = await loadPublicKeys(local.control.publicKeys)
    const state = await ControlStateStore.open(controlStateDir(local), logger)
    const recovery = recoverOnStart(state.get())
    if (recovery.rolledBack !== undefined) await state.update(recovery.data)
    const { config, version } = ConfigRollout.startingConfig({ local, keys, state, build: o.build, logger })
    o.metrics.registry.set('edgefwd_config_version', version)
    supervisor.forwarder = await supervisor.startForwarder(config)
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
        publishConfirmed: async (topic, payload, options) => await (supervisor.forwarder?.publishConfirmed(topic, payload, options) ?? false),
      },
    })
    supervisor.rollout = rollout
    if (recovery.rolledBack !== undefined) rollout.recovered(recovery.rolledBack.version, recovery.rolledBack.reason)
    supervisor.subscribe()
    logger.info({ topics: supervisor.configTopics(), keys: keys.map(k => k.keyId), version },
      `remote configuration on: ${supervisor.configTopics().join(', ')}; running version ${version === 0 ? '0 (the local configuration)' : version}`)
    return supervisor
  }

  get config (): Config {
    const f = this.forwarder
    if (f === undefined) throw new Error('no forwarder is running')
    return f.currentConfig
  }

  get current (): Forwarder | undefined { return this.forwarder }

  health (): HealthReport {
    return this.forwarder?.health() ?? down(this.restarting ? 'restarting' : 'not running')
  }

  readiness (): HealthReport {
    const f = this.forwarder
    return f?.readiness(f.currentConfig.observe.metrics.readyOfflineGrace) ?? down(this.restarting ? 'restarting' : 'not running')
  }

  /** Resolves once every remote update received so far has been handled (its probation included). */
  async settled (): Promise<void> { await this.rollout?.idle() }

  async stop (): Promise<void> {
    this.rollout?.close()
    await this.forwarder?.stop()
  }

  async stopNow (): Promise<void> {
    this.rollout?.close()
    await this.forwarder?.stopNow()
  }

  private configTopics (): string[] {
    const config = this.config
    return [gatewayTopics(config).config, ...(config.control.fleetTopic === undefined ? [] : [config.control.fleetTopic])]
  }

  private subscribe (): void {
    const rollout = this.rollout
    if (rollout === undefined || this.forwarder === undefined) return
    this.forwarder.subscribe(this.configTopics(), (_topic, payload) => { rollout.receive(payload) })
  }

  private async startForwarder (config: Config): Promise<Forwarder> {
    return await Forwarder.start(config, { logger: this.o.logger, env: this.o.env, version: this.o.version, metrics: this.o.metrics, ...(this.o.io === undefined ? {} : { io: this.o.io }) })
  }

  /**
   * Live: the forwarder takes the new settings in place. Restart: the forwarder stops gracefully
   * (batches in flight get their PUBACKs or go back to the store) and a new one starts; when the
   * new one cannot start, the old configuration is started again and the error thrown (the
   * rollout reports it). When that fails too, nothing can run: onFatal.
   */
  private async apply (next: Config, restart: boolean): Promise<void> {
    const running = this.forwarder
    if (!restart && running !== undefined) { running.reconfigure(next); return }
    const previous = running?.currentConfig
    this.restarting = true
    try {
      this.forwarder = undefined
      await running?.stop()
      try {
        this.forwarder = await this.startForwarder(next)
      } catch (err) {
        if (previous === undefined) throw err
        try {
          this.forwarder = await this.startForwarder(previous)
        } catch (again) {
          this.o.onFatal(again)
        }
        throw err
      }
    } finally {
      this.restarting = false
      this.subscribe()
    }
  }
}

function down (detail: string): HealthReport {
  return { ok: false, checks: { forwarder: { ok: false, detail } } }
}
