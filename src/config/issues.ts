/**
 * Turns zod's issues into ConfigIssues that name the source, the line and what was expected,
 * in edgefwd's own words rather than zod's ("expected one of "sync", "relaxed", got "fast"").
 */
import type { z } from 'zod'
import type { ConfigIssue } from '../errors.js'
import type { Origin, Origins } from './file-source.js'
import { nodeAt, type SchemaNode } from './schema-tree.js'
import { closest } from './suggest.js'
import { describeInput } from './units.js'

type ZodIssue = z.core.$ZodIssue

export function toConfigIssues (zodIssues: readonly ZodIssue[], input: unknown, origins: Origins,
  tree: SchemaNode, fallback: Origin): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  for (const issue of zodIssues) {
    const path = issue.path.map(String)
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        issues.push(located([...path, key], unknownKeyMessage(tree, path, key), origins, fallback))
      }
    } else {
      issues.push(located(path, describeIssue(issue, valueAt(input, path)), origins, fallback))
    }
  }
  return issues
}

/** File issues first, in line order, then environment, then `--set`. */
export function sortIssues (issues: readonly ConfigIssue[]): ConfigIssue[] {
  const rank = (issue: ConfigIssue): number =>
    issue.source.startsWith('env ') ? 1 : issue.source === '--set' ? 2 : 0
  return [...issues].sort((a, b) => rank(a) - rank(b) || (a.line ?? 0) - (b.line ?? 0))
}

function located (path: readonly string[], message: string, origins: Origins, fallback: Origin): ConfigIssue {
  // A value's own origin, or that of the nearest enclosing key (the list holding a bad item).
  let origin: Origin | undefined
  for (let length = path.length; length > 0 && origin === undefined; length--) {
    origin = origins.get(path.slice(0, length).join('.'))
  }
  const { source, line } = origin ?? fallback
  return line === undefined ? { source, path: path.join('.'), message } : { source, path: path.join('.'), line, message }
}

function unknownKeyMessage (tree: SchemaNode, parentPath: readonly string[], key: string): string {
  const parent = nodeAt(tree, parentPath)
  if (parent?.kind !== 'section') return 'unknown key'
  if (key.includes('.') && nodeAt(parent, key.split('.')) !== undefined) {
    return 'unknown key (write dotted keys as nested mappings)'
  }
  const suggestion = closest(key, parent.children.keys())
  if (suggestion !== undefined) return `unknown key (did you mean ${JSON.stringify(suggestion)}?)`
  return `unknown key; the keys here are ${[...parent.children.keys()].map(k => JSON.stringify(k)).join(', ')}`
}

const EXPECTED: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
}

function describeIssue (issue: ZodIssue, value: unknown): string {
  const got = describeInput(value)
  switch (issue.code) {
    case 'invalid_type': {
      const expected = EXPECTED[issue.expected] ?? issue.expected
      const quoteHint = issue.expected === 'string' && (typeof value === 'number' || typeof value === 'boolean')
        ? ` (quote it: "${String(value)}")`
        : ''
      return `expected ${expected}, got ${got}${quoteHint}`
    }
    case 'invalid_value':
      return `expected one of ${issue.values.map(v => JSON.stringify(v)).join(', ')}, got ${got}`
    case 'too_small':
      if (issue.origin === 'string' && issue.minimum === 1) return 'must not be empty'
      return `${boundText('at least', 'more than', issue.minimum, issue.inclusive, issue.origin)}, got ${measured(value, got)}`
    case 'too_big':
      return `${boundText('at most', 'less than', issue.maximum, issue.inclusive, issue.origin)}, got ${measured(value, got)}`
    case 'invalid_format':
      return `${issue.message}, got ${got}`
    case 'custom':
      return issue.message
    default:
      return `${issue.message}, got ${got}`
  }
}

function boundText (inclusiveWord: string, exclusiveWord: string, bound: number | bigint,
  inclusive: boolean | undefined, origin: string): string {
  const word = inclusive === false ? exclusiveWord : inclusiveWord
  if (origin === 'string') return `must be ${word} ${bound} characters long`
  if (origin === 'array' || origin === 'set') return `must have ${word} ${bound} items`
  return `must be ${word} ${bound}`
}

/** Strings and lists are judged by length, so say how long the value was. */
function measured (value: unknown, got: string): string {
  if (typeof value === 'string') return `${got} (${value.length} characters)`
  if (Array.isArray(value)) return `${value.length} items`
  return got
}

function valueAt (input: unknown, path: readonly string[]): unknown {
  let current = input
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined
    current = (current as Record<string, unknown>)[key]
  }
  return current
}
