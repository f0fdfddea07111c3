/**
 * Reading a scenario: YAML or JSON text -> a checked, normalised Scenario (scenario-model.ts), or
 * a ScenarioError naming every problem with its field path and line. It reads text only; loading
 * files is scenario.ts, running a scenario is simulation.ts.
 *
 * File shape (see simulate/scenarios/default.yaml for a commented example):
 *   name, description, duration, seed (default 1), store.capacity, uplink.pubackTimeout,
 *   devices: [{ id, count, transport: tcp | udp, acks, rate, rateLimit, priorities, streams, payloadBytes }
 *            | { id, count, transport: mqtt, rate, rateLimit, priority }
 *            | { id, count, transport: modbus, interval | rate, rateLimit, priority }],
 *   timeline: [{ at, link, for, bytesPerSecond | ms | up+down } | { at, action, down }]
 * Durations and sizes are the configuration's (`500ms`, `10s`, `2m`, `1h`, `64KiB`, `2MiB`, `1MB`
 * or a plain number of ms or bytes).
 *
 * Cross-checks beyond the schema, and why:
 * - Each transport takes its own keys (DEVICE_ONLY_FOR): a framed device weights priorities per
 *   event; an mqtt or modbus device sends none, so the group has one `priority`, which the
 *   simulation gives its events by an ingest rule, as a gateway's configuration would.
 * - At most 247 modbus devices in all: the simulation serves them from one Modbus TCP server, one
 *   unit id each.
 * - Link phases must not overlap, nor two actions of the same kind (scenario-checks.ts says why);
 *   an action may overlap a link phase (a power cut during an outage is a fine scenario).
 * - Every entry starts before the end of the sending period and ends by it, so the drain phase
 *   that follows always starts on a healthy link with the broker and the forwarder up.
 */
import { LineCounter, parseDocument } from 'yaml'
import { formatDuration, PRIORITIES, type PriorityName } from '../src/index.js'
import { checkOverlaps, problemText, type Path, type Report } from './scenario-checks.js'
import { ACTION_KINDS, LINK_KINDS, ScenarioError, SOURCE_STREAM, type DeviceGroup, type LinkPhase, type LinkPhaseKind, type Scenario, type ScenarioAction } from './scenario-model.js'
import { DEVICE_ID, keysAt, scenarioSchema, zodMessage, type RawEntry, type RawScenario } from './scenario-schema.js'

/** YAML or JSON text (JSON is YAML) -> a checked, normalised Scenario; throws ScenarioError. */
export function parseScenario (text: string, source: string): Scenario {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: true })
  if (doc.errors.length > 0) {
    throw new ScenarioError(source, doc.errors.slice(0, 10).map(e => problemText(source, undefined, e.message.split('\n')[0] ?? '')))
  }
  const lineOf = (path: Path): number | undefined => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined
      if (node?.range !== undefined) return lineCounter.linePos(node.range[0]).line
    }
    return undefined
  }
  const problem = (path: Path, message: string): string => problemText(source, path, message, lineOf(path))

  const input: unknown = doc.toJS()
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ScenarioError(source, [problemText(source, undefined, 'must be a mapping with name, duration, store, devices and timeline')])
  }
  const parsed = scenarioSchema.safeParse(input)
  if (!parsed.success) {
    const problems: string[] = []
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          const allowed = keysAt(issue.path as Path)
          problems.push(problem([...issue.path as Path, key], `unknown key${allowed.length > 0 ? `; the keys here are ${allowed.join(', ')}` : ''}`))
        }
      } else {
        problems.push(problem(issue.path as Path, zodMessage(issue, valueAt(input, issue.path as Path))))
      }
    }
    throw new ScenarioError(source, problems.slice(0, 10))
  }

  const problems: string[] = []
  const scenario = normalise(parsed.data, source, (path, message) => problems.push(problem(path, message)))
  if (problems.length > 0) throw new ScenarioError(source, problems.slice(0, 10))
  return scenario
}

