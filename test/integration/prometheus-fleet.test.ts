/**
 * A simulated fleet watched by a real Prometheus, as docs/operations.md "Watch a simulated fleet"
 * tells an operator to: two `edgefwd simulate --metrics` runs (the built CLI) scraped as sim-a
 * (long-outage: the uplink down most of the run, the buffer full and evicting) and sim-b
 * (babbling-device: always online, one device rate-limited), with deploy/prometheus/
 * simulated-fleet.yml and the shipped rules. Checks what promtool alone cannot:
 * - every rule evaluates without error against real series;
 * - the alerts go pending for the gateway in trouble and not for the healthy one (their `for`
 *   durations are left as shipped, so they stay pending), and EdgefwdGatewayDown once the
 *   gateways are gone;
 * - every query of the Grafana dashboard (its variables substituted as Grafana does) parses and
 *   returns data, and its gateway variable lists both gateways;
 * - what Prometheus scraped agrees with what each simulation reports.
 *
 * The copy of the rules evaluates every second instead of every minute, and scrapes are every
 * 2 s, so the run takes the scenarios' 30 s plus start-up and drain.
 */
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'
import { assertBuilt, distRoot } from '../helpers/built.js'
import { freePort } from '../helpers/mosquitto.js'
import { startPrometheus, type Prometheus, type Sample } from '../helpers/prometheus.js'
import { waitFor } from '../helpers/wait.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const FLEET_CONFIG = join(root, 'deploy/prometheus/simulated-fleet.yml')
const RULES = join(root, 'deploy/prometheus/edgefwd-rules.yml')
const DASHBOARD = join(root, 'deploy/grafana/edgefwd.json')
const SCENARIO_DURATION = '30s'
/** Bound on a simulation's whole run: 30 s timeline, start-up, drain. */
const SIMULATION_BOUND_MS = 150_000
/**
 * Scrapes every 2 s, each allowed 2 s: one slow scrape on a busy CI machine must not read as a
 * gateway down. Grafana's $__rate_interval is at least 4 scrapes; 20 s leaves room for a miss.
 */
const SCRAPE_INTERVAL = '2s'
const RATE_INTERVAL = '20s'

interface SimulationSummary {
  verdict: { ok: boolean }
  priorities: Array<{ delivered: number, evicted: number, droppedAtIngest: Record<string, number> }>
}

interface Simulation {
  instance: string
  port: number
  done: Promise<{ code: number | null, stdout: string, stderr: string }>
  exited: () => boolean
}

function startSimulation (t: Test, instance: string, scenario: string, port: number): Simulation {
  const child = spawn(process.execPath, [join(distRoot, 'bin/edgefwd.js'), 'simulate', '--scenario', scenario, '--duration', SCENARIO_DURATION,
    '--metrics', `127.0.0.1:${port}`, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let exited = false
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const done = new Promise<{ code: number | null, stdout: string, stderr: string }>(resolve => {
    child.once('exit', code => { exited = true; resolve({ code, stdout, stderr }) })
  })
  t.teardown(async () => {
    if (exited) return
    child.kill('SIGKILL')
    await done
  })
  return { instance, port, done, exited: () => exited }
}

/** The first value `probe` gives (a failed probe counts as none), polled every 250 ms. */
async function until<T> (what: string, boundMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  let value: T | undefined
  await waitFor(what, async () => (value = await probe().catch(() => undefined)) !== undefined, boundMs, 250)
  return value as T
}

/** Every Grafana target's expression in the dashboard, with its panel's title. */
function dashboardQueries (): Array<{ panel: string, expr: string }> {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ title?: string, targets?: Array<{ expr?: string }> }> }
  return dashboard.panels.flatMap(p => (p.targets ?? []).filter(q => typeof q.expr === 'string').map(q => ({ panel: p.title ?? '', expr: q.expr as string })))
}

