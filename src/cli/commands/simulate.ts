/**
 * `edgefwd simulate [--scenario NAME|FILE] [--duration D] [--devices N] [--seed N] [--report DIR] [--json]`:
 * the whole forwarder on one machine, through a scenario of network faults (simulate/simulation.ts).
 */
import { EdgefwdError } from '../../errors.js'
import { defineCommand, type TextSink } from '../command.js'
import { ExitCode } from '../exit-codes.js'

/** Plain progress lines (not a terminal): one every this many ms. */
const PLAIN_PROGRESS_MS = 5000

export const simulateCommand = defineCommand({
  name: ['simulate'],
  summary: 'Show the forwarder surviving outages: devices, forwarder, chaos proxy, broker and verifying sink on loopback',
  description: [
    'Runs a scenario (simulate/scenarios/, default "default") on this machine with nothing to set up:',
    'an embedded MQTT broker demanding client certificates (made fresh), the forwarder itself (the',
    'same code and configuration path as `edgefwd run`, with a small store so eviction happens),',
    'simulated devices sending UDP and TCP frames through the real ingest path, a chaos proxy',
    'between forwarder and broker following the scenario\'s timeline (outages, blackholes,',
    'flapping, throttling, latency, broker restart, power cut), and the sink verifying every',
    'device sequence.',
    '',
    'Shows a progress line while it runs (on a terminal; otherwise a line every 5 s, on standard',
    'error), then a summary per priority: sent, delivered, evicted and reported, dropped at ingest,',
    'lost before the gateway, duplicates removed, unexplained. --report DIR also writes',
    'report.html (charts of link state, buffer fill, delivery and evictions) and summary.json.',
    '',
    'Exit 0 when no event is unexplained and every critical event was delivered, 1 otherwise.',
  ].join('\n'),
  options: {
    scenario: { type: 'string', short: 's', valueName: 'NAME|FILE', description: 'a scenario name from simulate/scenarios/ or a YAML/JSON file (default: default)' },
    duration: { type: 'string', valueName: 'DURATION', description: 'run the scenario stretched or shortened to this long, e.g. 20s (its timeline and store scale with it)' },
    devices: { type: 'string', valueName: 'N', description: 'about this many devices in all (each group scaled, at least one each)' },
    seed: { type: 'string', valueName: 'N', description: 'the random seed (default: the scenario\'s); the same seed sends the same events' },
    report: { type: 'string', valueName: 'DIR', description: 'write report.html and summary.json to DIR' },
    json: { type: 'boolean', description: 'print the summary as JSON on standard output instead of the table' },
    list: { type: 'boolean', description: 'list the scenarios and exit' },
    metrics: { type: 'string', valueName: 'ADDRESS:PORT', description: 'serve the simulated gateway\'s /metrics, /healthz and /readyz there (e.g. 127.0.0.1:9464), for Prometheus or edgefwd status' },
  },
  positionals: [],
  async run ({ values }, { io }) {
    const [scenarios, { runSimulation, fitScenario }, { renderSummary, writeReport }, { parseDuration }] = await Promise.all([
      import('../../../simulate/scenario.js'), import('../../../simulate/simulation.js'), import('../../../simulate/report.js'), import('../../config/index.js')
    ])
    if (values.list === true) {
      for (const name of scenarios.scenarioNames()) {
        const s = await scenarios.loadScenario(name)
        io.stdout.write(`${name.padEnd(18)} ${Math.round(s.durationMs / 1000)} s  ${s.description}\n`)
      }
      return ExitCode.ok
    }
    // A ScenarioError is EDGEFWD_ERR_SCENARIO: one line per problem, exit 78 (program.ts).
    let scenario = await scenarios.loadScenario(values.scenario ?? 'default')
    if (values.duration !== undefined) {
      const d = parseDuration(values.duration)
      if (!d.ok || d.value < 1000) throw new EdgefwdError('EDGEFWD_ERR_USAGE', `simulate: --duration ${d.ok ? 'must be at least 1s' : d.message}`)
      scenario = fitScenario(scenario, d.value)
    }
    if (values.devices !== undefined) scenario = withDevices(scenario, positiveInteger('--devices', values.devices))
    const seed = values.seed === undefined ? undefined : positiveInteger('--seed', values.seed, 0)

    const progress = progressWriter(io.stderr)
    io.stderr.write(`edgefwd simulate: scenario ${scenario.name} (${Math.round(scenario.durationMs / 1000)} s, seed ${seed ?? scenario.seed}): ${scenario.description}\n`)
    if (values.metrics !== undefined) {
      if (!/^(?:\[[0-9a-fA-F:.]+\]|[0-9.]+):\d{1,5}$/.test(values.metrics)) throw new EdgefwdError('EDGEFWD_ERR_USAGE', `simulate: --metrics must be ADDRESS:PORT, e.g. 127.0.0.1:9464, got ${JSON.stringify(values.metrics)}`)
      io.stderr.write(`metrics: http://${values.metrics}/metrics while it runs (edgefwd status --url http://${values.metrics})\n`)
    }
    const result = await runSimulation({ scenario, ...(seed === undefined ? {} : { seed }), ...(values.metrics === undefined ? {} : { metricsListen: values.metrics }), onProgress: progress.update })
    progress.done()
    if (values.json === true) io.stdout.write(`${JSON.stringify({ ...result, samples: undefined })}\n`)
    else io.stdout.write(renderSummary(result))
    if (values.report !== undefined) {
      const { html } = await writeReport(values.report, result)
      io.stdout.write(`report: ${html}\n`)
    }
    return result.verdict.ok ? ExitCode.ok : ExitCode.failure
  },
})

