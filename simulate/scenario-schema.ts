/**
 * The scenario file's schema (zod): keys, types, bounds and defaults, with durations and sizes
 * read by the configuration's own unit parsers (src/config/units.ts), so `10s`, `2m`, `64KiB` or
 * `1MB` mean in a scenario what they mean in edgefwd.yaml. Unknown keys are errors, as in the
 * forwarder's config. The checks across fields are in scenario-parse.ts.
 */
import { z } from 'zod'
import { parseDuration, parseSize, PRIORITIES, type UnitParse } from '../src/index.js'
import { ACTION_KINDS, DEVICE_TRANSPORTS, LINK_KINDS } from './scenario-model.js'
import type { Path } from './scenario-checks.js'

export const DEVICE_ID = /^[A-Za-z0-9._:-]{1,64}$/
const STREAM = /^[\x21-\x7e]{1,64}$/
const MIN_CAPACITY = 64 * 1024

/** A value with a unit (or a plain number of ms or bytes), at least `min`. */
function unit (parse: (v: unknown) => UnitParse, min: number, tooSmall: string) {
  return z.unknown().transform((v, ctx) => {
    const result = parse(v)
    if (result.ok && result.value >= min) return result.value
    ctx.issues.push({ code: 'custom', message: result.ok ? tooSmall : result.message, input: v })
    return z.NEVER
  })
}

const duration = (min: number, tooSmall = 'must be more than 0') => unit(parseDuration, min, tooSmall)
const size = (min: number, tooSmall: string) => unit(parseSize, min, tooSmall)

const weight = z.number().min(0).max(1_000_000)

/**
 * One schema for every transport, its keys optional where some transport has no use for them:
 * which keys a transport needs or refuses is checked in scenario-parse.ts (deviceGroup), which
 * words the problem for that transport ("only for tcp and udp devices", "is required for
 * transport mqtt"). Defaults of those keys (streams, payloadBytes) are applied there too, so a
 * key given for the wrong transport is seen.
 */
const deviceSchema = z.strictObject({
  id: z.string().min(1),
  count: z.int().min(1).max(10_000).default(1),
  transport: z.enum(DEVICE_TRANSPORTS),
  acks: z.boolean().optional(),
  rate: z.number().gt(0).max(100_000).optional(),
  interval: duration(100, "must be at least 100ms (the forwarder's shortest Modbus poll interval)").optional(),
  rateLimit: z.number().gt(0).max(10_000_000).optional(),
  priorities: z.strictObject({ low: weight.optional(), normal: weight.optional(), high: weight.optional(), critical: weight.optional() }).optional(),
  priority: z.enum(PRIORITIES).optional(),
  streams: z.array(z.string().regex(STREAM, { error: 'must be 1-64 printable ASCII characters, no spaces' })).min(1).optional(),
  payloadBytes: z.int().min(0).max(4096).optional(),
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

export const scenarioSchema = z.strictObject({
  name: z.string().trim().min(1, { error: 'must not be empty' }),
  description: z.string().default(''),
  duration: duration(1),
  seed: z.int().min(0).max(0xffff_ffff).default(1),
  store: z.strictObject({ capacity: size(MIN_CAPACITY, 'must be at least 64KiB') }),
  uplink: z.strictObject({ pubackTimeout: duration(100, "must be at least 100ms (the forwarder's minimum)").optional() }).default({}),
  devices: z.array(deviceSchema).min(1, { error: 'needs at least one device group' }),
  timeline: z.array(entrySchema).default([]),
})

export type RawScenario = z.output<typeof scenarioSchema>
export type RawEntry = z.output<typeof entrySchema>

/** The keys allowed at a path, for "unknown key" messages. */
export function keysAt (path: Path): readonly string[] {
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

/** `input` is the value at the issue's path (zod 4 does not put it in the issue). */
export function zodMessage (issue: z.core.$ZodIssue, input: unknown): string {
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