function valueAt (input: unknown, path: Path): unknown {
  let value = input
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<string | number, unknown>)[key]
  }
  return value
}

function normalise (raw: RawScenario, source: string, report: Report): Scenario {
  let modbus = 0
  const devices = raw.devices.map((d, i) => {
    const group = deviceGroup(d, ['devices', i], report, modbus)
    if (group.transport === 'modbus') modbus += group.ids.length
    return group
  })
  const owner = new Map<string, number>()
  devices.forEach((group, i) => {
    for (const id of group.ids) {
      const first = owner.get(id)
      if (first === undefined) owner.set(id, i)
      else report(['devices', i, 'id'], `device id "${id}" is also made by ${first === i ? 'this group' : `devices[${first}]`}; ids must be unique`)
    }
  })

  const links: Array<{ phase: LinkPhase, path: Path }> = []
  const actions: Array<{ action: ScenarioAction, path: Path }> = []
  raw.timeline.forEach((entry, i) => {
    const path = ['timeline', i]
    const out = timelineEntry(entry, path, raw.duration, report)
    if (out === undefined) return
    if ('forMs' in out) links.push({ phase: out, path })
    else actions.push({ action: out, path })
  })
  const byStart = (a: { atMs: number }, b: { atMs: number }) => a.atMs - b.atMs
  links.sort((a, b) => byStart(a.phase, b.phase))
  actions.sort((a, b) => byStart(a.action, b.action))
  checkOverlaps(links.map(l => ({ ...l.phase, endMs: l.phase.atMs + l.phase.forMs, path: l.path })), 'link phases', report)
  for (const kind of ACTION_KINDS) {
    checkOverlaps(actions.filter(a => a.action.kind === kind).map(a => ({ ...a.action, endMs: a.action.atMs + a.action.downMs, path: a.path })), `${kind} actions`, report)
  }

  return {
    name: raw.name,
    description: raw.description.trim(),
    durationMs: raw.duration,
    seed: raw.seed,
    storeCapacityBytes: raw.store.capacity,
    uplink: raw.uplink.pubackTimeout === undefined ? {} : { pubackTimeoutMs: raw.uplink.pubackTimeout },
    devices,
    links: links.map(l => l.phase),
    actions: actions.map(a => a.action),
    source,
  }
}

/** The most Modbus devices one simulation serves: unit ids 1 to 247, the Modbus address range. */
const MAX_MODBUS_DEVICES = 247
/** Messages/s one Tasmota-like device may publish: one MQTT client each, and the gateway's default per-device rate limit. */
const MAX_MQTT_RATE = 1000
/** The longest Modbus poll interval the forwarder takes (ingest.modbus devices[].interval). */
const MAX_POLL_INTERVAL_MS = 86_400_000

type RawDevice = RawScenario['devices'][number]
const FRAMED = (d: RawDevice): boolean => d.transport === 'tcp' || d.transport === 'udp'
const aDevice = (transport: string): string => `${transport === 'mqtt' ? 'an' : 'a'} ${transport} device`
const SOURCE_PRIORITY_HINT = 'its events get one priority, from an ingest rule the simulation writes: use priority: (low | normal | high | critical)'

