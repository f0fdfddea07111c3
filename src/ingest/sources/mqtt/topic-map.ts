/**
 * How an MQTT message becomes a reading (docs/config.md "ingest.mqtt"): pure functions, no I/O.
 *
 * A mapping's filter is topic levels where `{name}` captures one level (subscribed as `+`), `+`
 * matches one level and a last `#` the rest. The device id and stream are templates over the
 * captures (`{device}` and `{stream}` by default). A captured level may hold what a device id
 * may not (zigbee2mqtt friendly names have spaces): every character outside printable ASCII, and
 * `+` and `#`, becomes `_`, so "Living Room" is device `Living_Room`. The result must still be a
 * valid device id (at most 64 bytes), or the message is rejected.
 *
 * Payloads, by the mapping's `payload`:
 * - `json` (default): parsed; `path` (dotted, array indexes as numbers: `ENERGY.Power`, `a.0`)
 *   selects a part. A number is the value; true/false are 1/0; a string is a text value; an
 *   object or array is flattened to named numbers (`ENERGY.Power`), its numbers and booleans
 *   only: strings and nulls in it are left out unless named by `tags`. An object with no number
 *   and no tag carries nothing and is rejected.
 * - `number`: the payload text is a decimal number, or true/false/on/off (1/0).
 * - `text`: UTF-8 text. `raw`: the bytes as they are.
 * Whatever does not fit is a `bad_payload` rejection whose detail says what was expected.
 */
import type { EventValue } from '../../../types.js'

export type PayloadKind = 'json' | 'number' | 'text' | 'raw'

export interface TopicMappingSpec {
  filter: string
  device: string
  stream: string
  payload: PayloadKind
  path?: string | undefined
  tags?: Readonly<Record<string, string>> | undefined
  qos: 0 | 1
}

export type Mapped =
  | { ok: true, value: EventValue, tags?: Record<string, string> }
  | { ok: false, detail: string }

/** More named numbers than an event may carry (PROTOCOL.md §3): flattening stops there. */
const MAX_NUMBERS = 32
/** Nesting deeper than this is not flattened (zigbee2mqtt and Tasmota objects are 2-3 deep). */
const MAX_DEPTH = 8

export class TopicMapping {
  /** The filter as subscribed: `{name}` levels as `+`. */
  readonly subscription: string
  private readonly levels: readonly string[]
  /** Capture name of each level, or undefined for a literal, `+` or `#`. */
  private readonly captures: ReadonlyArray<string | undefined>
  private readonly multi: boolean
  private readonly path: ReadonlyArray<string> | undefined
  private readonly tagPaths: ReadonlyArray<[string, readonly string[]]>

  constructor (readonly spec: TopicMappingSpec) {
    const levels = spec.filter.split('/')
    this.multi = levels[levels.length - 1] === '#'
    this.levels = this.multi ? levels.slice(0, -1) : levels
    this.captures = this.levels.map(l => /^\{(\w+)\}$/.exec(l)?.[1])
    this.subscription = levels.map(l => /^\{\w+\}$/.test(l) ? '+' : l).join('/')
    this.path = spec.path === undefined ? undefined : spec.path.split('.')
    this.tagPaths = Object.entries(spec.tags ?? {}).map(([name, path]) => [name, path.split('.')])
  }

  /** The captures when `topic` matches the filter, else undefined. */
  match (topic: string): Map<string, string> | undefined {
    const levels = topic.split('/')
    if (this.multi ? levels.length < this.levels.length : levels.length !== this.levels.length) return undefined
    // [MQTT-4.7.2-1]: a filter starting with a wildcard does not match topics starting with $.
    if (topic.startsWith('$') && !this.levels[0]?.startsWith('$')) return undefined
    const found = new Map<string, string>()
    for (let i = 0; i < this.levels.length; i++) {
      const want = this.levels[i] as string
      const got = levels[i] as string
      const name = this.captures[i]
      if (name !== undefined) found.set(name, got)
      else if (want !== '+' && want !== got) return undefined
    }
    return found
  }

  deviceId (captures: ReadonlyMap<string, string>): string { return render(this.spec.device, captures) }
  stream (captures: ReadonlyMap<string, string>): string { return render(this.spec.stream, captures) }

