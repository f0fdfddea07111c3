/**
 * The persisted state of remote configuration: one JSON file, `<dir>/state.json`.
 *
 *   { "format": 1,
 *     "highestVersion": N,              // highest update version ever processed; never decreases
 *     "current"?:  { "version", "message" },                 // the last good update, as received
 *     "pending"?:  { "version", "message", "previousVersion"?, "appliedAtMs", "restart" },
 *     "lastFailed"?: { "version", "reason", "atMs" } }
 *
 * `pending` is the update on probation. It is written before the update is applied and removed
 * (promoted to `current`, or dropped) when probation ends, so finding it at start means the
 * process died during probation: recoverOnStart() drops it, records it as failed and keeps
 * `current`, the last good. highestVersion is kept too, so the retained bad update is not
 * applied again when the gateway resubscribes.
 *
 * Writes are atomic: a temp file in the same directory (O_EXCL, mode 0600) is written and
 * fsynced, renamed over state.json, then the directory is fsynced. A crash at any point leaves
 * either the old or the new file, never a mix; a leftover temp file is removed at the next
 * open. A file that cannot be parsed (a disk fault, a hand edit) is moved aside to
 * `state.json.corrupt-<ms>` and the store starts empty, logged as EDGEFWD_ERR_CONTROL_STATE:
 * the gateway then runs on its local configuration, which is always a safe place to be.
 */
import { constants } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { access, mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { EdgefwdError, fsErrorReason } from '../errors.js'
import type { Logger } from '../observe/log.js'

export const STATE_FILE = 'state.json'
export const STATE_FORMAT = 1
const DIR_MODE = 0o700
const FILE_MODE = 0o600
const TEMP_FILE = /^state\.json\.[0-9a-f]+\.tmp$/

export interface ControlStateData {
  format: typeof STATE_FORMAT
  highestVersion: number
  current?: { version: number, message: string }
  pending?: { version: number, message: string, previousVersion?: number, appliedAtMs: number, restart: boolean }
  lastFailed?: { version: number, reason: string, atMs: number }
}

export type StateUpdate = ControlStateData | ((data: Readonly<ControlStateData>) => ControlStateData)

export const ROLLBACK_REASON = 'restarted during probation'

export function emptyState (): ControlStateData {
  return { format: STATE_FORMAT, highestVersion: 0 }
}

/**
 * What to do with the state found at start. Pure. A `pending` update means the process died
 * during its probation: it is dropped and recorded as failed, `current` and highestVersion kept.
 */
export function recoverOnStart (data: ControlStateData, nowMs: number = Date.now()): {
  data: ControlStateData
  rolledBack?: { version: number, reason: typeof ROLLBACK_REASON }
} {
  if (data.pending === undefined) return { data }
  const { pending, ...rest } = data
  return {
    data: { ...rest, highestVersion: Math.max(rest.highestVersion, pending.version), lastFailed: { version: pending.version, reason: ROLLBACK_REASON, atMs: nowMs } },
    rolledBack: { version: pending.version, reason: ROLLBACK_REASON },
  }
}

export class ControlStateStore {
  readonly #dir: string
  #data: Readonly<ControlStateData>
  /** Updates run one after another, each on the result of the one before. */
  #queue: Promise<void> = Promise.resolve()

  private constructor (dir: string, data: ControlStateData) {
    this.#dir = dir
    this.#data = deepFreeze(data)
  }

  /**
   * Creates `dir` (0700) if needed and reads state.json; missing means empty, corrupt is moved
   * aside (logged). @throws EdgefwdError EDGEFWD_ERR_CONTROL_STATE when the directory cannot be
   * created or written, or the file cannot be read.
   */
  static async open (dir: string, logger?: Logger): Promise<ControlStateStore> {
    try {
      await mkdir(dir, { recursive: true, mode: DIR_MODE })
      await access(dir, constants.W_OK | constants.X_OK)
    } catch (err) {
      throw stateError(`cannot use the control state directory ${dir}: ${fsErrorReason(err)}`, err)
    }
    await removeLeftovers(dir)

    const path = join(dir, STATE_FILE)
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new ControlStateStore(dir, emptyState())
      throw stateError(`cannot read the control state ${path}: ${fsErrorReason(err)}`, err)
    }

    const parsed = parseState(text)
    if (typeof parsed !== 'string') return new ControlStateStore(dir, parsed)

    const aside = `${path}.corrupt-${Date.now()}`
    try {
      await rename(path, aside)
    } catch (err) {
      throw stateError(`the control state ${path} is corrupt (${parsed}) and cannot be moved aside: ${fsErrorReason(err)}`, err)
    }
    logger?.error({ code: 'EDGEFWD_ERR_CONTROL_STATE', path, movedTo: aside, problem: parsed },
      'control state file is corrupt; moved aside, starting on the local configuration')
    return new ControlStateStore(dir, emptyState())
  }

  get (): Readonly<ControlStateData> {
    return this.#data
  }

  /**
   * Replaces the state with `next`, or with `mutator(current)`, and writes it atomically; get()
   * shows it once the write is durable. A failed write leaves both the file and get() as they
   * were. @throws EdgefwdError EDGEFWD_ERR_CONTROL_STATE when the state is malformed, would lower
   * highestVersion, or cannot be written.
   */
  async update (next: StateUpdate): Promise<void> {
    const run = this.#queue.then(async () => {
      const data = typeof next === 'function' ? next(this.#data) : next
      const problem = checkState(data)
      if (problem !== undefined) throw stateError(`refusing to write a malformed control state: ${problem}`)
      if (data.highestVersion < this.#data.highestVersion) {
        throw stateError(`refusing to lower highestVersion from ${this.#data.highestVersion} to ${data.highestVersion}: old signed updates would be accepted again`)
      }
      const copy = structuredClone(data)
      await writeAtomically(this.#dir, `${JSON.stringify(copy, null, 2)}\n`)
      this.#data = deepFreeze(copy)
    })
    // A failed update must not block the ones after it.
    this.#queue = run.catch(() => {})
    await run
  }
}