function positiveInteger (name: string, text: string, min = 1): number {
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < min) throw new EdgefwdError('EDGEFWD_ERR_USAGE', `simulate: ${name} must be an integer of at least ${min}, got ${JSON.stringify(text)}`)
  return n
}

type Scenario = Awaited<ReturnType<typeof import('../../../simulate/scenario.js').loadScenario>>

/** Scales every device group so the total is about `total` (each group keeps at least one device). */
function withDevices (s: Scenario, total: number): Scenario {
  const now = s.devices.reduce((n, g) => n + g.ids.length, 0)
  return {
    ...s,
    devices: s.devices.map(g => {
      if (!g.idPattern.includes('{n}')) return g
      const count = Math.max(1, Math.round(g.ids.length * total / now))
      return { ...g, ids: Array.from({ length: count }, (_, i) => g.idPattern.replace('{n}', String(i + 1))) }
    }),
  }
}

interface ProgressView {
  elapsedMs: number
  phase: string
  link: string
  uplink: string
  sent: number
  stored: readonly number[]
  storedBytes: number
  capacityBytes: number
  delivered: number
  evicted: number
}

function progressLine (p: ProgressView): string {
  const fill = p.capacityBytes === 0 ? 0 : Math.round(100 * p.storedBytes / p.capacityBytes)
  return `${(p.elapsedMs / 1000).toFixed(0).padStart(4)} s ${p.phase.padEnd(8)} link ${p.link.padEnd(14)} uplink ${p.uplink.padEnd(10)} ` +
    `sent ${p.sent} stored ${p.stored.reduce((n, x) => n + x, 0)} (${fill}% full; L/N/H/C ${p.stored.join('/')}) delivered ${p.delivered} evicted ${p.evicted}`
}

/** On a terminal one line rewritten in place; otherwise a plain line every PLAIN_PROGRESS_MS. */
function progressWriter (out: TextSink): { update: (p: ProgressView) => void, done: () => void } {
  const tty = (out as { isTTY?: boolean }).isTTY === true
  let last = -Infinity
  let drawn = false
  return {
    update (p) {
      if (tty) {
        out.write(`\r\x1b[K${progressLine(p)}`)
        drawn = true
      } else if (p.elapsedMs - last >= PLAIN_PROGRESS_MS) {
        last = p.elapsedMs
        out.write(`${progressLine(p)}\n`)
      }
    },
    done () { if (drawn) out.write('\n') },
  }
}