/** Grafana's substitution of the dashboard's variables: the gateway variable's "All", and the rate interval. */
function grafanaExpr (expr: string): string {
  return expr.replaceAll('$instance', '.*').replaceAll('${instance}', '.*').replaceAll('$__rate_interval', RATE_INTERVAL)
}

function fleetConfig (dir: string, ports: { a: number, b: number }): string {
  const config = parseYaml(readFileSync(FLEET_CONFIG, 'utf8')) as {
    global: Record<string, string>
    rule_files: string[]
    scrape_configs: Array<{ job_name: string, static_configs: Array<{ targets: string[], labels: { instance: string } }> }>
  }
  const job = config.scrape_configs.find(c => c.job_name === 'edgefwd')
  if (job === undefined) throw new Error(`${FLEET_CONFIG}: no job edgefwd`)
  const byInstance = new Map(job.static_configs.map(s => [s.labels.instance, s]))
  const a = byInstance.get('sim-a')
  const b = byInstance.get('sim-b')
  if (a === undefined || b === undefined || config.rule_files[0] !== 'edgefwd-rules.yml') throw new Error(`${FLEET_CONFIG}: expected targets sim-a and sim-b and the rules file`)
  a.targets = [`127.0.0.1:${ports.a}`]
  b.targets = [`127.0.0.1:${ports.b}`]
  config.global.scrape_interval = SCRAPE_INTERVAL
  config.global.scrape_timeout = SCRAPE_INTERVAL
  config.global.evaluation_interval = '1s'
  const rules = readFileSync(RULES, 'utf8')
  const fast = rules.replace(/^(\s+interval:) 1m$/gm, '$1 1s')
  if ((fast.match(/interval: 1s/g) ?? []).length !== (rules.match(/^\s+interval:/gm) ?? []).length) throw new Error('could not shorten every rule group interval')
  writeFileSync(join(dir, 'edgefwd-rules.yml'), fast)
  config.rule_files = [join(dir, 'edgefwd-rules.yml')]
  return stringifyYaml(config)
}

async function scraped (prometheus: Prometheus, expr: string): Promise<number> {
  return (await prometheus.query(expr)).reduce((n, s) => n + s.value, 0)
}

