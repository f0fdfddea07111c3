/**
 * One footprint run: one target (`node` or the single executable) at the memory budget or with
 * `process.memory: off`, as two forwarder processes, the drain in the first and idle, soak and
 * garbage in the second (bench/footprint-bench.ts's module comment says what each measures).
 */
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { stringify as toYaml } from 'yaml'
import { budgetEnvironment, memoryBudget } from '../src/config/memory-budget.js'
import { ForwarderChild, ForwarderDied, exitText, type ForwarderCommand } from './lib/forwarder-child.js'
import { RssSampler, type ResidentMemory } from './lib/proc-memory.js'
import { Delivered, drain, garbage, soak, type DrainResult, type GarbageResult, type SoakResult } from './footprint-phases.js'
import { envText } from './footprint-report.js'
import {
  BUDGET_MIB, EVENTS, EVENTS_TOPIC, EXTRA_NODE_OPTIONS, GARBAGE, GATEWAY, IDLE_S, MB, mb, progress, RATE, SOAK_S
} from './footprint-settings.js'

export interface Target extends ForwarderCommand { name: 'node' | 'sea' }

/** SIGTERM's grace before SIGKILL: a forwarder flushing a large store may take a while. */
const KILL_AFTER_MS = 20_000

export interface Setup {
  root: string
  template: string
  capacity: number
  brokerUrl: string
  tls: { ca: string, cert: string, key: string }
  sinkTls: object
}

export interface RunResult {
  label: string
  budgeted: boolean
  /** What the budget adds to the forwarder's environment (NODE_OPTIONS, MALLOC_ARENA_MAX); {} when off. */
  budgetEnv: Record<string, string>
  oom: boolean
  error?: string
  drain?: DrainResult
  rssIdle?: ResidentMemory
  soak?: SoakResult
  garbage?: GarbageResult
  peaks: Record<'drain' | 'idle' | 'soak' | 'garbage', ResidentMemory>
  /** Over every sample of both processes, start-up and SIGTERM included. */
  peak: ResidentMemory
  /** The forwarder logged that the budget's heap limit was not in force. */
  budgetNotApplied?: boolean
  stop?: string
}

function writeConfig (dir: string, setup: Setup, budgeted: boolean): string {
  const file = join(dir, 'edgefwd.yaml')
  writeFileSync(file, toYaml({
    gateway: { id: GATEWAY },
    process: { memory: budgeted ? `${BUDGET_MIB}MiB` : 'off' },
    store: { path: join(dir, 'store'), capacity: setup.capacity },
    log: { level: 'info' },
    observe: { metrics: { listen: '127.0.0.1:0' } },
    tls: setup.tls,
    uplink: { url: setup.brokerUrl },
    ingest: {
      udp: { address: '127.0.0.1', port: 0 },
      tcp: [{ address: '127.0.0.1', port: 0 }],
      rateLimit: { eventsPerSecond: 1_000_000, bytesPerSecond: '64MiB' }
    },
    // BENCH_MCP_SOCKET=off: the gateway without its agent side, to measure that side's cost.
    ...(process.env.BENCH_MCP_SOCKET === undefined ? {} : { mcp: { socket: process.env.BENCH_MCP_SOCKET } }),
  }))
  return file
}

/** The environment of a forwarder: the bench's, less anything that would change its config or start. */
function forwarderEnv (budgetEnv: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('EDGEFWD_') || ['NODE_OPTIONS', 'MALLOC_ARENA_MAX', 'NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'LISTEN_FDS', 'LISTEN_PID'].includes(k)) continue
    env[k] = v
  }
  return { ...env, ...budgetEnv }
}

/** The result of a run not made (BENCH_OFF=0): every figure null. */
export function skipped (target: Target): RunResult {
  const none = (): ResidentMemory => ({ rss: NaN, anon: NaN })
  return { label: `${target.name}, memory off (skipped)`, budgeted: false, budgetEnv: {}, oom: false, peaks: { drain: none(), idle: none(), soak: none(), garbage: none() }, peak: none() }
}

