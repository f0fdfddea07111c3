/**
 * The process logger: pino JSON lines, one child per module (`{ module: 'store' }`).
 *
 * Written synchronously to stdout by default. pino's worker-thread transports are not used:
 * they load files by path at run time, which breaks the single-file bundle, and a gateway's
 * stdout goes to journald anyway. Synchronous writes also mean a line logged just before a
 * crash or power cut has reached the kernel.
 *
 * Key material and secrets are redacted by field name at the top level and one or two levels
 * deep (`key`, `tls.key`, `uplink.tls.key`), whatever the object is. A consequence: a field
 * named `key` is always censored, so name non-secret keys something else (`storeKey`,
 * `mapKey`). Secrets inside strings (a URL with a password) are not found: do not log them.
 */
import pino from 'pino'

export type Logger = pino.Logger

/** Field names whose values are secrets wherever they appear. */
const SECRET_FIELDS = ['key', 'privateKey', 'passphrase', 'password', 'secret', 'token', 'authorization'] as const

export const DEFAULT_REDACT_PATHS: readonly string[] =
  SECRET_FIELDS.flatMap((name) => [name, `*.${name}`, `*.*.${name}`])

export const REDACTED = '[redacted]'

export interface LoggerOptions {
  /** pino level name: fatal, error, warn, info, debug, trace or silent. */
  level: string
  /** Paths redacted in addition to DEFAULT_REDACT_PATHS (pino redact syntax). */
  redact?: string[]
  /** Where lines go; stdout, synchronously, when absent. */
  destination?: pino.DestinationStream
  /** Bindings on every line, replacing pino's default `{ pid, hostname }`. */
  base?: object
}

/**
 * Children of each root logger, so setLogLevel can reach them: pino copies the level into a child
 * when it is made, and a later change of the parent's level does not reach it. Weak: a child
 * (one per connection, say) must not be kept alive by this list.
 */
const familyOf = new WeakMap<Logger, Set<WeakRef<Logger>>>()

export function createLogger (opts: LoggerOptions): Logger {
  const family = new Set<WeakRef<Logger>>()
  const options: pino.LoggerOptions = {
    level: opts.level,
    redact: { paths: [...DEFAULT_REDACT_PATHS, ...(opts.redact ?? [])], censor: REDACTED },
    // pino passes this hook on to every child and grandchild.
    onChild: (child) => { family.add(new WeakRef(child)) }
  }
  if (opts.base !== undefined) options.base = { ...opts.base }
  const root = pino(options, opts.destination ?? pino.destination({ dest: 1, sync: true }))
  familyOf.set(root, family)
  return root
}

/** Changes the level of a logger made by createLogger and of every child made from it so far or later. */
export function setLogLevel (root: Logger, level: string): void {
  root.level = level
  const family = familyOf.get(root)
  if (family === undefined) return
  for (const ref of family) {
    const child = ref.deref()
    if (child === undefined) family.delete(ref)
    else child.level = level
  }
}

/** A logger whose lines carry `module`, e.g. childLogger(root, 'store'). */
export function childLogger (parent: Logger, module: string): Logger {
  return parent.child({ module })
}