t.test('a real Prometheus watching a simulated fleet: rules, alerts, dashboard, values', async t => {
  assertBuilt()
  const dir = t.testdir()
  const ports = { a: await freePort(), b: await freePort() }
  const simA = startSimulation(t, 'sim-a', 'long-outage', ports.a)
  const simB = startSimulation(t, 'sim-b', 'babbling-device', ports.b)
  const sims = [simA, simB]
  // Prometheus starts once both endpoints answer, so its first scrapes find them up.
  for (const sim of sims) {
    const state = await until(`${sim.instance}'s /healthz`, 30_000, async () =>
      sim.exited() ? 'exited' : (await fetch(`http://127.0.0.1:${sim.port}/healthz`, { signal: AbortSignal.timeout(1000) })).ok ? 'up' : undefined)
    if (state === 'exited') throw new Error(`${sim.instance} exited early: ${(await sim.done).stderr}`)
  }
  const prometheus = await startPrometheus({ dir, config: fleetConfig(dir, ports) })
  t.teardown(() => prometheus.stop())

  await until('both targets up', 20_000, async () => {
    const up = await prometheus.query('up{job="edgefwd"} == 1')
    return up.length === 2 ? true : undefined
  })
  const instances = await prometheus.api<string[]>(`/api/v1/label/instance/values?match[]=${encodeURIComponent('edgefwd_build_info{job="edgefwd"}')}`)
  t.same(instances.sort(), ['sim-a', 'sim-b'], 'the dashboard\'s gateway variable (label_values of edgefwd_build_info) lists both gateways')

  // While the simulations run: record every alert state seen, and query the dashboard once
  // both gateways have been scraped for longer than the rate interval.
  const seen = new Set<string>()
  const upSince = Date.now()
  let dashboard: Array<{ panel: string, expr: string, samples: number, error?: string }> | undefined
  let upWhileRunning: Sample[] = []
  const deadline = Date.now() + SIMULATION_BOUND_MS
  while (!sims.every(s => s.exited())) {
    if (Date.now() > deadline) throw new Error(`the simulations did not end within ${SIMULATION_BOUND_MS} ms`)
    for (const alert of await prometheus.alerts()) seen.add(`${alert.labels.alertname}/${alert.labels.instance}/${alert.state}`)
    if (dashboard === undefined && Date.now() - upSince > 20_000 && !sims.some(s => s.exited())) {
      upWhileRunning = await prometheus.query('min_over_time(up{job="edgefwd"}[15s])')
      dashboard = []
      for (const { panel, expr } of dashboardQueries()) {
        try {
          dashboard.push({ panel, expr, samples: (await prometheus.query(grafanaExpr(expr))).length })
        } catch (err) {
          dashboard.push({ panel, expr, samples: 0, error: (err as Error).message })
        }
      }
    }
    await sleep(500) // sampling pace while the fleet runs
  }

  const [a, b] = await Promise.all(sims.map(async s => await s.done))
  if (a === undefined || b === undefined) throw new Error('unreachable')
  const summaryA = JSON.parse(a.stdout) as SimulationSummary
  const summaryB = JSON.parse(b.stdout) as SimulationSummary
  t.comment(`simulations: sim-a exit ${a.code} verdict ${summaryA.verdict.ok}, sim-b exit ${b.code} verdict ${summaryB.verdict.ok}`)

  t.test('every rule evaluates without error against the fleet\'s series', async t => {
    const rules = await prometheus.rules()
    t.ok(rules.length >= 28, `all rules loaded (${rules.length})`)
    t.same(rules.filter(r => r.health !== 'ok').map(r => `${r.name}: ${r.health} ${r.lastError ?? ''}`), [], 'health ok for every rule')
  })

  t.test('alerts: pending for the gateway in trouble only', async t => {
    t.comment(`alert states seen: ${[...seen].sort().join(', ')}`)
    t.same(upWhileRunning.map(s => `${s.metric.instance ?? ''} ${s.value}`).sort(), ['sim-a 1', 'sim-b 1'], 'while both ran, no scrape of either failed in 15 s')
    t.ok(seen.has('EdgefwdUplinkNotOnline/sim-a/pending'), 'sim-a\'s outage: uplink not online')
    t.ok(seen.has('EdgefwdBufferFilling/sim-a/pending'), 'sim-a\'s buffer above 80%')
    t.ok(seen.has('EdgefwdBufferFull/sim-a/pending'), 'sim-a\'s buffer above 95% while it evicts')
    // (EdgefwdGatewayDown is left out: sim-b ends before sim-a, and is then down indeed.)
    for (const name of ['EdgefwdUplinkNotOnline', 'EdgefwdBufferFilling', 'EdgefwdBufferFull']) {
      t.notOk([...seen].some(s => s.startsWith(`${name}/sim-b/`)), `no ${name} for the healthy sim-b`)
    }
    for (const name of ['EdgefwdCriticalEventsEvicted', 'EdgefwdHighEventsEvicted', 'EdgefwdConfigRolledBack', 'EdgefwdAuthRefused']) {
      t.notOk([...seen].some(s => s.startsWith(`${name}/`)), `no ${name} while the fleet runs`)
    }
    // DESIGN §4: once sim-a's store holds only events of higher priority than an incoming low
    // one, the incoming event is dropped as rejected_full (counted and reported upstream): the
    // warning fires exactly when Prometheus scraped such a drop.
    const rejectedFull = await scraped(prometheus, 'max_over_time(edgefwd_events_dropped_total{job="edgefwd", instance="sim-a", reason="rejected_full"}[5m])')
    const firing = seen.has('EdgefwdEventsDroppedStoreFull/sim-a/firing') ||
      (await prometheus.alerts()).some(x => x.labels.alertname === 'EdgefwdEventsDroppedStoreFull' && x.labels.instance === 'sim-a' && x.state === 'firing')
    t.equal(firing, rejectedFull > 0, `EdgefwdEventsDroppedStoreFull for sim-a iff rejected_full drops were scraped (${rejectedFull})`)
    t.notOk([...seen].some(s => s.startsWith('EdgefwdEventsDroppedStoreFull/sim-b/')), 'no EdgefwdEventsDroppedStoreFull for sim-b')
  })

  t.test('every dashboard query parses and returns data while the fleet runs', async t => {
    if (dashboard === undefined) return t.fail('the simulations ended before the dashboard was queried')
    t.ok(dashboard.length >= 60, `all dashboard queries run (${dashboard.length})`)
    t.same(dashboard.filter(q => q.error !== undefined).map(q => `${q.panel}: ${q.error ?? ''}`), [], 'no query error')
    t.same(dashboard.filter(q => q.samples === 0).map(q => `${q.panel}: ${q.expr}`), [], 'every query has data')
  })

  t.test('what Prometheus scraped agrees with each simulation\'s report', async t => {
    const total = (s: SimulationSummary, key: 'delivered' | 'evicted'): number => s.priorities.reduce((n, p) => n + p[key], 0)
    // The sink's "evicted" column is every drop the gateway reported upstream: evicted_for_space and rejected_full.
    const evicted = await scraped(prometheus, 'max_over_time(edgefwd_events_evicted_total{job="edgefwd", instance="sim-a"}[5m])')
    const dropped = await scraped(prometheus, 'max_over_time(edgefwd_events_dropped_total{job="edgefwd", instance="sim-a"}[5m])')
    t.ok(evicted > 0 && evicted <= dropped, `sim-a evictions scraped (${evicted}) are among its drops (${dropped})`)
    // Not every drop: an event refused as rejected_full was never acknowledged, so a TCP device
    // sends it again, and once stored and delivered it is no longer missing at the sink while the
    // gateway's counter keeps the refusal (seen: 3541 drops scraped, 3533 reported). An evicted
    // event had been acknowledged: it is never sent again, so each one must be in a report.
    t.ok(evicted <= total(summaryA, 'evicted'), `sim-a evictions scraped (${evicted}) ≤ drops the sink saw reported (${total(summaryA, 'evicted')})`)
    t.equal(await scraped(prometheus, 'max_over_time(edgefwd_events_evicted_total{job="edgefwd", priority=~"high|critical"}[5m])'), 0, 'no high or critical eviction scraped')
    const rateLimited = await scraped(prometheus, 'max_over_time(edgefwd_frames_rejected_total{job="edgefwd", instance="sim-b", reason="rate_limited"}[5m])')
    const reported = summaryB.priorities.reduce((n, p) => n + (p.droppedAtIngest.rate_limited ?? 0), 0)
    t.ok(rateLimited > 0 && rateLimited <= reported, `sim-b rate-limited frames scraped (${rateLimited}) ≤ events the simulation saw dropped for it (${reported})`)
    for (const [instance, summary] of [['sim-a', summaryA], ['sim-b', summaryB]] as const) {
      const acked = await scraped(prometheus, `max_over_time(edgefwd_events_acked_total{job="edgefwd", instance="${instance}"}[5m])`)
      t.ok(acked > 0 && acked <= total(summary, 'delivered'), `${instance}: events acked scraped (${acked}) ≤ delivered (${total(summary, 'delivered')})`)
    }
  })

  t.test('once the gateways are gone: up == 0 and EdgefwdGatewayDown pending for both', async t => {
    const down = await until('EdgefwdGatewayDown pending for both', 20_000, async () => {
      const alerts = (await prometheus.alerts()).filter(x => x.labels.alertname === 'EdgefwdGatewayDown')
      return alerts.length === 2 ? alerts : undefined
    })
    t.same(down.map(x => `${x.labels.instance}/${x.state}`).sort(), ['sim-a/pending', 'sim-b/pending'])
    t.same((await prometheus.query('up{job="edgefwd"}')).map(s => s.value), [0, 0])
  })
})
