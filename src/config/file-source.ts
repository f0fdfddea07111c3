/**
 * Reads a configuration document (YAML, and therefore JSON) into a plain object plus the line
 * of every key, so that schema problems can point at the line they came from.
 */
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument } from 'yaml'
import { ConfigError, type ConfigIssue } from '../errors.js'
import { describeInput } from './units.js'

export interface Origin {
  /** A file path, `env EDGEFWD_...` or `--set`. */
  source: string
  line?: number
}

/** Where each dotted key path came from. */
export type Origins = Map<string, Origin>

export interface ParsedDocument {
  value: Record<string, unknown>
  origins: Origins
}

/** @throws ConfigError EDGEFWD_ERR_CONFIG_PARSE on a syntax error, _INVALID when the top level is not a mapping. */
export function parseConfigDocument (text: string, source: string): ParsedDocument {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true })

  if (doc.errors.length > 0) {
    const issues = doc.errors.map((err): ConfigIssue => {
      const position = err.linePos?.[0]
      const message = (err.message.split('\n')[0] ?? err.message).replace(/ at line \d+, column \d+:?$/, '')
      return position === undefined
        ? { source, path: '', message }
        : { source, path: '', line: position.line, message: `${message} (column ${position.col})` }
    })
    throw new ConfigError('EDGEFWD_ERR_CONFIG_PARSE', issues, { hint: 'fix the YAML/JSON syntax at the line shown' })
  }

  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    // Aliases are resolved only here: an unknown anchor or an alias bomb surfaces as a throw.
    const message = err instanceof Error ? err.message : String(err)
    throw new ConfigError('EDGEFWD_ERR_CONFIG_PARSE', [{ source, path: '', message }], { cause: err })
  }

  if (value === null || value === undefined) return { value: {}, origins: new Map() }
  if (!isMap(doc.contents) || typeof value !== 'object' || Array.isArray(value)) {
    const line = doc.contents?.range === undefined ? 1 : lineCounter.linePos(doc.contents.range[0]).line
    throw new ConfigError('EDGEFWD_ERR_CONFIG_INVALID', [{
      source,
      path: '',
      line,
      message: `expected a mapping of sections (such as "store:") at the top level, got ${describeInput(value)}`,
    }])
  }

  const origins: Origins = new Map()
  recordOrigins(doc.contents, '', source, lineCounter, origins)
  return { value: value as Record<string, unknown>, origins }
}

function recordOrigins (node: unknown, path: string, source: string, lines: LineCounter, origins: Origins): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
      const keyPath = path === '' ? key : `${path}.${key}`
      const line = lineOf(pair.key, lines) ?? lineOf(pair.value, lines)
      origins.set(keyPath, line === undefined ? { source } : { source, line })
      recordOrigins(pair.value, keyPath, source, lines, origins)
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => {
      const itemPath = `${path}.${index}`
      const line = lineOf(item, lines)
      origins.set(itemPath, line === undefined ? { source } : { source, line })
      recordOrigins(item, itemPath, source, lines, origins)
    })
  }
}

function lineOf (node: unknown, lines: LineCounter): number | undefined {
  return isNode(node) && node.range != null ? lines.linePos(node.range[0]).line : undefined
}
