/**
 * The scenario model: what a checked scenario file becomes (scenario-parse.ts makes it), the
 * ScenarioError every check throws, and scaleScenario(), which stretches or shortens a scenario
 * and checks the result again.
 *
 * Normalised form: every time in ms, every size in bytes, device ids expanded (`{n}` -> 1..count),
 * priorities as [name, weight] pairs in low..critical order with zero weights dropped, link phases
 * and actions each sorted by start time (stable, so equal starts keep file order).
 *
 * Device groups come in two families. Framed devices (`tcp`, `udp`) speak the device protocol
 * and choose each event's priority by weight. Source devices are what `ingest.mqtt` and
 * `ingest.modbus` read: a Tasmota-like publisher on a local broker (`mqtt`, `ratePerSecond`
 * messages/s) and a meter on a Modbus TCP server (`modbus`, polled every `pollIntervalMs`). They
 * send no priority and no sequence number; the forwarder gives their events the group's one
 * `priority` by an ingest rule, and its own seqs.
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

export const DEVICE_TRANSPORTS = ['tcp', 'udp', 'mqtt', 'modbus'] as const
export type DeviceTransport = typeof DEVICE_TRANSPORTS[number]

interface GroupCommon {
  idPattern: string
  ids: string[]
  /** The forwarder's ingest rate limit for these devices, events/s. */
  rateLimitPerSecond?: number
}

/** A group of framed devices (tcp, udp): a simulated device (DeviceSpec) for each of `ids`. */
export interface FramedDeviceGroup extends Omit<DeviceSpec, 'id'>, GroupCommon {}

/** Tasmota-like publishers on the local broker (tasmota-device.ts): `ratePerSecond` messages/s each. */
export interface MqttDeviceGroup extends GroupCommon {
  transport: 'mqtt'
  ratePerSecond: number
  /** Given by an ingest rule `{ device: <id>, priority }`: the device sends none. */
  priority: PriorityName
}

/** Meters on the simulation's Modbus TCP server (modbus-meter.ts), each polled by the forwarder every `pollIntervalMs`. */
export interface ModbusDeviceGroup extends GroupCommon {
  transport: 'modbus'
  pollIntervalMs: number
  priority: PriorityName
}

export type SourceDeviceGroup = MqttDeviceGroup | ModbusDeviceGroup
/** The stream of a source device's events (Tasmota's ENERGY object, the meter's registers). */
export const SOURCE_STREAM = 'energy'
/** One group of the scenario's devices. */
export type DeviceGroup = FramedDeviceGroup | SourceDeviceGroup

export function isSourceGroup (g: DeviceGroup): g is SourceDeviceGroup {
  return g.transport === 'mqtt' || g.transport === 'modbus'
}

/** Events (or messages, or polls) per second one device of the group makes. */
export function groupRatePerSecond (g: DeviceGroup): number {
  return g.transport === 'modbus' ? 1000 / g.pollIntervalMs : g.ratePerSecond
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
 * back to back stay back to back and never come to overlap. Unchanged: rates and Modbus poll
 * intervals (a rate, not a span of the timeline), sizes, latency (a delay, not a period) and uplink.pubackTimeout (a property of the forwarder, with a 100 ms
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
    devices: s.devices.map((d): DeviceGroup => isSourceGroup(d)
      ? { ...d, ids: [...d.ids] }
      : { ...d, ids: [...d.ids], priorities: d.priorities.map(([n, w]): [PriorityName, number] => [n, w]), streams: [...d.streams] }),
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
