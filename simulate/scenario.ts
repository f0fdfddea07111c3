/**
 * Simulation scenarios: one YAML (or JSON) file describes one `edgefwd simulate` run. Devices send
 * events to the forwarder's real ingest listeners, the forwarder's store is deliberately small so
 * eviction happens, a chaos proxy between the forwarder and the broker applies a timeline of link
 * phases, and actions restart the broker or SIGKILL the forwarder (a power cut).
 *
 * This module only reads and checks files; it starts nothing. The orchestrator runs what it returns.
 *
 * File shape (see simulate/scenarios/default.yaml for a commented example):
 *   name, description, duration, seed (default 1), store.capacity, uplink.pubackTimeout,
 *   devices: [{ id, count, transport, acks, rate, rateLimit, priorities, streams, payloadBytes }],
 *   timeline: [{ at, link, for, bytesPerSecond | ms | up+down } | { at, action, down }]
 * Durations are `500ms`, `10s`, `2m`, `1h` or a number of ms; sizes are `64KiB`, `2MiB`, `1GiB`,
 * `100B` or a number of bytes. Unknown keys are errors, as in the forwarder's config.
 *
 * Normalised form: every time in ms, every size in bytes, device ids expanded (`{n}` -> 1..count),
 * priorities as [name, weight] pairs in low..critical order with zero weights dropped, link phases
 * and actions each sorted by start time (stable, so equal starts keep file order).
 *
 * Cross-checks beyond the schema, and why:
 * - Link phases must not overlap: the proxy has one mode at a time, so two phases at once would
 *   make the result depend on the order they were applied.
 * - Actions may overlap link phases (a power cut during an outage is a fine scenario), but not an
 *   action of the same kind: a second power cut while the forwarder is still down means nothing.
 * - Every entry starts before the end of the sending period and ends by it, so the drain phase
 *   that follows always starts on a healthy link with the broker and the forwarder up.
 */
import { existsSync, readdirSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { extname, relative, resolve, isAbsolute } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LineCounter, parseDocument } from 'yaml'
import { z } from 'zod'
import { EdgefwdError, PRIORITIES, type PriorityName } from '../src/index.js'

export type { PriorityName }
export type LinkPhaseKind = 'outage' | 'blackhole' | 'throttle' | 'latency' | 'flapping'

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

export interface ScenarioAction { kind: 'broker-restart' | 'power-cut', atMs: number, downMs: number }

export interface DeviceGroup {
  idPattern: string
  ids: string[]
  transport: 'tcp' | 'udp'
  acks: boolean
  ratePerSecond: number
  priorities: Array<[PriorityName, number]>
  streams: string[]
  payloadBytes: number
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
 * Every message is `<source>: <field path>: <problem>`, with ` (line N)` when the file shows it.
 * A configuration error like the gateway's: EDGEFWD_ERR_SCENARIO, and `simulate` exits 78.
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
 * The built-in scenarios' text by name, put into the single-executable bundle by
 * scripts/build-sea.mjs (esbuild `define`), where there is no source tree to read them from.
 * Undeclared everywhere else.
 */
declare const EDGEFWD_SCENARIOS: Readonly<Record<string, string>> | undefined
const EMBEDDED: Readonly<Record<string, string>> | undefined = typeof EDGEFWD_SCENARIOS === 'object' ? EDGEFWD_SCENARIOS : undefined

/**
 * simulate/scenarios in the source tree. Compiled code runs from dist/simulate/, where the YAML
 * files are not copied, so when there is no `scenarios` directory next to this module the one at
 * ../../simulate/scenarios (the repository's, seen from dist/simulate/) is used.
 */
export const SCENARIO_DIR: string = EMBEDDED === undefined ? findScenarioDir() : '(built in)'

function findScenarioDir (): string {
  const beside = fileURLToPath(new URL('./scenarios/', import.meta.url))
  const fromDist = fileURLToPath(new URL('../../simulate/scenarios/', import.meta.url))
  const dir = existsSync(beside) || !existsSync(fromDist) ? beside : fromDist
  return dir.replace(/[\\/]$/, '')
}

const EXTENSIONS = ['.yaml', '.yml', '.json']

export function scenarioNames (): string[] {
  if (EMBEDDED !== undefined) return Object.keys(EMBEDDED).sort()
  const names = new Set<string>()
  for (const file of readdirSync(SCENARIO_DIR)) {
    const ext = extname(file)
    if (EXTENSIONS.includes(ext)) names.add(file.slice(0, -ext.length))
  }
  return [...names].sort()
}

/** A bare name is SCENARIO_DIR/<name>.yaml|.yml|.json; a path (has a '/' or an extension) is read as is. */
export async function loadScenario (nameOrFile: string): Promise<Scenario> {
  const isPath = /[\\/]/.test(nameOrFile) || EXTENSIONS.includes(extname(nameOrFile))
  const embedded = !isPath && EMBEDDED !== undefined && Object.hasOwn(EMBEDDED, nameOrFile) ? EMBEDDED[nameOrFile] : undefined
  if (embedded !== undefined) return parseScenario(embedded, `${nameOrFile} (built in)`)
  let file: string | undefined
  if (isPath) {
    file = resolve(nameOrFile)
  } else {
    file = EMBEDDED === undefined ? EXTENSIONS.map(ext => resolve(SCENARIO_DIR, nameOrFile + ext)).find(f => existsSync(f)) : undefined
    if (file === undefined) {
      throw new ScenarioError(nameOrFile, [`${nameOrFile}: no such scenario; the scenarios are ${scenarioNames().join(', ')} (or give a file path)`])
    }
  }
  const source = displayPath(file)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err)
    throw new ScenarioError(source, [`${source}: cannot read the file (${code})`], { cause: err })
  }
  return parseScenario(text, source)
}

