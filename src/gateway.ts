/**
 * startGateway(): the one root that runs a gateway from a configuration. `edgefwd run`, the
 * simulation's forwarder process (simulate/forwarder-process.ts) and programs that embed edgefwd
 * (the public API, src/index.ts) all start a gateway through it, so all three get the same parts:
 *
 * - the Supervisor (control/): it starts the forwarder and, when control.publicKeys is set, takes
 *   signed remote configuration updates and restarts the forwarder for them;
 * - the metrics and their endpoint: /metrics, /healthz and /readyz on observe.metrics.listen
 *   when observe.metrics.enabled (the default; turn it off to serve metrics() your own way);
 * - the agent control socket (mcp.socket) that `edgefwd mcp` talks to (src/agent);
 * - the logger, at log.level, unless one is given.
 *
 * What is left to the caller is the process: signals, systemd notifications, exit codes and the
 * memory budget's heap limits (cli/commands/run.ts).
 */
import type { Agent, AgentHost } from './agent/index.js'
import type { Config, ConfigBuilder } from './config/index.js'
import { Supervisor } from './control/supervisor.js'
import type { ForwarderStats } from './forwarder.js'
import type { TransportIo } from './ingest/transports/index.js'
import { ForwarderMetrics } from './observe/forwarder-metrics.js'
import { startObserveServer, type HealthReport, type ObserveServer } from './observe/http-server.js'
import { childLogger, createLogger, type Logger } from './observe/log.js'
import { MetricsRegistry } from './observe/metrics.js'
import { packageVersion } from './version.js'

export interface GatewayDeps {
  /** Where the gateway logs; default: a logger at `log.level` writing JSON lines to `logTo`. */
  logger?: Logger
  /** Where the default logger writes its JSON lines; default standard output. Ignored with `logger`. */
  logTo?: { write (line: string): void }
  /** The environment its configuration secrets and TLS passphrases are read from; default process.env. */
  env?: Readonly<Record<string, string | undefined>>
  /** Standard input for `ingest.stdin` (and where its acks go). */
  io?: TransportIo
  /** What the heartbeat, edgefwd_build_info and the endpoint's Server header say; default the package version. */
  version?: string
  /** Called if the gateway stopped on its own because no forwarder could run after a failed restart. */
  onFatal?: (err: unknown) => void
}

/** The running forwarder's figures: store, uplink and ingest counters (what the heartbeat is made of). */
export type GatewayStats = ForwarderStats

export interface Gateway {
  /** What ingest listens on, e.g. `udp 127.0.0.1:5684`. */
  readonly listening: readonly string[]
  /** host:port of the metrics and health endpoint, or undefined when observe.metrics.enabled is false. */
  readonly endpoint: string | undefined
  /** The agent control socket `edgefwd mcp --socket` connects to, or undefined when mcp.socket is off or it could not start. */
  readonly agentSocket: string | undefined
  /** The checks of `/healthz`. */
  health (): HealthReport
  /** The checks of `/readyz`: healthy and online (or offline for less than readyOfflineGrace). */
  readiness (): HealthReport
  /** The metrics in the Prometheus text format, as `/metrics` serves them. */
  metrics (): Promise<string>
  /** The running forwarder's figures; undefined while a remote configuration restarts it. */
  stats (): GatewayStats | undefined
  /** Reads the TLS files again (what SIGHUP does to `edgefwd run`); the connection stays up. */
  reloadTls (): void
  /** Stops gracefully: listeners closed, batches in flight given uplink.stopTimeout for their PUBACK, the store closed. */
  stop (): Promise<void>
  /** Stops at once: what is in flight goes back to the store, unacknowledged. */
  stopNow (): Promise<void>
}

/**
 * @param config the configuration (loadConfig()), or a builder (configBuilder()) that is called
 * again for each remote configuration update
 * @throws ConfigError, what the forwarder's start throws (store, TLS material), a listen error of
 * the endpoint; whatever had started is stopped first
 */