/** Keys that only some transports take, and what to say to the others. */
const DEVICE_ONLY_FOR: ReadonlyArray<[keyof RawDevice, (d: RawDevice) => boolean, (d: RawDevice) => string]> = [
  ['acks', d => d.transport === 'tcp', d => d.transport === 'udp'
    ? 'udp devices get no acks; remove acks or set it to false'
    : `only for tcp devices (transport ${d.transport} ${d.transport === 'mqtt' ? 'publishes at QoS 1 and is acknowledged by its broker' : 'is polled'})`],
  ['priorities', FRAMED, d => `only for tcp and udp devices; ${aDevice(d.transport)} sends no priority: ${SOURCE_PRIORITY_HINT}`],
  ['streams', FRAMED, d => `only for tcp and udp devices; ${aDevice(d.transport)}'s events go to stream ${JSON.stringify(SOURCE_STREAM)}`],
  ['payloadBytes', FRAMED, d => `only for tcp and udp devices; ${aDevice(d.transport)} sends ${d.transport === 'mqtt' ? 'Tasmota SENSOR JSON' : 'meter registers'}`],
  ['priority', d => !FRAMED(d), () => 'only for mqtt and modbus devices; tcp and udp devices pick each event\'s priority by weight: use priorities'],
  ['interval', d => d.transport === 'modbus', d => `only for modbus devices (how often the forwarder polls them); ${aDevice(d.transport)} has a rate`],
]

function deviceGroup (d: RawDevice, path: Path, report: Report, modbusSoFar: number): DeviceGroup {
  if (d.count > 1 && !d.id.includes('{n}')) report([...path, 'id'], `must contain {n} when count is ${d.count} (e.g. "${d.id}-{n}")`)
  const ids = Array.from({ length: d.count }, (_, k) => d.id.replaceAll('{n}', String(k + 1)))
  const bad = ids.find(id => !DEVICE_ID.test(id))
  if (bad !== undefined) report([...path, 'id'], `makes "${bad}", which is not a device id (1-64 characters of A-Z a-z 0-9 . _ : -)`)
  for (const [key, applies, message] of DEVICE_ONLY_FOR) {
    // acks: false on udp has always been accepted (it says what udp is).
    if (d[key] !== undefined && !applies(d) && !(key === 'acks' && d.transport === 'udp' && d.acks === false)) report([...path, key], message(d))
  }
  const limit = d.rateLimit === undefined ? {} : { rateLimitPerSecond: d.rateLimit }
  const common = { idPattern: d.id, ids, ...limit }

  if (d.transport === 'mqtt' || d.transport === 'modbus') {
    if (d.priority === undefined) report([...path, 'priority'], `is required for transport ${d.transport}: ${SOURCE_PRIORITY_HINT}`)
    const priority = d.priority ?? 'normal'
    if (d.transport === 'mqtt') {
      if (d.rate === undefined) report([...path, 'rate'], 'is required for transport mqtt (messages/s each device publishes)')
      else if (d.rate > MAX_MQTT_RATE) report([...path, 'rate'], `must be at most ${MAX_MQTT_RATE} messages/s for transport mqtt (each device is one MQTT client publishing at QoS 1)`)
      return { transport: 'mqtt', ...common, ratePerSecond: d.rate ?? 1, priority }
    }
    if (modbusSoFar + ids.length > MAX_MODBUS_DEVICES) {
      report([...path, 'count'], `makes ${modbusSoFar + ids.length} modbus devices in all; one Modbus server has unit ids for ${MAX_MODBUS_DEVICES}`)
    }
    let pollIntervalMs = d.interval ?? 1000
    if ((d.rate === undefined) === (d.interval === undefined)) {
      report(path, d.rate === undefined
        ? 'needs interval (e.g. 500ms, how often the forwarder polls it) or rate (polls/s)'
        : 'has both interval and rate; give one (interval: 500ms is rate: 2)')
    } else if (d.rate !== undefined) {
      pollIntervalMs = Math.round(1000 / d.rate)
      if (pollIntervalMs < 100) report([...path, 'rate'], `must be at most 10 polls/s (an interval of at least 100ms, the forwarder's shortest); ${d.rate} is ${pollIntervalMs}ms`)
    }
    if (pollIntervalMs > MAX_POLL_INTERVAL_MS) report([...path, d.rate === undefined ? 'interval' : 'rate'], "makes a poll interval over 1d, the forwarder's longest")
    return { transport: 'modbus', ...common, pollIntervalMs, priority }
  }

  if (d.rate === undefined) report([...path, 'rate'], `is required for transport ${d.transport} (events/s each device sends)`)
  const priorities: Array<[PriorityName, number]> = []
  for (const name of PRIORITIES) {
    const w = d.priorities?.[name]
    if (w !== undefined && w > 0) priorities.push([name, w])
  }
  if (d.priorities === undefined) report([...path, 'priorities'], `is required for transport ${d.transport}: weights by priority (keys: ${PRIORITIES.join(', ')})`)
  else if (priorities.length === 0) report([...path, 'priorities'], `needs at least one weight above 0 (keys: ${PRIORITIES.join(', ')})`)
  return {
    idPattern: d.id,
    ids,
    transport: d.transport,
    acks: d.acks ?? d.transport === 'tcp',
    ratePerSecond: d.rate ?? 1,
    priorities,
    streams: d.streams ?? ['telemetry'],
    payloadBytes: d.payloadBytes ?? 48,
    ...limit,
  }
}

