/**
 * The forwarder of a simulation, in its own process so the `power-cut` scenario can SIGKILL it:
 * a gateway as `edgefwd run` starts one (configBuilder → startGateway: the Supervisor, so remote
 * configuration runs when control.publicKeys is set, and the metrics endpoint when
 * observe.metrics.enabled), plus what the simulation watches, sent to the parent over IPC:
 *   { type: 'ready', listening, metrics? }  once it listens and delivers; `metrics` is the
 *                                      address of its metrics endpoint when observe.metrics.enabled
 *   { type: 'stats', store, uplink, ingest }  every STATS_INTERVAL_MS (not while a remote
 *                                      configuration restarts the forwarder)
 *   { type: 'failed', message }        when the start failed (then it exits 1), or when no
 *                                      forwarder could run after a failed restart
 * The parent sends { type: 'stop' } for a graceful stop (exit 0 when done); SIGTERM does the same.
 *
 * forwarder-child.ts starts it with `fork(forwarder-process-main, ['--config', FILE, '--log', FILE])`,
 * or, in the single executable, as the binary itself with a hidden first argument (see there).
 */
import { createWriteStream } from 'node:fs'
import { parseArgs } from 'node:util'
import { configBuilder, startGateway, type GatewayStats } from '../src/index.js'

const STATS_INTERVAL_MS = 200

export type ForwarderStatsMessage = { type: 'stats' } & GatewayStats
export type ForwarderMessage = { type: 'ready', listening: string[], metrics?: string } | ForwarderStatsMessage | { type: 'failed', message: string }

function send (message: ForwarderMessage): void {
  if (process.connected) process.send?.(message)
}

async function main (args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, log: { type: 'string' } } })
  if (values.config === undefined || values.log === undefined) throw new Error('usage: forwarder-process --config FILE --log FILE')
  const build = await configBuilder({ file: values.config, env: {}, overrides: [] })
  const out = createWriteStream(values.log, { flags: 'a' })
  const gateway = await startGateway(build, {
    logTo: out, env: {}, version: 'simulation',
    onFatal: err => { fail(err) }
  })
  send({ type: 'ready', listening: [...gateway.listening], ...(gateway.endpoint === undefined ? {} : { metrics: gateway.endpoint }) })
  const timer = setInterval(() => {
    const stats = gateway.stats()
    if (stats !== undefined) send({ type: 'stats', ...stats })
  }, STATS_INTERVAL_MS)
  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    clearInterval(timer)
    gateway.stop().then(() => {
      out.end(() => { process.exit(0) })
    }, (err: unknown) => {
      fail(err)
    })
  }
  process.on('message', (m: { type?: string }) => { if (m?.type === 'stop') stop() })
  process.on('SIGTERM', stop)
  // The parent gone (it crashed or was killed): do not linger as an orphan.
  process.on('disconnect', stop)
}

/** Tells the parent why, and exits 1 soon after (the message gets a moment to go out). */
function fail (err: unknown): void {
  send({ type: 'failed', message: err instanceof Error ? err.message : String(err) })
  process.exitCode = 1
  setTimeout(() => { process.exit(1) }, 100).unref()
}

/** Runs the forwarder process with these arguments (`--config FILE --log FILE`) until told to stop. */
export function runForwarderProcess (args: string[]): void {
  main(args).catch(fail)
}
