/**
 * Building blocks for src/config/schema.ts, so that every section and unit-bearing field is
 * declared the same way and a new section is one `section({...})` call.
 */
import { z } from 'zod'
import { formatDuration, formatSize, parseDuration, parseSize, type UnitParse } from './units.js'

interface Range { min?: number, max?: number }

const EMPTY = {} as never

/**
 * A strict (unknown keys rejected), read-only section whose absent keys take their defaults.
 * `prefault({})` rather than `default({})`: zod returns a `default` value as is, while a
 * prefault is parsed, which is what fills in the defaults of the keys inside. Every key of a
 * section therefore needs a default or `.optional()`; the "defaults" test fails otherwise
 * (TypeScript cannot check `{}` against the input type of a generic shape, hence the cast).
 */
export function section<Shape extends z.ZodRawShape> (shape: Shape) {
  return z.strictObject(shape).readonly().prefault(EMPTY)
}

/** Like section() for objects that need a cross-field check before they are frozen. */
export function checkedSection<Shape extends z.ZodRawShape> (shape: Shape,
  check: (value: z.output<z.ZodObject<Shape, z.core.$strict>>, ctx: z.RefinementCtx) => void) {
  return z.strictObject(shape).superRefine(check).readonly().prefault(EMPTY)
}

/** A byte count written as a number or a string like "64MiB"; the output is bytes. */
export function size (range: Range = {}) {
  return unitField(parseSize, formatSize, range)
}

/** Like size(), or the word `off`. */
export function sizeOrOff (range: Range = {}) {
  const bytes = size(range)
  return z.unknown().transform((input, ctx): number | 'off' => {
    if (input === 'off' || input === false) return 'off'
    const parsed = bytes.safeParse(input)
    if (parsed.success) return parsed.data
    const message = parsed.error.issues[0]?.message ?? 'invalid'
    ctx.addIssue({ code: 'custom', message: `${message}, or off`, input })
    return z.NEVER
  })
}

/** A duration written as milliseconds or a string like "5s"; the output is milliseconds. */
export function duration (range: Range = {}) {
  return unitField(parseDuration, formatDuration, range)
}

function unitField (parse: (input: unknown) => UnitParse, format: (n: number) => string, range: Range) {
  return z.unknown().transform((input, ctx): number => {
    const parsed = parse(input)
    if (!parsed.ok) {
      ctx.addIssue({ code: 'custom', message: parsed.message, input })
      return z.NEVER
    }
    const shown = typeof input === 'string' ? JSON.stringify(input) : format(parsed.value)
    if (range.min !== undefined && parsed.value < range.min) {
      ctx.addIssue({ code: 'custom', message: `must be at least ${format(range.min)}, got ${shown}`, input })
      return z.NEVER
    }
    if (range.max !== undefined && parsed.value > range.max) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${format(range.max)}, got ${shown}`, input })
      return z.NEVER
    }
    return parsed.value
  })
}

/**
 * One string, or a list of them: `oneOrList(check, ...)` reads `x` as `[x]`, so consumers see a
 * list either way. `check` gives the problem with one element, or undefined when it is fine.
 */
export function oneOrList (check: (value: string) => string | undefined, range: { max: number, what: string }) {
  return z.unknown().transform((input, ctx): readonly string[] => {
    const list = typeof input === 'string' ? [input] : input
    if (!Array.isArray(list) || list.length === 0) {
      ctx.addIssue({ code: 'custom', message: `must be ${range.what}, or a non-empty list of them`, input })
      return z.NEVER
    }
    if (list.length > range.max) {
      ctx.addIssue({ code: 'custom', message: `must list at most ${range.max}, got ${list.length}`, input })
      return z.NEVER
    }
    const seen = new Set<string>()
    for (const [index, value] of list.entries()) {
      const problem = typeof value === 'string' ? check(value) : `must be ${range.what}`
      const path = typeof input === 'string' ? [] : [index]
      if (problem !== undefined) {
        ctx.addIssue({ code: 'custom', message: problem, input: value, path })
        return z.NEVER
      }
      if (seen.has(value as string)) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is listed twice`, input: value, path })
        return z.NEVER
      }
      seen.add(value as string)
    }
    return Object.freeze([...list as string[]])
  })
}
