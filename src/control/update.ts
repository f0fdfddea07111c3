/**
 * Remote configuration updates: the formats, and the decision whether to apply one.
 *
 * ## The document (the bytes that are signed)
 * A UTF-8 JSON object of at most 256 KiB:
 *   { "version": <positive safe integer>, "restart"?: boolean (default false),
 *     "comment"?: string, "config": { ...a partial edgefwd configuration... } }
 * Unknown top-level keys make it invalid. `config` is an overlay on the gateway's local
 * configuration input (its file, before defaults): objects merge key by key, arrays and scalars
 * (including null) replace. Overlays are not cumulative: each update carries the whole remote
 * overlay, and the gateway builds local + that overlay, so an update that drops a key returns
 * it to the local value. The overlay may not contain `gateway` (the identity), `control` (the
 * trust anchor) or `mcp` (what agents on the gateway may read and do): they are never changed
 * remotely. No key named `__proto__` is accepted anywhere.
 *
 * ## The message (published retained on `<prefix>/<gateway>/config` or the fleet topic)
 * UTF-8 JSON, at most 256 KiB, made by `edgefwd config sign`:
 *   { "document": "<base64 of the exact document bytes>", "signature": "<base64>",
 *     "algorithm": "ed25519" | "rsa-pss-sha256",
 *     "keyId": "<first 16 hex digits of the SHA-256 of the signer's SPKI DER public key>" }
 * Signing and verification: signing.ts. Both size limits are the same 256 KiB, so with base64's
 * 4/3 the usable document is about 190 KiB: far beyond any real overlay.
 *
 * ## Deciding (decideUpdate)
 * In this order, the first failure wins: the signature (`bad_signature`), the document's shape
 * (`invalid`), the version (`old_version` unless higher than every version processed before:
 * replaying an old signed update must not roll a gateway back), the configuration it produces
 * (`invalid`, with the schema's issues), then the restart check: keys outside LIVE_KEYS need a
 * restart, and an update changing one must say `restart: true` (`restart_required` otherwise),
 * so that an operator never restarts a fleet by surprise. `restart: true` is a permission, not a
 * command: an update changing only live keys is applied live even when it says restart: true.
 */
import type { Config } from '../config/index.js'
import { ConfigError } from '../errors.js'
import { MAX_MESSAGE_BYTES, verifyMessage, type OperatorKey } from './signing.js'

export const MAX_DOCUMENT_BYTES = 256 * 1024

export interface UpdateDocument {
  version: number
  restart: boolean
  comment?: string
  config: Record<string, unknown>
}

export type ParseResult = { ok: true, doc: UpdateDocument } | { ok: false, reason: 'invalid', detail: string }

/**
 * Configuration paths applied without a restart, with everything under them. Each one is read
 * by its module at the moment of use (a rule lookup, a token bucket, a batch cut), so swapping
 * the value is enough; everything else shapes a listener, a connection or the store's files.
 */
export const LIVE_KEYS = [
  'ingest.rules',
  'ingest.rateLimit',
  'ingest.devices',
  'ingest.maxClockSkew',
  'ingest.allowUnknownDevices',
  'store.ttl',
  'uplink.batch',
  'uplink.rateLimit',
  'uplink.dailyBudget',
  'uplink.heartbeatInterval',
  'log.level',
] as const

/** Sections an update may never contain. */
const FORBIDDEN_SECTIONS = ['gateway', 'control', 'mcp'] as const
const DOCUMENT_KEYS = ['version', 'restart', 'comment', 'config']

export type Decision =
  | { result: 'bad_signature' | 'old_version' | 'invalid', detail: string, version?: number }
  | { result: 'restart_required', version: number, restartKeys: string[], detail: string }
  | { result: 'accept', version: number, doc: UpdateDocument, config: Config, live: string[], restart: string[], needsRestart: boolean }

export interface DecideInput {
  /** The message as received. */
  message: Uint8Array
  keys: readonly OperatorKey[]
  /** The highest version processed before (0 when none). */
  highestVersion: number
  /** Local configuration input + overlay, validated. @throws ConfigError when invalid */
  buildConfig: (overlay: Record<string, unknown>) => Config
  /** The configuration running now. */
  current: Config
}

