/** Configuration from `--set KEY=VALUE` flags, e.g. `--set store.capacity=64MiB`. */
import type { ConfigIssue } from '../errors.js'
import { lookupKey, readValueText, type Assignment, type Assignments } from './assignment.js'
import type { SchemaNode, SectionNode } from './schema-tree.js'
import { closest } from './suggest.js'

export const OVERRIDE_SOURCE = '--set'

export function overrideAssignments (overrides: readonly string[], tree: SchemaNode): Assignments {
  const assignments: Assignment[] = []
  const issues: ConfigIssue[] = []
  const origin = { source: OVERRIDE_SOURCE }

  for (const override of overrides) {
    const equals = override.indexOf('=')
    const key = override.slice(0, Math.max(equals, 0)).trim()
    if (equals < 0 || key === '') {
      issues.push({
        source: OVERRIDE_SOURCE,
        path: '',
        message: `expected KEY=VALUE such as store.capacity=64MiB, got ${JSON.stringify(override)}`,
      })
      continue
    }
    const text = override.slice(equals + 1)
    const found = lookupKey(tree, key.split('.'), keyForSegment)

    switch (found.kind) {
      case 'leaf':
        assignments.push({ path: found.path, value: readValueText(text, found.leaf), origin })
        break
      case 'unknown': {
        const suggestion = closest(found.segment, found.section.children.keys())
        issues.push({
          source: OVERRIDE_SOURCE,
          path: key,
          message: suggestion === undefined
            ? `unknown key; the keys here are ${[...found.section.children.keys()].map(k => JSON.stringify(k)).join(', ')}`
            : `unknown key (did you mean ${JSON.stringify([...found.path, suggestion].join('.'))}?)`,
        })
        break
      }
      case 'section':
        issues.push({
          source: OVERRIDE_SOURCE,
          path: key,
          message: `names a section, not a key; set one of its keys, e.g. ${found.example.join('.')}=...`,
        })
        break
      case 'past-leaf':
        issues.push({ source: OVERRIDE_SOURCE, path: key, message: `${found.path.join('.')} has no sub-keys` })
        break
    }
  }
  return { assignments, issues }
}

function keyForSegment (section: SectionNode, segment: string): string | undefined {
  return section.children.has(segment) ? segment : undefined
}
