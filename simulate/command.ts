/**
 * `edgefwd simulate [--scenario NAME|FILE] [--duration D] [--devices N] [--seed N] [--report DIR] [--json]`:
 * the whole forwarder on one machine, through a scenario of network faults (simulation.ts).
 *
 * The command's description and options only: the CLI (bin/commands.ts) lists it, and `--help`
 * or `edgefwd run` load nothing more of the simulation. Running it loads command-run.ts.
 */
import type { CommandSpec } from '../src/index.js'

const options = {
  scenario: { type: 'string', short: 's', valueName: 'NAME|FILE', description: 'a scenario name from simulate/scenarios/ or a YAML/JSON file (default: default)' },
  duration: { type: 'string', valueName: 'DURATION', description: 'run the scenario stretched or shortened to this long, e.g. 20s (its timeline and store scale with it)' },
  devices: { type: 'string', valueName: 'N', description: 'about this many devices in all (each group scaled, at least one each)' },
  seed: { type: 'string', valueName: 'N', description: 'the random seed (default: the scenario\'s); the same seed sends the same events' },
  report: { type: 'string', valueName: 'DIR', description: 'write report.html and summary.json to DIR' },
  json: { type: 'boolean', description: 'print the summary as JSON on standard output instead of the table' },
  list: { type: 'boolean', description: 'list the scenarios and exit' },
  mcp: { type: 'boolean', description: 'serve MCP on stdin/stdout for an AI agent, attached to the simulated gateway (remediations allowed); it stays up after the scenario until the agent disconnects; the summary goes to standard error' },
  metrics: { type: 'string', valueName: 'ADDRESS:PORT', description: 'serve the simulated gateway\'s /metrics, /healthz and /readyz there (e.g. 127.0.0.1:9464), for Prometheus or edgefwd status' },
} as const

/** A command spec (bin/commands.ts makes it a command with defineCommand). */
export const simulateCommand: CommandSpec<typeof options> = {
  name: ['simulate'],
  summary: 'Show the forwarder surviving outages: devices, forwarder, chaos proxy, broker and verifying sink on loopback',
  description: [
    'Runs a scenario (simulate/scenarios/, default "default") on this machine with nothing to set up:',
    'an embedded MQTT broker demanding client certificates (made fresh), the forwarder itself (the',
    'same code and configuration path as `edgefwd run`, with a small store so eviction happens),',
    'simulated devices sending UDP and TCP frames through the real ingest path (and, where the',
    'scenario has them, Tasmota-like plugs publishing to a local MQTT broker and Modbus TCP meters',
    'the forwarder polls), a chaos proxy between forwarder and broker following the scenario\'s',
    'timeline (outages, blackholes, flapping, throttling, latency, broker restart, power cut), and',
    'the sink verifying every device sequence.',
    '',
    'Shows a progress line while it runs (on a terminal; otherwise a line every 5 s, on standard',
    'error), then a summary per priority: sent, delivered, evicted and reported, dropped at ingest,',
    'lost before the gateway, duplicates removed, unexplained. --report DIR also writes',
    'report.html (charts of link state, buffer fill, delivery and evictions) and summary.json.',
    '',
    'Exit 0 when no event is unexplained and every critical event was delivered, 1 otherwise.',
  ].join('\n'),
  options,
  positionals: [],
  async run (input, ctx) {
    const { runSimulateCommand } = await import('./command-run.js')
    return await runSimulateCommand(input, ctx)
  },
}