export async function runTarget (target: Target, budgeted: boolean, setup: Setup): Promise<RunResult> {
  const budgetEnv = budgeted ? budgetEnvironment(memoryBudget(BUDGET_MIB * MB)) : {}
  if (budgeted && EXTRA_NODE_OPTIONS !== '') budgetEnv.NODE_OPTIONS = `${budgetEnv.NODE_OPTIONS ?? ''} ${EXTRA_NODE_OPTIONS}`.trim()
  const label = `${target.name}, ${budgeted ? `budget ${BUDGET_MIB} MiB` : 'memory off'}`
  const env = forwarderEnv(budgetEnv)
  const none = (): ResidentMemory => ({ rss: NaN, anon: NaN })
  const result: RunResult = { label, budgeted, budgetEnv, oom: false, peaks: { drain: none(), idle: none(), soak: none(), garbage: none() }, peak: none() }
  const forwarders: ForwarderChild[] = []
  const samplers: RssSampler[] = []
  let sub: mqtt.MqttClient | undefined
  const dir = join(setup.root, `${target.name}-${budgeted ? 'budget' : 'off'}`)
  try {
    // (a) the drain, in a forwarder of its own.
    mkdirSync(dir)
    progress(`${label}: environment ${envText(budgetEnv)}; copying the ${EVENTS}-event store, then draining it`)
    cpSync(setup.template, join(dir, 'store'), { recursive: true })
    const config = writeConfig(dir, setup, budgeted)
    const a = new ForwarderChild(target, config, env, KILL_AFTER_MS)
    forwarders.push(a)
    const aSampler = new RssSampler(a.pid)
    samplers.push(aSampler)
    result.drain = await drain(a, aSampler)
    aSampler.stop()
    result.peaks.drain = aSampler.peak('drain')
    progress(`${label}: drained ${EVENTS} events in ${result.drain.seconds.toFixed(2)} s from the first connect = ${result.drain.eps.toFixed(0)} events/s; RSS peak ${mb(result.peaks.drain.rss).toFixed(1)} MB (anonymous ${mb(result.peaks.drain.anon).toFixed(1)}); exit ${result.drain.stop}`)
    rmSync(join(dir, 'store'), { recursive: true, force: true })
    rmSync(join(dir, 'batch-seq.json'), { force: true })

    // (b) idle and soak, (c) garbage: one more forwarder, on a fresh store, the subscriber first
    // so that every envelope it publishes is seen.
    const delivered = new Delivered()
    sub = await mqtt.connectAsync(setup.brokerUrl, { ...setup.sinkTls, clientId: `footprint-sink-${target.name}-${budgeted ? 'b' : 'o'}`, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000 })
    sub.on('message', (_topic, payload) => { delivered.take(payload) })
    await sub.subscribeAsync(EVENTS_TOPIC, { qos: 1 })
    const b = new ForwarderChild(target, config, env, KILL_AFTER_MS)
    forwarders.push(b)
    const bSampler = new RssSampler(b.pid)
    samplers.push(bSampler)
    bSampler.phase('start', 1000)
    await b.waitLine('metrics on http://', 60_000)
    await b.waitLine('running: listening on', 60_000)
    await b.waitLine('uplink online', 60_000)
    for (const f of forwarders) {
      const warning = f.seen.get('heap limit is not the budget')?.line.msg
      if (warning !== undefined) {
        result.budgetNotApplied = true
        progress(`${label}: WARNING, the forwarder says: ${warning}`)
      }
    }
    bSampler.phase('idle', 1000)
    await b.idle(IDLE_S * 1000)
    result.rssIdle = bSampler.sample()
    result.peaks.idle = bSampler.peak('idle')
    progress(`${label}: idle ${IDLE_S} s: RSS ${mb(result.rssIdle?.rss ?? NaN).toFixed(1)} MB (anonymous ${mb(result.rssIdle?.anon ?? NaN).toFixed(1)}); soak ${RATE} events/s for ${SOAK_S} s`)
    result.soak = await soak(b, bSampler, delivered)
    result.peaks.soak = bSampler.peak('soak')
    const s = result.soak
    progress(`${label}: soak: ${s.sent} sent, ${s.accepted} accepted, ${s.delivered} delivered, ${s.lost} lost${s.settled ? '' : ' (NOT SETTLED within 60 s)'}; ` +
      `RSS last minute ${s.rssMbLastMinute.toFixed(1)} MB, growth ${s.rssMbGrowthPerMin.toFixed(2)} MB/min, peak ${mb(result.peaks.soak.rss).toFixed(1)} MB`)
    await sub.endAsync(true).catch(() => {})
    sub = undefined
    progress(`${label}: ${GARBAGE} malformed frames`)
    result.garbage = await garbage(b, bSampler)
    result.peaks.garbage = bSampler.peak('garbage')
    const g = result.garbage
    progress(`${label}: garbage: sent in ${g.seconds.toFixed(1)} s, ${g.rejected} rejected, ${g.udpKernelDrops} dropped by the kernel (UDP), ${g.unaccounted} unaccounted; RSS peak ${mb(result.peaks.garbage.rss).toFixed(1)} MB`)
    result.stop = exitText(await b.stop())
    progress(`${label}: stopped with SIGTERM: exit ${result.stop}`)
  } catch (err) {
    if (!(err instanceof ForwarderDied)) {
      result.error = err instanceof Error ? err.message : String(err)
      progress(`${label}: FAILED: ${result.error}`)
    }
  } finally {
    await sub?.endAsync(true).catch(() => {})
    for (const s of samplers) s.stop()
    for (const f of forwarders) {
      await f.stop()
      if (f.oom) {
        result.oom = true
        progress(`${label}: the forwarder died: ${f.describe()}`)
      }
    }
    // Peaks of whatever phases ran, also when one failed part-way.
    const last = samplers[1]
    if (last !== undefined) for (const phase of ['idle', 'soak', 'garbage'] as const) result.peaks[phase] = last.peak(phase)
    const first = samplers[0]
    if (first !== undefined) result.peaks.drain = first.peak('drain')
    const all = samplers.flatMap(s => s.samples)
    if (all.length > 0) result.peak = { rss: Math.max(...all.map(x => x.rss)), anon: Math.max(...all.map(x => x.anon)) }
    rmSync(dir, { recursive: true, force: true })
  }
  return result
}
