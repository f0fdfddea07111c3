/**
 * Configuration from environment variables.
 *
 * Rule: a variable is configuration when its name starts with `EDGEFWD_` and the rest contains a
 * double underscore, which separates key segments written in SCREAMING_SNAKE_CASE:
 * `EDGEFWD_STORE__GROUP_COMMIT__MAX_EVENTS` is `store.groupCommit.maxEvents`. Names under the
 * prefix without `__` (`EDGEFWD_CONFIG`, `EDGEFWD_DEBUG`, `EDGEFWD_LOG_FORMAT`) are reserved for
 * settings that are not part of the configuration and are ignored here. A configuration
 * variable that maps to no key is an error, so a typo cannot silently do nothing.
 */
import type { ConfigIssue } from '../errors.js'
import { lookupKey, readValueText, type Assignment, type Assignments } from './assignment.js'
import type { SchemaNode, SectionNode } from './schema-tree.js'
import { closest } from './suggest.js'

export const ENV_PREFIX = 'EDGEFWD_'
const SEPARATOR = '__'

export function isConfigEnvName (name: string): boolean {
  return name.startsWith(ENV_PREFIX) && name.slice(ENV_PREFIX.length).includes(SEPARATOR)
}

/** The variable for a key path: ['store', 'groupCommit', 'maxEvents'] → EDGEFWD_STORE__GROUP_COMMIT__MAX_EVENTS. */
export function envNameFor (path: readonly string[]): string {
  return ENV_PREFIX + path.map(screamingSnake).join(SEPARATOR)
}

export function envAssignments (env: Readonly<Record<string, string | undefined>>, tree: SchemaNode): Assignments {
  const assignments: Assignment[] = []
  const issues: ConfigIssue[] = []
  const names = Object.keys(env).filter(isConfigEnvName).sort()

  for (const name of names) {
    const text = env[name]
    if (text === undefined) continue
    const source = `env ${name}`
    const segments = name.slice(ENV_PREFIX.length).split(SEPARATOR)
    const found = lookupKey(tree, segments, keyForSegment)

    switch (found.kind) {
      case 'leaf':
        assignments.push({ path: found.path, value: readValueText(text, found.leaf), origin: { source } })
        break
      case 'unknown': {
        if (found.segment === '') {
          const message = 'empty key segment: separate segments with exactly two underscores'
          issues.push({ source, path: found.path.join('.'), message })
          break
        }
        const path = [...found.path, camelCase(found.segment)].join('.')
        const siblings = [...found.section.children].map(([key, child]) =>
          ({ key, screaming: screamingSnake(key), label: envNameFor([...found.path, key]) + (child.kind === 'section' ? '__...' : '') }))
        const suggestion = closest(found.segment, siblings.map(sibling => sibling.screaming))
        const suggested = siblings.find(sibling => sibling.screaming === suggestion)
        issues.push({
          source,
          path,
          message: suggested === undefined
            ? `unknown key; the variables here are ${siblings.map(sibling => sibling.label).join(', ')}`
            : `unknown key (did you mean ${suggested.label}?)`,
        })
        break
      }
      case 'section':
        issues.push({
          source,
          path: found.path.join('.'),
          message: `names a section, not a key; set one of its keys, e.g. ${envNameFor(found.example)}`,
        })
        break
      case 'past-leaf':
        issues.push({ source, path: found.path.join('.'), message: 'this key has no sub-keys' })
        break
    }
  }
  return { assignments, issues }
}

function keyForSegment (section: SectionNode, segment: string): string | undefined {
  const wanted = segment.toUpperCase()
  for (const key of section.children.keys()) {
    if (screamingSnake(key) === wanted) return key
  }
  return undefined
}

function screamingSnake (key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()
}

function camelCase (segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase())
}
