/**
 * `npm run bench:fleet`: a fleet of gateways on a 3-node NATS cluster and N sinks sharing one
 * JetStream consumer, through a sink SIGKILL, a node stopped for 20 s and a whole-cluster
 * restart (bench/lib/fleet-run.ts). Progress goes to standard error; the result is one JSON line
 * on standard output. `lost` and `unexplained` must be 0.
 *
 * Settings (environment): BENCH_GATEWAYS (1000), BENCH_SINKS (3), BENCH_EVENTS (100 per gateway
 * at the start), BENCH_EVENTS_STEP (25 per gateway before each fault and at the end),
 * BENCH_RAMP (50 gateways started per second), BENCH_NODE_STOP_S (20), BENCH_CLUSTER_RESTART
 * (1; 0 skips it), BENCH_ACK_WAIT (10s), BENCH_KEEP (1 keeps the run's directory).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runFleet } from './lib/fleet-run.js'

const env = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback)
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number >= 0`)
  return value
}

const dir = mkdtempSync(join(tmpdir(), 'edgefwd-fleet-'))
let rssPeak = 0
const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, process.memoryUsage.rss()) }, 250)
try {
  const result = await runFleet({
    dir,
    bin: fileURLToPath(new URL('../bin/edgefwd.js', import.meta.url)),
    gateways: env('BENCH_GATEWAYS', 1000),
    sinks: env('BENCH_SINKS', 3),
    eventsStart: env('BENCH_EVENTS', 100),
    eventsStep: env('BENCH_EVENTS_STEP', 25),
    rampPerSecond: env('BENCH_RAMP', 50),
    nodeStopMs: env('BENCH_NODE_STOP_S', 20) * 1000,
    clusterRestart: env('BENCH_CLUSTER_RESTART', 1) !== 0,
    ackWait: process.env.BENCH_ACK_WAIT ?? '10s',
    log: line => { process.stderr.write(`bench:fleet: ${line}\n`) },
  })
  process.stdout.write(`${JSON.stringify({ ...result, gateway_process_rss_peak_mb: Math.round(rssPeak / 1048576) })}\n`)
  process.exitCode = result.lost === 0 && result.unexplained === 0 && result.gave_up === 0 ? 0 : 1
} finally {
  clearInterval(sampler)
  if (process.env.BENCH_KEEP === '1') process.stderr.write(`bench:fleet: kept ${dir}\n`)
  else rmSync(dir, { recursive: true, force: true })
}