  /** The payload as an event value (and tags), or why it cannot be one. */
  map (payload: Uint8Array): Mapped {
    switch (this.spec.payload) {
      case 'raw': return { ok: true, value: { kind: 'raw', raw: Uint8Array.from(payload) } }
      case 'text': {
        const text = utf8(payload)
        return text === undefined ? { ok: false, detail: 'payload is not valid UTF-8 text' } : { ok: true, value: { kind: 'text', text } }
      }
      case 'number': {
        const n = parseNumber(utf8(payload) ?? '')
        return n === undefined ? { ok: false, detail: `payload is not a number (or true/false/on/off): ${preview(payload)}` } : { ok: true, value: { kind: 'number', number: n } }
      }
      case 'json': return this.mapJson(payload)
    }
  }

  private mapJson (payload: Uint8Array): Mapped {
    const text = utf8(payload)
    if (text === undefined) return { ok: false, detail: 'payload is not valid UTF-8, so not JSON' }
    let doc: unknown
    try {
      doc = JSON.parse(text)
    } catch (err) {
      return { ok: false, detail: `payload is not JSON (${err instanceof Error ? err.message : String(err)}): ${preview(payload)}` }
    }
    const selected = this.path === undefined ? doc : at(doc, this.path)
    if (selected === undefined) return { ok: false, detail: `payload has nothing at path ${this.spec.path ?? ''}` }
    const tags = this.tags(doc)
    let value: EventValue
    if (typeof selected === 'number') value = { kind: 'number', number: selected }
    else if (typeof selected === 'boolean') value = { kind: 'number', number: selected ? 1 : 0 }
    else if (typeof selected === 'string') value = { kind: 'text', text: selected }
    else if (selected === null) return { ok: false, detail: `payload's value${this.where()} is null` }
    else {
      const numbers: Record<string, number> = {}
      const count = flatten(selected, '', numbers, 0, 0)
      if (count > MAX_NUMBERS) return { ok: false, detail: `payload's object${this.where()} has more than ${MAX_NUMBERS} numbers: map a part of it with path` }
      if (count === 0 && tags === undefined) return { ok: false, detail: `payload's object${this.where()} has no number or boolean` }
      value = { kind: 'numbers', numbers }
    }
    return tags === undefined ? { ok: true, value } : { ok: true, value, tags }
  }

  private where (): string { return this.spec.path === undefined ? '' : ` at path ${this.spec.path}` }

  private tags (doc: unknown): Record<string, string> | undefined {
    let tags: Record<string, string> | undefined
    for (const [name, path] of this.tagPaths) {
      const v = at(doc, path)
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') (tags ??= {})[name] = String(v)
    }
    return tags
  }
}

function render (template: string, captures: ReadonlyMap<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => sanitize(captures.get(name) ?? ''))
}

/** Printable ASCII other than + and # stays; anything else becomes _. (A level has no '/'.) */
function sanitize (level: string): string {
  return level.replace(/[^\x21-\x7e]|[+#]/gu, '_')
}

function at (doc: unknown, path: readonly string[]): unknown {
  let cur = doc
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(key)) return undefined
      cur = cur[Number(key)]
    } else {
      if (!Object.hasOwn(cur, key)) return undefined
      cur = (cur as Record<string, unknown>)[key]
    }
  }
  return cur
}

/** Adds the numbers and booleans under `v` to `out`; returns the running count (stops past MAX_NUMBERS). */
function flatten (v: object, prefix: string, out: Record<string, number>, count: number, depth: number): number {
  if (depth >= MAX_DEPTH) return count
  for (const [key, child] of Object.entries(v)) {
    const name = prefix === '' ? key : `${prefix}.${key}`
    if (typeof child === 'number') {
      out[name] = child
      count++
    } else if (typeof child === 'boolean') {
      out[name] = child ? 1 : 0
      count++
    } else if (child !== null && typeof child === 'object') {
      count = flatten(child, name, out, count, depth + 1)
    }
    if (count > MAX_NUMBERS) return count
  }
  return count
}

const decoder = new TextDecoder('utf-8', { fatal: true })

function utf8 (b: Uint8Array): string | undefined {
  try {
    return decoder.decode(b)
  } catch {
    return undefined
  }
}

const NUMBER = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/

function parseNumber (text: string): number | undefined {
  const t = text.trim()
  if (NUMBER.test(t)) {
    const n = Number(t)
    return Number.isFinite(n) ? n : undefined
  }
  switch (t.toLowerCase()) {
    case 'true': case 'on': return 1
    case 'false': case 'off': return 0
    default: return undefined
  }
}

/** The payload's start, for a rejection's detail (logged): printable ASCII, at most 40 characters. */
function preview (b: Uint8Array): string {
  const s = Buffer.from(b.subarray(0, 40)).toString('latin1').replace(/[^\x20-\x7e]/g, '.')
  return JSON.stringify(b.length > 40 ? `${s}...` : s)
}
