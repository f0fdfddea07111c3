/**
 * Parsers for the two unit-bearing value kinds in the configuration: sizes (bytes) and
 * durations (milliseconds). Pure functions, no zod: src/config/fields.ts wraps them for the schema.
 *
 * Arithmetic is done on the decimal digits with BigInt so that "1.1MB" is exactly 1100000 and
 * not 1100000.0000000002; a value that is not a whole number of bytes (or milliseconds) is
 * rejected rather than rounded, because silently rounding a limit surprises people.
 */

export type UnitParse = { ok: true, value: number } | { ok: false, message: string }

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB
const TiB = 1024 * GiB

const SIZE_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB,
  MiB,
  GiB,
  TiB,
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
}

const SIZE_EXPECTED = 'expected a size such as 64MiB or 1048576'
const DURATION_EXPECTED = 'expected a duration such as 5s, 250ms or 1500 (milliseconds)'

/** `1048576`, `"512"`, `"64KiB"`, `"1.5GB"` → bytes. */
export function parseSize (input: unknown): UnitParse {
  return parseWithUnits(input, SIZE_UNITS, SIZE_EXPECTED, 'bytes')
}

/** `1500`, `"250ms"`, `"5s"`, `"10m"`, `"2h"`, `"7d"` → milliseconds. */
export function parseDuration (input: unknown): UnitParse {
  return parseWithUnits(input, DURATION_UNITS, DURATION_EXPECTED, 'milliseconds')
}

/** The shortest exact spelling of a byte count, e.g. 65536 → "64KiB", 1000 → "1000B". */
export function formatSize (bytes: number): string {
  return formatExact(bytes, [['TiB', TiB], ['GiB', GiB], ['MiB', MiB], ['KiB', KiB]], 'B')
}

/** The shortest exact spelling of a duration, e.g. 1000 → "1s", 1500 → "1500ms". */
export function formatDuration (ms: number): string {
  return formatExact(ms, [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]], 'ms')
}

const NUMBER_WITH_UNIT = /^(\d+)(?:\.(\d+))?\s*([A-Za-z]*)$/

function parseWithUnits (input: unknown, units: Readonly<Record<string, number>>,
  expected: string, wholeName: string): UnitParse {
  const bad = (why?: string): UnitParse =>
    ({ ok: false, message: `${expected}, got ${describeInput(input)}${why === undefined ? '' : ` (${why})`}` })

  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) return bad()
    if (!Number.isInteger(input)) return bad(`not a whole number of ${wholeName}`)
    if (!Number.isSafeInteger(input)) return bad('too large')
    return { ok: true, value: input }
  }
  if (typeof input !== 'string') return bad()

  const match = NUMBER_WITH_UNIT.exec(input.trim())
  if (match === null) return bad()
  const [, whole = '', fraction = '', unit = ''] = match
  const factor = unit === '' ? 1 : Object.hasOwn(units, unit) ? units[unit] : undefined
  if (factor === undefined) {
    const sameLetters = Object.keys(units).find(u => u.toLowerCase() === unit.toLowerCase())
    return bad(sameLetters === undefined
      ? `unknown unit "${unit}"; use one of ${Object.keys(units).join(', ')}`
      : `units are case-sensitive: did you mean "${sameLetters}"?`)
  }

  const scale = 10n ** BigInt(fraction.length)
  const scaled = (BigInt(whole) * scale + BigInt(fraction === '' ? '0' : fraction)) * BigInt(factor)
  if (scaled % scale !== 0n) return bad(`not a whole number of ${wholeName}`)
  const value = scaled / scale
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) return bad('too large')
  return { ok: true, value: Number(value) }
}

function formatExact (value: number, units: ReadonlyArray<readonly [string, number]>, base: string): string {
  for (const [name, factor] of units) {
    if (value !== 0 && value % factor === 0) return `${value / factor}${name}`
  }
  return `${value}${base}`
}

/** How a configuration value is shown in messages: strings quoted, containers named. */
export function describeInput (input: unknown): string {
  if (typeof input === 'string') return JSON.stringify(input)
  if (input === undefined) return 'nothing'
  if (input === null) return 'null'
  if (Array.isArray(input)) return 'a list'
  if (typeof input === 'object') return 'a mapping'
  return String(input)
}