function displayPath (file: string): string {
  const rel = relative(process.cwd(), file)
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file
}

// ---------------------------------------------------------------------------------------------
// Units

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/
const DURATION_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const SIZE = /^(\d+)(B|KiB|MiB|GiB)?$/
const SIZE_BYTES: Readonly<Record<string, number>> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }

/** ms, or a problem text. Whole milliseconds only, so scaled and compared times are exact. */
function durationMs (v: unknown): number | string {
  const like = 'must be a duration like 10s, 500ms, 2m or a number of ms'
  let ms: number
  if (typeof v === 'number') {
    ms = v
  } else if (typeof v === 'string') {
    const m = DURATION.exec(v)
    if (m === null) return like
    const exact = Number(m[1]) * (DURATION_MS[m[2] as string] as number)
    ms = Math.round(exact)
    if (Math.abs(exact - ms) > 1e-6) return 'must be a whole number of milliseconds'
  } else {
    return v === undefined ? `is required (${like.slice(5)})` : like
  }
  if (!Number.isSafeInteger(ms) || ms < 0) return 'must be a whole number of milliseconds, 0 or more'
  return ms
}

function sizeBytes (v: unknown): number | string {
  const like = 'must be a size like 256KiB, 2MiB or a number of bytes'
  let bytes: number
  if (typeof v === 'number') {
    bytes = v
  } else if (typeof v === 'string') {
    const m = SIZE.exec(v)
    if (m === null) return like
    bytes = Number(m[1]) * (SIZE_BYTES[m[2] ?? 'B'] as number)
  } else {
    return v === undefined ? `is required (${like.slice(5)})` : like
  }
  if (!Number.isSafeInteger(bytes) || bytes < 0) return 'must be a whole number of bytes, 0 or more'
  return bytes
}

function unit (parse: (v: unknown) => number | string, min: number, tooSmall: string) {
  return z.unknown().transform((v, ctx) => {
    const result = parse(v)
    const message = typeof result === 'string' ? result : result < min ? tooSmall : undefined
    if (message === undefined) return result as number
    ctx.issues.push({ code: 'custom', message, input: v })
    return z.NEVER
  })
}

const duration = (min: number, tooSmall = 'must be more than 0') => unit(durationMs, min, tooSmall)
const size = (min: number, tooSmall: string) => unit(sizeBytes, min, tooSmall)