async function writeAtomically (dir: string, text: string): Promise<void> {
  const path = join(dir, STATE_FILE)
  const temp = join(dir, `${STATE_FILE}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, FILE_MODE)
    try {
      await handle.writeFile(text, 'utf8')
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, path)
  } catch (err) {
    await rm(temp, { force: true }).catch(() => {})
    throw stateError(`cannot write the control state ${path}: ${fsErrorReason(err)}`, err)
  }
  await syncDirectory(dir)
}

async function syncDirectory (dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch {
    // Some file systems cannot fsync a directory; the file itself is synced and renamed.
  }
}

/** Temp files of writes interrupted by a crash: never the state, safe to delete. */
async function removeLeftovers (dir: string): Promise<void> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    throw stateError(`cannot list the control state directory ${dir}: ${fsErrorReason(err)}`, err)
  }
  for (const name of names.filter(n => TEMP_FILE.test(n))) await rm(join(dir, name), { force: true }).catch(() => {})
}

/** The state, or what is wrong with the text. */
function parseState (text: string): ControlStateData | string {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    return `not JSON: ${err instanceof Error ? err.message : String(err)}`
  }
  const problem = checkState(value)
  return problem === undefined ? value as ControlStateData : problem
}

/** Why `value` is not a ControlStateData, or undefined when it is one. */
function checkState (value: unknown): string | undefined {
  if (!isObject(value)) return 'not an object'
  if (value.format !== STATE_FORMAT) return `format ${JSON.stringify(value.format)} is not ${STATE_FORMAT}`
  if (!isVersion(value.highestVersion, true)) return 'highestVersion is not a whole number ≥ 0'
  const known = ['format', 'highestVersion', 'current', 'pending', 'lastFailed']
  const unknown = Object.keys(value).filter(k => !known.includes(k))
  if (unknown.length > 0) return `unknown fields ${unknown.join(', ')}`

  const { current, pending, lastFailed } = value
  if (current !== undefined && !(isObject(current) && isVersion(current.version) && typeof current.message === 'string')) {
    return 'current is not { version, message }'
  }
  if (pending !== undefined && !(isObject(pending) && isVersion(pending.version) && typeof pending.message === 'string' &&
    (pending.previousVersion === undefined || isVersion(pending.previousVersion)) &&
    isVersion(pending.appliedAtMs, true) && typeof pending.restart === 'boolean')) {
    return 'pending is not { version, message, previousVersion?, appliedAtMs, restart }'
  }
  if (lastFailed !== undefined && !(isObject(lastFailed) && isVersion(lastFailed.version) &&
    typeof lastFailed.reason === 'string' && isVersion(lastFailed.atMs, true))) {
    return 'lastFailed is not { version, reason, atMs }'
  }
  for (const [name, entry] of [['current', current], ['pending', pending]] as const) {
    if (isObject(entry) && (entry.version as number) > value.highestVersion) return `${name}.version is above highestVersion`
  }
  return undefined
}

function isVersion (value: unknown, zeroAllowed = false): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= (zeroAllowed ? 0 : 1)
}

function isObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}

function stateError (message: string, cause?: unknown): EdgefwdError {
  return new EdgefwdError('EDGEFWD_ERR_CONTROL_STATE', message, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'check the directory\'s owner, permissions and free space (control.stateDir)',
  })
}
