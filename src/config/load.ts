/**
 * Loads the configuration: defaults < file < environment < `--set` overrides, validated once
 * against the schema, every problem reported together, the result deep-frozen.
 */
import { readFile } from 'node:fs/promises'
import { ConfigError, type ConfigIssue } from '../errors.js'
import type { Assignment } from './assignment.js'
import { envAssignments } from './env-source.js'
import { parseConfigDocument, type Origin, type Origins } from './file-source.js'
import { sortIssues, toConfigIssues } from './issues.js'
import { overrideAssignments } from './override-source.js'
import { mergeOverlay, overlayPaths } from './overlay.js'
import { configSchema, type Config } from './schema.js'
import { schemaTree } from './schema-tree.js'

export interface LoadConfigOptions {
  /** A YAML or JSON file; absent means defaults, environment and overrides only. */
  file?: string
  /** Usually process.env, passed in by the CLI; only `EDGEFWD_*__*` names are read. */
  env?: Readonly<Record<string, string | undefined>>
  /** `KEY=VALUE` strings from repeated `--set` flags, applied in order. */
  overrides?: readonly string[]
  /**
   * A remote configuration update's overlay (src/control), applied last: mappings merge key by
   * key, anything else (lists included) replaces. `source` names it in messages.
   */
  remote?: { overlay: Readonly<Record<string, unknown>>, source: string }
  /**
   * 'run': also require what `edgefwd run` cannot start without (the schema leaves them optional
   * for the commands that do not connect): uplink.url and the TLS files. `config check` asks for
   * the same, so "ok" means run will start.
   */
  purpose?: 'run'
}

/** Builds the configuration again with a remote overlay, from the sources read once. */
export type ConfigBuilder = (remote?: LoadConfigOptions['remote']) => Config

const tree = schemaTree(configSchema)

/**
 * @throws ConfigError EDGEFWD_ERR_CONFIG_READ (file unreadable), EDGEFWD_ERR_CONFIG_PARSE
 * (YAML/JSON syntax) or EDGEFWD_ERR_CONFIG_INVALID (schema), listing every issue found.
 */
export async function loadConfig (options: LoadConfigOptions = {}): Promise<Config> {
  const { file, ...rest } = options
  if (file === undefined) return buildConfig(undefined, rest)
  return buildConfig({ text: await readConfigFile(file), source: file }, rest)
}

/**
 * Reads the file once and returns a builder that validates the configuration with or without a
 * remote overlay (the file, environment and `--set` as they were at start). Throws as loadConfig.
 */
export async function configBuilder (options: Omit<LoadConfigOptions, 'remote'> = {}): Promise<ConfigBuilder> {
  const { file, ...rest } = options
  const document = file === undefined ? undefined : { text: await readConfigFile(file), source: file }
  // Built (and so validated) once: a call without an overlay gives this same frozen configuration.
  const local = buildConfig(document, rest)
  return (remote) => remote === undefined ? local : buildConfig(document, { ...rest, remote })
}

/** The same as loadConfig() for a document already in memory; `source` names it in messages. */
export function parseConfigText (text: string, source: string,
  options: Omit<LoadConfigOptions, 'file'> = {}): Config {
  return buildConfig({ text, source }, options)
}

function buildConfig (document: { text: string, source: string } | undefined,
  options: Omit<LoadConfigOptions, 'file'>): Config {
  const parsed = document === undefined
    ? { value: {}, origins: new Map<string, Origin>() }
    : parseConfigDocument(document.text, document.source)
  const raw = parsed.value
  const origins = parsed.origins

  const fromEnv = envAssignments(options.env ?? {}, tree)
  const fromFlags = overrideAssignments(options.overrides ?? [], tree)
  for (const assignment of [...fromEnv.assignments, ...fromFlags.assignments]) {
    apply(raw, origins, assignment)
  }
  const remote = options.remote === undefined ? { raw, issues: [] } : applyRemote(raw, origins, options.remote)

  const issues: ConfigIssue[] = [...fromEnv.issues, ...fromFlags.issues, ...remote.issues]
  const fallback: Origin = { source: document?.source ?? 'config' }
  const result = configSchema.safeParse(remote.raw)
  if (!result.success) issues.push(...toConfigIssues(result.error.issues, remote.raw, origins, tree, fallback))
  else if (options.purpose === 'run') issues.push(...runRequirementIssues(result.data, fallback.source))
  if (issues.length > 0 || !result.success) {
    throw new ConfigError('EDGEFWD_ERR_CONFIG_INVALID', sortIssues(issues), {
      hint: 'see docs/config.md for every key, its type and its default',
    })
  }
  return deepFreeze(result.data)
}

/** The keys `edgefwd run` needs that the schema leaves optional, each missing one as an issue. */
function runRequirementIssues (config: Config, source: string): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  if (config.uplink.url === undefined) issues.push({ source, path: 'uplink.url', message: 'is required by edgefwd run: the broker to deliver to, mqtts://HOST[:PORT]' })
  for (const key of ['ca', 'cert', 'key'] as const) {
    if (config.tls[key] === undefined) issues.push({ source, path: `tls.${key}`, message: 'is required by edgefwd run (it connects with mutual TLS only): a path to a PEM file' })
  }
  return issues
}

function apply (raw: Record<string, unknown>, origins: Origins, { path, value, origin }: Assignment): void {
  let target = raw
  for (const key of path.slice(0, -1)) {
    const next = target[key] ?? (target[key] = {})
    // Keep a lower layer's non-mapping (say `store: 5` in the file) so its error is reported.
    if (next === null || typeof next !== 'object' || Array.isArray(next)) return
    target = next as Record<string, unknown>
  }
  const last = path.at(-1)
  if (last === undefined) return
  target[last] = value

  const dotted = path.join('.')
  for (const key of origins.keys()) {
    if (key.startsWith(`${dotted}.`)) origins.delete(key)
  }
  origins.set(dotted, origin)
}

/** Keys an overlay may not use: the schema would report them as unknown anyway, but say it plainly. */
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

/**
 * The remote overlay merged onto the raw input (after the environment and --set: an update the
 * operator signed wins), its keys' origins set to the update, so an invalid value names it.
 */
function applyRemote (raw: Record<string, unknown>, origins: Origins, remote: NonNullable<LoadConfigOptions['remote']>): { raw: Record<string, unknown>, issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = []
  const origin: Origin = { source: remote.source }
  for (const path of overlayPaths(raw, remote.overlay)) {
    const unsafe = path.findIndex(k => UNSAFE_KEYS.has(k))
    if (unsafe >= 0) { issues.push({ source: remote.source, path: path.slice(0, unsafe + 1).join('.'), message: 'unknown key' }); continue }
    const dotted = path.join('.')
    for (const key of origins.keys()) if (key === dotted || key.startsWith(`${dotted}.`)) origins.delete(key)
    origins.set(dotted, origin)
  }
  return { raw: issues.length > 0 ? raw : mergeOverlay(raw, remote.overlay), issues }
}

async function readConfigFile (file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const reason = code === 'ENOENT'
      ? 'no such file'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EISDIR' ? 'is a directory, not a file' : (err as Error).message
    throw new ConfigError('EDGEFWD_ERR_CONFIG_READ', [{ source: file, path: '', message: `cannot read the configuration file: ${reason}` }], {
      cause: err,
      hint: 'check the path and its permissions',
    })
  }
}

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}