function formatMs (ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

// ---------------------------------------------------------------------------------------------
// Schema

const LINK_KINDS = ['outage', 'blackhole', 'throttle', 'latency', 'flapping'] as const
const ACTION_KINDS = ['broker-restart', 'power-cut'] as const
const DEVICE_ID = /^[A-Za-z0-9._:-]{1,64}$/
const STREAM = /^[\x21-\x7e]{1,64}$/
const MIN_CAPACITY = 64 * 1024

const weight = z.number().min(0).max(1_000_000)

const deviceSchema = z.strictObject({
  id: z.string().min(1),
  count: z.int().min(1).max(10_000).default(1),
  transport: z.enum(['tcp', 'udp']),
  acks: z.boolean().optional(),
  rate: z.number().gt(0).max(100_000),
  rateLimit: z.number().gt(0).max(10_000_000).optional(),
  priorities: z.strictObject({ low: weight.optional(), normal: weight.optional(), high: weight.optional(), critical: weight.optional() }),
  streams: z.array(z.string().regex(STREAM, { error: 'must be 1-64 printable ASCII characters, no spaces' })).min(1).default(['telemetry']),
  payloadBytes: z.int().min(0).max(4096).default(48),
})

const entrySchema = z.strictObject({
  at: duration(0),
  link: z.enum(LINK_KINDS).optional(),
  action: z.enum(ACTION_KINDS).optional(),
  for: duration(1).optional(),
  bytesPerSecond: z.int().min(1000).optional(),
  ms: z.int().min(1).max(10_000).optional(),
  up: duration(1).optional(),
  down: duration(0).optional(),
})

const scenarioSchema = z.strictObject({
  name: z.string().trim().min(1, { error: 'must not be empty' }),
  description: z.string().default(''),
  duration: duration(1),
  seed: z.int().min(0).max(0xffff_ffff).default(1),
  store: z.strictObject({ capacity: size(MIN_CAPACITY, 'must be at least 64KiB') }),
  uplink: z.strictObject({ pubackTimeout: duration(100, "must be at least 100ms (the forwarder's minimum)").optional() }).default({}),
  devices: z.array(deviceSchema).min(1, { error: 'needs at least one device group' }),
  timeline: z.array(entrySchema).default([]),
})

type RawScenario = z.output<typeof scenarioSchema>
type RawEntry = z.output<typeof entrySchema>
type Path = ReadonlyArray<string | number>

/** The keys allowed at a path, for "unknown key" messages. */
function keysAt (path: Path): readonly string[] {
  const named = path.filter(p => typeof p === 'string')
  const last = named.at(-1)
  if (named.length === 0) return Object.keys(scenarioSchema.shape)
  if (last === 'store') return ['capacity']
  if (last === 'uplink') return ['pubackTimeout']
  if (last === 'priorities') return PRIORITIES
  if (last === 'devices') return Object.keys(deviceSchema.shape)
  if (last === 'timeline') return Object.keys(entrySchema.shape)
  return []
}

function formatPath (path: Path): string {
  let out = ''
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`
  return out === '' ? '(top level)' : out
}

/** `input` is the value at the issue's path (zod 4 does not put it in the issue). */
function zodMessage (issue: z.core.$ZodIssue, input: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      return input === undefined ? 'is required' : `must be ${issue.expected === 'int' ? 'an integer' : `a ${issue.expected}`}`
    case 'invalid_value':
      return `must be one of ${issue.values.map(v => JSON.stringify(v)).join(', ')}`
    case 'too_small':
      if (issue.origin === 'array') return issue.message.startsWith('needs') ? issue.message : `needs at least ${String(issue.minimum)} item(s)`
      if (issue.origin === 'string') return 'must not be empty'
      return `must be ${issue.inclusive === false ? 'more than' : 'at least'} ${String(issue.minimum)}`
    case 'too_big':
      return `must be ${issue.inclusive === false ? 'less than' : 'at most'} ${String(issue.maximum)}`
    default:
      return issue.message
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** YAML or JSON text (JSON is YAML) -> a checked, normalised Scenario; throws ScenarioError. */
export function parseScenario (text: string, source: string): Scenario {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: true })
  if (doc.errors.length > 0) {
    throw new ScenarioError(source, doc.errors.slice(0, 10).map(e => `${source}: ${e.message.split('\n')[0] ?? ''}`))
  }
  const lineOf = (path: Path): string => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined
      if (node?.range !== undefined) return ` (line ${lineCounter.linePos(node.range[0]).line})`
    }
    return ''
  }
  const problem = (path: Path, message: string): string => `${source}: ${formatPath(path)}: ${message}${lineOf(path)}`

  const input: unknown = doc.toJS()
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ScenarioError(source, [`${source}: must be a mapping with name, duration, store, devices and timeline`])
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

type Report = (path: Path, message: string) => void

function normalise (raw: RawScenario, source: string, report: Report): Scenario {
  const devices = raw.devices.map((d, i) => deviceGroup(d, ['devices', i], report))
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

function deviceGroup (d: RawScenario['devices'][number], path: Path, report: Report): DeviceGroup {
  if (d.count > 1 && !d.id.includes('{n}')) report([...path, 'id'], `must contain {n} when count is ${d.count} (e.g. "${d.id}-{n}")`)
  const ids = Array.from({ length: d.count }, (_, k) => d.id.replaceAll('{n}', String(k + 1)))
  const bad = ids.find(id => !DEVICE_ID.test(id))
  if (bad !== undefined) report([...path, 'id'], `makes "${bad}", which is not a device id (1-64 characters of A-Z a-z 0-9 . _ : -)`)
  if (d.transport === 'udp' && d.acks === true) report([...path, 'acks'], 'udp devices get no acks; remove acks or set it to false')
  const priorities: Array<[PriorityName, number]> = []
  for (const name of PRIORITIES) {
    const w = d.priorities[name]
    if (w !== undefined && w > 0) priorities.push([name, w])
  }
  if (priorities.length === 0) report([...path, 'priorities'], `needs at least one weight above 0 (keys: ${PRIORITIES.join(', ')})`)
  return {
    idPattern: d.id,
    ids,
    transport: d.transport,
    acks: d.acks ?? d.transport === 'tcp',
    ratePerSecond: d.rate,
    priorities,
    streams: d.streams,
    payloadBytes: d.payloadBytes,
    ...(d.rateLimit === undefined ? {} : { rateLimitPerSecond: d.rateLimit }),
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
  if (e.at >= durationMs) fail('at', `${formatMs(e.at)} is not before the end of the run (duration ${formatMs(durationMs)})`)

  if (e.action !== undefined) {
    if (e.down === undefined) fail('down', 'is required for an action (how long the broker or the forwarder stays down)')
    else if (e.at + e.down > durationMs) fail('down', `ends at ${formatMs(e.at + e.down)}, after the end of the run (${formatMs(durationMs)})`)
    return ok && e.down !== undefined ? { kind: e.action, atMs: e.at, downMs: e.down } : undefined
  }

  const kind = e.link as LinkPhaseKind
  if (e.for === undefined) fail('for', 'is required for a link phase (a duration like 10s)')
  else if (e.at + e.for > durationMs) fail('for', `ends at ${formatMs(e.at + e.for)}, after the end of the run (${formatMs(durationMs)})`)
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

/** `spans` sorted by start; the later of two overlapping spans is reported. */
function checkOverlaps (spans: ReadonlyArray<{ kind: string, atMs: number, endMs: number, path: Path }>, what: string, report: Report): void {
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1] as typeof spans[number]
    const cur = spans[i] as typeof spans[number]
    if (cur.atMs < prev.endMs) {
      report(cur.path, `${cur.kind} ${formatMs(cur.atMs)}-${formatMs(cur.endMs)} overlaps ${formatPath(prev.path)} (${prev.kind} ${formatMs(prev.atMs)}-${formatMs(prev.endMs)}); ${what} must not overlap`)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Scaling

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
  const report: Report = (path, message) => problems.push(`${source}: ${formatPath(path)}: ${message}`)
  const ends = (kind: string, atMs: number, lengthMs: number, path: Path) => {
    if (atMs >= scaled.durationMs || atMs + lengthMs > scaled.durationMs) report(path, `${kind} ${formatMs(atMs)}-${formatMs(atMs + lengthMs)} does not fit in ${formatMs(scaled.durationMs)}`)
    return { kind, atMs, endMs: atMs + lengthMs, path }
  }
  checkOverlaps(links.map((p, i) => ends(p.kind, p.atMs, p.forMs, ['links', i])), 'link phases', report)
  const actionSpans = actions.map((a, i) => ends(a.kind, a.atMs, a.downMs, ['actions', i]))
  for (const kind of ACTION_KINDS) checkOverlaps(actionSpans.filter(a => a.kind === kind), `${kind} actions`, report)
  if (problems.length > 0) throw new ScenarioError(source, problems.slice(0, 10))
  return scaled
}
