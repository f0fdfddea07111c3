/**
 * What `edgefwd simulate` does (command.ts has its options and help): loads the scenario, runs
 * the simulation with a progress line, prints the summary and writes the report.
 */
import { EdgefwdError, ExitCode, parseDuration, serveMcpStdio, type CommandContext, type TextSink } from '../src/index.js'
import type { simulateCommand } from './command.js'
import { renderSummary, writeReport } from './report.js'
import { loadScenario, scenarioNames, type Scenario } from './scenario.js'
import { fitScenario, runSimulation } from './simulation.js'

/** Plain progress lines (not a terminal): one every this many ms. */
const PLAIN_PROGRESS_MS = 5000

export async function runSimulateCommand ({ values }: Parameters<typeof simulateCommand.run>[0], { io }: CommandContext): Promise<number> {
  if (values.list === true) {
    for (const name of scenarioNames()) {
      const s = await loadScenario(name)
      io.stdout.write(`${name.padEnd(18)} ${Math.round(s.durationMs / 1000)} s  ${s.description}\n`)
    }
    return ExitCode.ok
  }
  // A ScenarioError is EDGEFWD_ERR_SCENARIO: one line per problem, exit 78 (program.ts).
  let scenario = await loadScenario(values.scenario ?? 'default')
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
  const agent = values.mcp === true ? mcpAgent(io.stderr) : undefined
  // With --mcp, standard output is the agent's MCP channel: everything else goes to standard error.
  const out = agent === undefined ? io.stdout : io.stderr
  const result = await runSimulation({
    scenario, ...(seed === undefined ? {} : { seed }), ...(values.metrics === undefined ? {} : { metricsListen: values.metrics }), onProgress: progress.update,
    ...(agent === undefined ? {} : { agent })
  })
  progress.done()
  if (values.json === true) out.write(`${JSON.stringify({ ...result, samples: undefined })}\n`)
  else out.write(renderSummary(result))
  if (values.report !== undefined) {
    const { html } = await writeReport(values.report, result)
    out.write(`report: ${html}\n`)
  }
  return result.verdict.ok ? ExitCode.ok : ExitCode.failure
}

/**
 * `--mcp`: once the simulated forwarder runs, serve MCP on stdio for its agent socket; the
 * simulation keeps the forwarder up after its drain until the agent disconnects (stdin ends).
 */
function mcpAgent (log: TextSink): { onSocket: (socket: string) => void, onScenarioEnd: () => void, hold: Promise<void> } {
  let release: () => void = () => {}
  const hold = new Promise<void>(resolve => { release = resolve })
  let gone = false
  void hold.then(() => { gone = true })
  return {
    hold,
    onScenarioEnd: () => {
      if (!gone) log.write('mcp: the scenario is over and drained; the simulated gateway stays up until the agent disconnects (closes stdin)\n')
    },
    onSocket: socket => {
      log.write(`mcp: serving the simulated gateway (agent socket ${socket}) on stdin/stdout; after the scenario it stays up until the agent disconnects\n`)
      serveMcpStdio({ socket, version: 'simulation', logTo: log }).catch((err: unknown) => {
        log.write(`mcp: stopped: ${err instanceof Error ? err.message : String(err)}\n`)
      }).finally(release)
    },
  }
}

function positiveInteger (name: string, text: string, min = 1): number {
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < min) throw new EdgefwdError('EDGEFWD_ERR_USAGE', `simulate: ${name} must be an integer of at least ${min}, got ${JSON.stringify(text)}`)
  return n
}

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
