/**
 * Single-key settings from the environment and from `--set`: resolving a key path against the
 * schema tree and reading the value text the same way for both sources.
 */
import { parse as parseYaml } from 'yaml'
import type { ConfigIssue } from '../errors.js'
import type { Origin } from './file-source.js'
import type { LeafNode, SchemaNode, SectionNode } from './schema-tree.js'

export interface Assignment {
  path: readonly string[]
  value: unknown
  origin: Origin
}

export interface Assignments {
  assignments: Assignment[]
  issues: ConfigIssue[]
}

export type KeyLookup =
  | { kind: 'leaf', path: string[], leaf: LeafNode }
  /** `segment` (at index `path.length`) names no key of the section at `path`. */
  | { kind: 'unknown', path: string[], segment: string, section: SectionNode }
  /** The segments stop at a section; `example` is the path of one of its leaves. */
  | { kind: 'section', path: string[], example: string[] }
  /** The segments go on past the leaf at `path`. */
  | { kind: 'past-leaf', path: string[] }

/** Walks `segments` down the tree; `keyFor` turns a segment into a schema key, if any matches. */
export function lookupKey (root: SchemaNode, segments: readonly string[],
  keyFor: (section: SectionNode, segment: string) => string | undefined): KeyLookup {
  let node = root
  const path: string[] = []
  for (const segment of segments) {
    if (node.kind === 'leaf') return { kind: 'past-leaf', path }
    const key = keyFor(node, segment)
    const child = key === undefined ? undefined : node.children.get(key)
    if (key === undefined || child === undefined) return { kind: 'unknown', path, segment, section: node }
    path.push(key)
    node = child
  }
  if (node.kind === 'leaf') return { kind: 'leaf', path, leaf: node }
  return { kind: 'section', path, example: [...path, ...firstLeaf(node)] }
}

/**
 * Values from the environment and `--set` are YAML scalars (so `10` is a number and `[a, b]`
 * a list) unless the key wants a string, in which case the text is kept as typed. Text that is
 * not valid YAML is passed on as a string for the schema to judge.
 */
export function readValueText (text: string, leaf: LeafNode): unknown {
  if (leaf.wantsString) return text
  try {
    return parseYaml(text)
  } catch {
    return text
  }
}

function firstLeaf (section: SectionNode): string[] {
  const first = section.children.entries().next()
  if (first.done === true) return []
  const [key, child] = first.value
  return child.kind === 'leaf' ? [key] : [key, ...firstLeaf(child)]
}