export async function startGateway (config: Config | ConfigBuilder, deps: GatewayDeps = {}): Promise<Gateway> {
  const build: ConfigBuilder = typeof config === 'function' ? config : () => config
  const local = typeof config === 'function' ? config() : config
  const logger = deps.logger ?? createLogger({ level: local.log.level, redact: [...local.log.redact], ...(deps.logTo === undefined ? {} : { destination: deps.logTo }) })
  const version = deps.version ?? packageVersion()
  const metrics = new ForwarderMetrics(new MetricsRegistry(undefined, { logger: childLogger(logger, 'metrics') }), version)
  let supervisor: Supervisor | undefined
  // The endpoint and the forwarder start side by side: node:http's first use (~20 ms of main
  // thread) then overlaps the store's and the TLS files' I/O. Either failing fails the start.
  const [started, serving] = await Promise.allSettled([
    Supervisor.start({
      config: local, build, logger, env: deps.env ?? process.env, version, metrics,
      ...(deps.io === undefined ? {} : { io: deps.io }),
      onFatal: err => {
        logger.fatal({ err }, 'no forwarder can run after a failed restart: the gateway stopped')
        deps.onFatal?.(err)
      }
    }),
    local.observe.metrics.enabled ? serveEndpoint(local, metrics, () => supervisor, logger, version) : undefined
  ])
  if (started.status === 'fulfilled') supervisor = started.value
  const endpoint = serving.status === 'fulfilled' ? serving.value : undefined
  if (started.status === 'rejected' || serving.status === 'rejected') {
    await supervisor?.stopNow().catch(() => {})
    await endpoint?.close()
    metrics.close()
    throw started.status === 'rejected' ? started.reason : (serving as PromiseRejectedResult).reason
  }
  const running = started.value
  let agent: Agent | undefined
  try {
    agent = await startAgentFor(local, { registry: metrics.registry, version, forwarder: () => running.current, readiness: () => running.readiness() }, childLogger(logger, 'agent'))
  } catch (err) {
    await running.stopNow().catch(() => {})
    await endpoint?.close()
    metrics.close()
    throw err
  }
  let stopping: Promise<void> | undefined
  const shutdown = (stop: () => Promise<void>): Promise<void> => {
    stopping ??= stop().finally(async () => {
      await agent?.close()
      await endpoint?.close()
      metrics.close()
    })
    return stopping
  }
  return {
    get listening () { return running.current?.listening ?? [] },
    endpoint: endpoint?.address,
    agentSocket: agent?.socket,
    health: () => running.health(),
    readiness: () => running.readiness(),
    metrics: async () => await metrics.registry.render(),
    stats: () => running.current?.stats(),
    reloadTls: () => { running.current?.reloadTls() },
    stop: async () => { await shutdown(async () => { await running.stop() }) },
    // A second, immediate stop may cut short a graceful one already under way.
    stopNow: async () => {
      const now = running.stopNow()
      await Promise.all([now, shutdown(async () => { await now })])
    },
  }
}

/** What /healthz and /readyz say while the forwarder is still starting. */
const STARTING: HealthReport = { ok: false, checks: { forwarder: { ok: false, detail: 'starting' } } }

async function serveEndpoint (config: Config, metrics: ForwarderMetrics, supervisor: () => Supervisor | undefined,
  logger: Logger, version: string): Promise<ObserveServer> {
  const listen = config.observe.metrics.listen
  const at = listen.lastIndexOf(':')
  const started = await startObserveServer({
    // "127.0.0.1:9464" or "[::1]:9464" (validated by the schema)
    host: listen.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(listen.slice(at + 1)),
    registry: metrics.registry, logger: childLogger(logger, 'metrics'), version,
    health: () => supervisor()?.health() ?? STARTING, ready: () => supervisor()?.readiness() ?? STARTING
  })
  logger.info({ address: started.address }, `metrics on http://${started.address}/metrics (health: /healthz, /readyz)`)
  return started
}

/**
 * The agent socket: a configured mcp.socket that cannot be made fails the start (a clear error
 * for a setting someone chose); the default one only logs why, and the gateway runs without
 * it: forwarding must not depend on a diagnostic channel nobody asked for by name.
 */
async function startAgentFor (config: Config, host: AgentHost, logger: Logger): Promise<Agent | undefined> {
  // Loaded only when it runs: with mcp.socket off a gateway carries none of it.
  if (config.mcp.socket === 'off') return undefined
  try {
    const { startAgent } = await import('./agent/index.js')
    return await startAgent(config, host, logger)
  } catch (err) {
    if (config.mcp.socket !== undefined) throw err
    logger.warn({ err }, `the agent control socket did not start, so edgefwd mcp cannot reach this gateway: ${(err as Error).message}`)
    return undefined
  }
}