export function parseDocument (bytes: Uint8Array): ParseResult {
  if (bytes.byteLength > MAX_DOCUMENT_BYTES) return invalid(`the document is ${bytes.byteLength} bytes, over the ${MAX_DOCUMENT_BYTES}-byte limit`)
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    return invalid(`the document is not UTF-8 JSON: ${err instanceof Error ? err.message : String(err)}`)
  }
  if (!isPlainObject(value)) return invalid('the document is not a JSON object')
  const unknown = Object.keys(value).filter(k => !DOCUMENT_KEYS.includes(k))
  if (unknown.length > 0) return invalid(`unknown top-level keys: ${unknown.join(', ')} (allowed: ${DOCUMENT_KEYS.join(', ')})`)

  const { version, restart, comment, config } = value
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    return invalid(`"version" must be a positive whole number (at most ${Number.MAX_SAFE_INTEGER}), got ${JSON.stringify(version) ?? 'nothing'}`)
  }
  if (restart !== undefined && typeof restart !== 'boolean') return invalid(`"restart" must be true or false, got ${JSON.stringify(restart)}`)
  if (comment !== undefined && typeof comment !== 'string') return invalid(`"comment" must be a string, got ${JSON.stringify(comment)}`)
  if (!isPlainObject(config)) return invalid('"config" must be an object (the overlay on the local configuration)')
  const forbidden = FORBIDDEN_SECTIONS.filter(s => Object.hasOwn(config, s))
  if (forbidden.length > 0) {
    return invalid(`"config" may not contain ${forbidden.map(s => `"${s}"`).join(' or ')}: the gateway's identity and its operator keys are never changed remotely`)
  }
  const proto = findProtoKey(config, 'config')
  if (proto !== undefined) return invalid(`${proto}: a key named "__proto__" is not allowed`)

  const doc: UpdateDocument = { version, restart: restart ?? false, config }
  if (comment !== undefined) doc.comment = comment
  return { ok: true, doc }
}

/**
 * The dotted leaf paths whose values differ, sorted, split into live and restart. Arrays are
 * compared whole and reported at their own path; an object present on one side only is
 * reported by its leaves (or its own path when it has none, e.g. a device added as `{}`).
 */
export function classifyChanges (before: Config, after: Config): { live: string[], restart: string[] } {
  const changed: string[] = []
  diff(before, after, '', changed)
  changed.sort()
  return {
    live: changed.filter(isLive),
    restart: changed.filter(path => !isLive(path)),
  }
}

export function decideUpdate (input: DecideInput): Decision {
  if (input.message.byteLength > MAX_MESSAGE_BYTES) {
    return { result: 'invalid', detail: `the message is ${input.message.byteLength} bytes, over the ${MAX_MESSAGE_BYTES}-byte limit` }
  }
  const verified = verifyMessage(input.message, input.keys)
  if (!verified.ok) return { result: 'bad_signature', detail: verified.detail }

  const parsed = parseDocument(verified.document)
  if (!parsed.ok) return { result: 'invalid', detail: parsed.detail }
  const { doc } = parsed
  const { version } = doc

  if (version <= input.highestVersion) {
    return { result: 'old_version', version, detail: `version ${version} is not newer than version ${input.highestVersion}, the highest processed before` }
  }

  let config: Config
  try {
    config = input.buildConfig(doc.config)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    const issues = err.issues.map(i => i.path === '' ? i.message : `${i.path}: ${i.message}`)
    return { result: 'invalid', version, detail: issues.join('; ') }
  }

  const { live, restart } = classifyChanges(input.current, config)
  if (restart.length > 0 && !doc.restart) {
    return {
      result: 'restart_required',
      version,
      restartKeys: restart,
      detail: `changes ${restart.join(', ')}, which need a restart, but the document does not say "restart": true`,
    }
  }
  return { result: 'accept', version, doc, config, live, restart, needsRestart: restart.length > 0 }
}

function isLive (path: string): boolean {
  return LIVE_KEYS.some(key => path === key || path.startsWith(`${key}.`))
}

function diff (a: unknown, b: unknown, path: string, out: string[]): void {
  if (isPlainObject(a) || isPlainObject(b)) {
    // One side may be absent or not an object (an optional section); compare against nothing.
    const left = isPlainObject(a) ? a : undefined
    const right = isPlainObject(b) ? b : undefined
    if (left === undefined || right === undefined) {
      const present = (left ?? right) as Record<string, unknown>
      const other = left === undefined ? a : b
      if (other !== undefined || Object.keys(present).length === 0) {
        out.push(path)
        return
      }
    }
    const keys = new Set([...Object.keys(left ?? {}), ...Object.keys(right ?? {})])
    for (const key of keys) diff(left?.[key], right?.[key], path === '' ? key : `${path}.${key}`, out)
    return
  }
  if (!sameValue(a, b)) out.push(path)
}

function sameValue (a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameValue(x, b[i]))
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a)
    return keys.length === Object.keys(b).length && keys.every(k => Object.hasOwn(b, k) && sameValue(a[k], b[k]))
  }
  return Object.is(a, b)
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function findProtoKey (value: unknown, path: string): string | undefined {
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = findProtoKey(item, `${path}[${i}]`)
      if (found !== undefined) return found
    }
  } else if (isPlainObject(value)) {
    for (const [key, child] of Object.entries(value)) {
      if (key === '__proto__') return `${path}.${key}`
      const found = findProtoKey(child, `${path}.${key}`)
      if (found !== undefined) return found
    }
  }
  return undefined
}

function invalid (detail: string): ParseResult {
  return { ok: false, reason: 'invalid', detail }
}
