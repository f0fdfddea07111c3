/**
 * The forwarder of a simulation, in its own process so the `power-cut` scenario can SIGKILL it:
 * the same configuration path and Forwarder as `edgefwd run` (loadConfig → Forwarder.start), plus
 * what the simulation watches, sent to the parent over the IPC channel:
 *   { type: 'ready', listening, metrics? }  once it listens and delivers; `metrics` is the
 *                                      address of its metrics endpoint when observe.metrics.enabled
 *   { type: 'stats', store, uplink, ingest }  every STATS_INTERVAL_MS
 *   { type: 'failed', message }        when the start failed (then it exits 1)
 * The parent sends { type: 'stop' } for a graceful stop (exit 0 when done); SIGTERM does the same.
 *
 * forwarder-child.ts starts it with `fork(forwarder-process-main, ['--config', FILE, '--log', FILE])`,
 * or, in the single executable, as the binary itself with a hidden first argument (see there).
 */
import { createWriteStream } from 'node:fs'
import { parseArgs } from 'node:util'
import { loadConfig } from '../src/config/index.js'
import { Forwarder } from '../src/forwarder.js'
import { ForwarderMetrics } from '../src/observe/forwarder-metrics.js'
import { startObserveServer, type ObserveServer } from '../src/observe/http-server.js'
import { createLogger } from '../src/observe/log.js'
import { MetricsRegistry } from '../src/observe/metrics.js'

const STATS_INTERVAL_MS = 200

export interface ForwarderStatsMessage {
  type: 'stats'
  store: ReturnType<Forwarder['store']['stats']>
  uplink: ReturnType<Forwarder['uplink']['stats']>
  ingest: ReturnType<Forwarder['pipeline']['counters']>
}
export type ForwarderMessage = { type: 'ready', listening: string[], metrics?: string } | ForwarderStatsMessage | { type: 'failed', message: string }

function send (message: ForwarderMessage): void {
  if (process.connected) process.send?.(message)
}

async function main (args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, log: { type: 'string' } } })
  if (values.config === undefined || values.log === undefined) throw new Error('usage: forwarder-process --config FILE --log FILE')
  const config = await loadConfig({ file: values.config, env: {}, overrides: [] })
  const out = createWriteStream(values.log, { flags: 'a' })
  const logger = createLogger({ level: config.log.level, destination: out })
  // The endpoint `edgefwd run` serves, when the simulation was asked for it (--metrics).
  const metrics = config.observe.metrics.enabled ? new ForwarderMetrics(new MetricsRegistry(), 'simulation') : undefined
  const forwarder = await Forwarder.start(config, { logger, env: {}, version: 'simulation', ...(metrics === undefined ? {} : { metrics }) })
  let endpoint: ObserveServer | undefined
  if (metrics !== undefined) {
    const listen = config.observe.metrics.listen
    const at = listen.lastIndexOf(':')
    endpoint = await startObserveServer({
      host: listen.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(listen.slice(at + 1)), registry: metrics.registry, logger, version: 'simulation',
      health: () => forwarder.health(), ready: () => forwarder.readiness(config.observe.metrics.readyOfflineGrace)
    })
  }
  send({ type: 'ready', listening: forwarder.listening, ...(endpoint === undefined ? {} : { metrics: endpoint.address }) })
  const timer = setInterval(() => {
    send({ type: 'stats', ...forwarder.stats() })
  }, STATS_INTERVAL_MS)
  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    clearInterval(timer)
    forwarder.stop().then(async () => {
      await endpoint?.close()
      metrics?.close()
      out.end(() => { process.exit(0) })
    }, (err: unknown) => {
      logger.error({ err }, 'stop failed')
      process.exit(1)
    })
  }
  process.on('message', (m: { type?: string }) => { if (m?.type === 'stop') stop() })
  process.on('SIGTERM', stop)
  // The parent gone (it crashed or was killed): do not linger as an orphan.
  process.on('disconnect', stop)
}

/** Runs the forwarder process with these arguments (`--config FILE --log FILE`) until told to stop. */
export function runForwarderProcess (args: string[]): void {
  main(args).catch((err: unknown) => {
    send({ type: 'failed', message: err instanceof Error ? err.message : String(err) })
    process.exitCode = 1
    setTimeout(() => { process.exit(1) }, 100).unref()
  })
}
