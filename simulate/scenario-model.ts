/**
 * The scenario model: what a checked scenario file becomes (scenario-parse.ts makes it), the
 * ScenarioError every check throws, and scaleScenario(), which stretches or shortens a scenario
 * and checks the result again.
 *
 * Normalised form: every time in ms, every size in bytes, device ids expanded (`{n}` -> 1..count),
 * priorities as [name, weight] pairs in low..critical order with zero weights dropped, link phases
 * and actions each sorted by start time (stable, so equal starts keep file order).
 */
import { EdgefwdError, formatDuration, type PriorityName } from '../src/index.js'
import type { DeviceSpec } from './device-events.js'
import { checkOverlaps, problemText, type Path, type Report } from './scenario-checks.js'

export type { PriorityName }
export const LINK_KINDS = ['outage', 'blackhole', 'throttle', 'latency', 'flapping'] as const
export const ACTION_KINDS = ['broker-restart', 'power-cut'] as const
export type LinkPhaseKind = typeof LINK_KINDS[number]

export interface LinkPhase {
  kind: LinkPhaseKind
  atMs: number
  forMs: number
  /** throttle only: cap per direction per connection. */
  bytesPerSecond?: number
  /** latency only: added delay; not scaled by scaleScenario. */
  latencyMs?: number
  /** flapping only: the link passes for upMs, then is out (as `outage`) for downMs, repeated. */
  upMs?: number
  downMs?: number
}

export interface ScenarioAction { kind: typeof ACTION_KINDS[number], atMs: number, downMs: number }

/** One group of the scenario's devices: a simulated device (DeviceSpec) for each of `ids`. */
export interface DeviceGroup extends Omit<DeviceSpec, 'id'> {
  idPattern: string
  ids: string[]
  /** The forwarder's ingest rate limit for these devices, events/s. */
  rateLimitPerSecond?: number
}

export interface Scenario {
  name: string
  description: string
  durationMs: number
  seed: number
  storeCapacityBytes: number
  uplink: { pubackTimeoutMs?: number }
  devices: DeviceGroup[]
  links: LinkPhase[]
  actions: ScenarioAction[]
  /** Where it came from (a file path, relative to the working directory when below it). */
  source: string
}

/**
 * Every message is `<source>:<line>: <field path>: <problem>` (the configuration's own format,
 * formatConfigIssue), the line when the file shows it. A configuration error like the gateway's:
 * EDGEFWD_ERR_SCENARIO, and `simulate` exits 78.
 */
export class ScenarioError extends EdgefwdError {
  readonly source: string
  /** Every problem found (the message holds them one per line). */
  readonly problems: readonly string[]
  constructor (source: string, problems: readonly string[], options?: { cause?: unknown }) {
    super('EDGEFWD_ERR_SCENARIO', problems.join('\n'), options?.cause === undefined ? {} : { cause: options.cause })
    this.name = 'ScenarioError'
    this.source = source
    this.problems = problems
  }
}

/**
 * The same scenario with every time multiplied by `factor` (to run it shortened in CI): the
 * duration, each start, each length, flapping up/down and action down. Start and end points are
 * rounded separately (whole ms, at least 1 ms for a non-zero length), so phases that were
 * back to back stay back to back and never come to overlap. Unchanged: rates, sizes, latency
 * (a delay, not a period) and uplink.pubackTimeout (a property of the forwarder, with a 100 ms
 * minimum; shortening it would make timeouts fire under CI load that the scenario never meant).
 * Throws ScenarioError when the factor is so small that the result would no longer validate.
 */
export function scaleScenario (s: Scenario, factor: number): Scenario {
  if (!Number.isFinite(factor) || factor <= 0) throw new RangeError(`scale factor must be a number above 0, got ${String(factor)}`)
  const at = (ms: number): number => Math.round(ms * factor)
  const len = (ms: number): number => ms === 0 ? 0 : Math.max(1, Math.round(ms * factor))
  const span = (atMs: number, forMs: number): [number, number] => {
    const start = at(atMs)
    return [start, forMs === 0 ? 0 : Math.max(1, at(atMs + forMs) - start)]
  }
  const links = s.links.map((p): LinkPhase => {
    const [atMs, forMs] = span(p.atMs, p.forMs)
    return {
      ...p,
      atMs,
      forMs,
      ...(p.upMs === undefined ? {} : { upMs: len(p.upMs) }),
      ...(p.downMs === undefined ? {} : { downMs: len(p.downMs) }),
    }
  })
  const actions = s.actions.map((a): ScenarioAction => {
    const [atMs, downMs] = span(a.atMs, a.downMs)
    return { ...a, atMs, downMs }
  })
  const scaled: Scenario = {
    ...s,
    durationMs: len(s.durationMs),
    uplink: { ...s.uplink },
    devices: s.devices.map(d => ({ ...d, ids: [...d.ids], priorities: d.priorities.map(([n, w]): [PriorityName, number] => [n, w]), streams: [...d.streams] })),
    links,
    actions,
  }

  const source = `${s.source} scaled by ${factor}`
  const problems: string[] = []
  const report: Report = (path, message) => problems.push(problemText(source, path, message))
  const ends = (kind: string, atMs: number, lengthMs: number, path: Path) => {
    if (atMs >= scaled.durationMs || atMs + lengthMs > scaled.durationMs) report(path, `${kind} ${formatDuration(atMs)}-${formatDuration(atMs + lengthMs)} does not fit in ${formatDuration(scaled.durationMs)}`)
    return { kind, atMs, endMs: atMs + lengthMs, path }
  }
  checkOverlaps(links.map((p, i) => ends(p.kind, p.atMs, p.forMs, ['links', i])), 'link phases', report)
  const actionSpans = actions.map((a, i) => ends(a.kind, a.atMs, a.downMs, ['actions', i]))
  for (const kind of ACTION_KINDS) checkOverlaps(actionSpans.filter(a => a.kind === kind), `${kind} actions`, report)
  if (problems.length > 0) throw new ScenarioError(source, problems.slice(0, 10))
  return scaled
}
