/**
 * Device id and stream patterns in the configuration: `*` matches any run of characters (also
 * none), `?` exactly one; everything else is literal. Ids and streams are printable ASCII, so
 * there is no escaping syntax and no character classes.
 */
export function isGlob (pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?')
}

export function globToRegExp (pattern: string): RegExp {
  let source = ''
  for (const c of pattern) {
    if (c === '*') source += '.*'
    else if (c === '?') source += '.'
    else source += c.replace(/[.+^${}()|[\]\\/-]/g, '\\$&')
  }
  return new RegExp(`^${source}$`, 's')
}

/** A compiled pattern; an absent pattern matches everything. */
export type Matcher = (text: string) => boolean

export function matcher (pattern: string | undefined): Matcher {
  if (pattern === undefined) return () => true
  if (!isGlob(pattern)) return (text) => text === pattern
  const re = globToRegExp(pattern)
  return (text) => re.test(text)
}