const ONLY_FOR: ReadonlyArray<[keyof RawEntry, string, (e: RawEntry) => boolean]> = [
  ['for', 'link phases', e => e.link !== undefined],
  ['bytesPerSecond', 'link: throttle', e => e.link === 'throttle'],
  ['ms', 'link: latency', e => e.link === 'latency'],
  ['up', 'link: flapping', e => e.link === 'flapping'],
  ['down', 'link: flapping and actions', e => e.link === 'flapping' || e.action !== undefined],
]

function timelineEntry (e: RawEntry, path: Path, durationMs: number, report: Report): LinkPhase | ScenarioAction | undefined {
  if ((e.link === undefined) === (e.action === undefined)) {
    report(path, e.link === undefined
      ? `needs link: (${LINK_KINDS.join(' | ')}) or action: (${ACTION_KINDS.join(' | ')})`
      : 'has both link and action; an entry is one or the other')
    return undefined
  }
  let ok = true
  const fail = (key: string, message: string): void => { report([...path, key], message); ok = false }
  for (const [key, what, applies] of ONLY_FOR) {
    if (e[key] !== undefined && !applies(e)) fail(key, `only for ${what}`)
  }
  if (e.at >= durationMs) fail('at', `${formatDuration(e.at)} is not before the end of the run (duration ${formatDuration(durationMs)})`)

  if (e.action !== undefined) {
    if (e.down === undefined) fail('down', 'is required for an action (how long the broker or the forwarder stays down)')
    else if (e.at + e.down > durationMs) fail('down', `ends at ${formatDuration(e.at + e.down)}, after the end of the run (${formatDuration(durationMs)})`)
    return ok && e.down !== undefined ? { kind: e.action, atMs: e.at, downMs: e.down } : undefined
  }

  const kind = e.link as LinkPhaseKind
  if (e.for === undefined) fail('for', 'is required for a link phase (a duration like 10s)')
  else if (e.at + e.for > durationMs) fail('for', `ends at ${formatDuration(e.at + e.for)}, after the end of the run (${formatDuration(durationMs)})`)
  if (kind === 'throttle' && e.bytesPerSecond === undefined) fail('bytesPerSecond', 'is required for link: throttle (at least 1000)')
  if (kind === 'latency' && e.ms === undefined) fail('ms', 'is required for link: latency (1 to 10000)')
  if (kind === 'flapping') {
    if (e.up === undefined) fail('up', 'is required for link: flapping (how long the link passes each cycle)')
    if (e.down === undefined || e.down === 0) fail('down', 'is required for link: flapping and must be more than 0 (how long the link is out each cycle)')
  }
  if (!ok || e.for === undefined) return undefined
  return {
    kind,
    atMs: e.at,
    forMs: e.for,
    ...(kind === 'throttle' ? { bytesPerSecond: e.bytesPerSecond } : {}),
    ...(kind === 'latency' ? { latencyMs: e.ms } : {}),
    ...(kind === 'flapping' ? { upMs: e.up, downMs: e.down } : {}),
  }
}
