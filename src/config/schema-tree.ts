/**
 * The key tree of a configuration schema, read from the zod schema itself so that environment
 * variables, `--set`, "did you mean" suggestions and the docs test never need a second list.
 */
import { z } from 'zod'

export type SchemaNode = SectionNode | LeafNode

export interface SectionNode {
  kind: 'section'
  children: ReadonlyMap<string, SchemaNode>
}

export interface LeafNode {
  kind: 'leaf'
  /**
   * True when the schema wants a string (string or string enum): values from the environment
   * and `--set` are then kept verbatim instead of being read as YAML scalars, so that
   * `EDGEFWD_GATEWAY__ID=0123` is the string "0123", not the number 123.
   */
  wantsString: boolean
}

export function schemaTree (schema: z.ZodType): SchemaNode {
  const inner = unwrap(schema)
  if (inner instanceof z.ZodObject) {
    const children = new Map<string, SchemaNode>()
    for (const [key, child] of Object.entries(inner.shape as Record<string, z.ZodType>)) {
      children.set(key, schemaTree(child))
    }
    return { kind: 'section', children }
  }
  const wantsString = inner instanceof z.ZodString ||
    (inner instanceof z.ZodEnum && inner.options.every(option => typeof option === 'string'))
  return { kind: 'leaf', wantsString }
}

/** Every leaf key as a dotted path, in schema order, e.g. "store.groupCommit.window". */
export function leafPaths (node: SchemaNode, prefix = ''): string[] {
  if (node.kind === 'leaf') return [prefix]
  const paths: string[] = []
  for (const [key, child] of node.children) {
    paths.push(...leafPaths(child, prefix === '' ? key : `${prefix}.${key}`))
  }
  return paths
}

/** The node at a path of keys, or undefined when there is no such key. */
export function nodeAt (root: SchemaNode, path: readonly string[]): SchemaNode | undefined {
  let node: SchemaNode | undefined = root
  for (const key of path) {
    if (node?.kind !== 'section') return undefined
    node = node.children.get(key)
  }
  return node
}

function unwrap (schema: z.ZodType): z.ZodType {
  let current = schema
  for (;;) {
    if (current instanceof z.ZodDefault || current instanceof z.ZodPrefault ||
      current instanceof z.ZodOptional || current instanceof z.ZodReadonly) {
      current = current.unwrap() as z.ZodType
    } else {
      return current
    }
  }
}
