/**
 * startGateway(): a running gateway from a configuration, for programs that embed edgefwd (the
 * public API, src/index.ts). It is what `edgefwd run` runs, without the process around it: no
 * signals, no systemd notifications, no exit codes, no metrics endpoint (metrics() renders the
 * same text; serve it as you like). Remote configuration runs when the configuration enables it,
 * as in `run`: the Supervisor (control/) starts the forwarder and restarts it on a signed update.
 */
import type { Config, ConfigBuilder } from './config/index.js'
import { Supervisor } from './control/supervisor.js'
import type { TransportIo } from './ingest/transports/index.js'
import { ForwarderMetrics } from './observe/forwarder-metrics.js'
import type { HealthReport } from './observe/http-server.js'
import { childLogger, createLogger, type Logger } from './observe/log.js'
import { MetricsRegistry } from './observe/metrics.js'
import { packageVersion } from './version.js'

export interface GatewayOptions {
  /**
   * The configuration (loadConfig()), or a builder (configBuilder()) that is called again for
   * each remote configuration update.
   */
  config: Config | ConfigBuilder
  /** Where the gateway logs; default: JSON lines on standard output at `log.level`. */
  logger?: Logger
  /** The environment its configuration secrets and TLS passphrases are read from; default process.env. */
  env?: Readonly<Record<string, string | undefined>>
  /** Standard input for `ingest.stdin` (and where its acks go). */
  io?: TransportIo
  /** Called if the gateway stopped on its own because no forwarder could run after a failed restart. */
  onFatal?: (err: unknown) => void
}

export interface Gateway {
  /** What ingest listens on, e.g. `udp 127.0.0.1:5684`. */
  readonly listening: readonly string[]
  /** The checks of `/healthz`. */
  health (): HealthReport
  /** The checks of `/readyz`: healthy and online (or offline for less than readyOfflineGrace). */
  readiness (): HealthReport
  /** The metrics in the Prometheus text format, as `/metrics` serves them. */
  metrics (): Promise<string>
  /** Stops gracefully: listeners closed, batches in flight given uplink.stopTimeout for their PUBACK, the store closed. */
  stop (): Promise<void>
}

export async function startGateway (options: GatewayOptions): Promise<Gateway> {
  const build: ConfigBuilder = typeof options.config === 'function' ? options.config : () => options.config as Config
  const first = build()
  const logger = options.logger ?? createLogger({ level: first.log.level, redact: [...first.log.redact] })
  const version = packageVersion()
  const metrics = new ForwarderMetrics(new MetricsRegistry(undefined, { logger: childLogger(logger, 'metrics') }), version)
  let supervisor: Supervisor
  try {
    supervisor = await Supervisor.start({
      build, logger, env: options.env ?? process.env, version, metrics,
      ...(options.io === undefined ? {} : { io: options.io }),
      onFatal: err => {
        logger.fatal({ err }, 'no forwarder can run after a failed restart: the gateway stopped')
        options.onFatal?.(err)
      }
    })
  } catch (err) {
    metrics.close()
    throw err
  }
  let stopping: Promise<void> | undefined
  return {
    get listening () { return supervisor.current?.listening ?? [] },
    health: () => supervisor.health(),
    readiness: () => supervisor.readiness(),
    metrics: async () => await metrics.registry.render(),
    stop: async () => {
      stopping ??= supervisor.stop().finally(() => { metrics.close() })
      await stopping
    }
  }
}
