/**
 * TlsMaterialSource: the TLS material in use, re-read when its files change or on request
 * (the CLI calls reload('SIGHUP'); only src/cli/ touches process signals).
 *
 * Invariants:
 *   - current() is always a set that passed every check of material.ts; it is replaced only by
 *     another set that did. An invalid new set is logged (code, file, config key), counted in
 *     stats().failures, and the previous set stays in use until valid files appear.
 *   - Reloads run one at a time, in the order asked for.
 *   - A re-read that yields the same material (same CA, certificate and decrypted key) changes
 *     nothing and calls no listener: editors and rotation tools often touch files without
 *     changing them.
 *   - Listeners hear of a new set only; the next connection uses it, the current one is not cut.
 *
 * Watching: fs.watch on the parent directory of each file, filtered by file name. Rotation tools
 * (cert-manager, certbot, `mv new.pem cert.pem`) replace a file by renaming another over it,
 * which leaves a watch on the file itself watching the old, unlinked inode. Kubernetes secret
 * volumes swap a `..data` symlink instead, so a change of `..data` counts too. Events are
 * debounced (reloadDebounceMs) so that a certificate and key replaced one after the other are
 * read together, once.
 *
 * Expiry: the days left are logged as a warning below expiryWarningMs at every load and every
 * 12 hours (an unref'd timer: it never keeps the process alive).
 */
import { createHash } from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import type { Config } from '../config/index.js'
import { isEdgefwdError, type ErrorCode } from '../errors.js'
import type { Logger } from '../observe/log.js'
import { daysLeft, loadTlsMaterial, TlsMaterialError, tlsMaterialOptions, type TlsMaterial, type TlsMaterialOptions } from './material.js'

export interface TlsSourceOptions extends TlsMaterialOptions {
  /** Warn when the client certificate has less than this left; default 30 days. */
  expiryWarningMs?: number
  /** Re-read when the files change; default true. */
  watch?: boolean
  /** Quiet time after the last file event before re-reading; default 500 ms. */
  reloadDebounceMs?: number
}

export interface TlsSourceDeps {
  logger: Logger
  /** Where keyPassphraseEnv is looked up; usually process.env. */
  env?: Readonly<Record<string, string | undefined>>
  now?: () => Date
  /** How often the expiry warning is re-checked; default 12 h. */
  expiryCheckIntervalMs?: number
}

export type ReloadResult =
  | { outcome: 'changed', material: TlsMaterial }
  | { outcome: 'unchanged', material: TlsMaterial }
  /** `material` is the previous set, still in use. */
  | { outcome: 'rejected', error: Error, material: TlsMaterial }
  | { outcome: 'closed' }

export interface TlsSourceStats {
  /** Reloads that put a new set in use. */
  reloads: number
  /** Reloads rejected because the new set was invalid. */
  failures: number
  /** Code of the last reload's error; cleared by the next successful one. */
  lastError?: ErrorCode
  daysLeft: number
}

export type TlsChangeListener = (material: TlsMaterial) => void

type State = { kind: 'open' } | { kind: 'closed' }

const DAY_MS = 86_400_000
export const DEFAULT_EXPIRY_WARNING_MS = 30 * DAY_MS
export const DEFAULT_RELOAD_DEBOUNCE_MS = 500
const EXPIRY_CHECK_INTERVAL_MS = 12 * 3_600_000
/** Kubernetes' AtomicWriter publishes a new secret by renaming a `..data` symlink. */
const K8S_DATA_LINK = '..data'

export class TlsMaterialSource {
  private state: State = { kind: 'open' }
  private material: TlsMaterial
  private digest: string
  private readonly listeners = new Set<TlsChangeListener>()
  private readonly watchers = new Set<FSWatcher>()
  private debounce: NodeJS.Timeout | undefined
  private readonly expiryTimer: NodeJS.Timeout
  private queue: Promise<unknown> = Promise.resolve()
  private counts = { reloads: 0, failures: 0, lastError: undefined as ErrorCode | undefined }
  private readonly now: () => Date

  /** Loads and validates the material; throws (a TlsMaterialError) when it is invalid. */
  static async open (options: TlsSourceOptions, deps: TlsSourceDeps): Promise<TlsMaterialSource> {
    const now = deps.now ?? (() => new Date())
    const material = await loadTlsMaterial(options, { env: deps.env ?? {}, now: now() })
    return new TlsMaterialSource(options, deps, material, now)
  }

  private constructor (private readonly options: TlsSourceOptions, private readonly deps: TlsSourceDeps,
    material: TlsMaterial, now: () => Date) {
    this.material = material
    this.digest = digestOf(material)
    this.now = now
    this.logLoaded(material, 'open')
    this.expiryTimer = setInterval(() => this.checkExpiry(), deps.expiryCheckIntervalMs ?? EXPIRY_CHECK_INTERVAL_MS)
    this.expiryTimer.unref()
    if (options.watch ?? true) this.startWatching()
  }

  /** The last valid set: what the next connection should use. */
  current (): TlsMaterial {
    return this.material
  }

  daysLeft (): number {
    return daysLeft(this.material, this.now())
  }

  stats (): TlsSourceStats {
    const { reloads, failures, lastError } = this.counts
    return lastError === undefined ? { reloads, failures, daysLeft: this.daysLeft() } : { reloads, failures, lastError, daysLeft: this.daysLeft() }
  }

  /** Called with each new valid set; returns a function that unsubscribes. */
  onChange (listener: TlsChangeListener): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /** Re-reads and validates the files; `reason` is logged ('SIGHUP', 'file change', ...). Never rejects. */
  reload (reason: string): Promise<ReloadResult> {
    const run = this.queue.then(async () => await this.reloadNow(reason))
    this.queue = run.catch(() => undefined)
    return run
  }

  /** Stops watching and the expiry timer; waits for a reload under way. */
  async close (): Promise<void> {
    if (this.state.kind === 'closed') return
    this.state = { kind: 'closed' }
    clearTimeout(this.debounce)
    clearInterval(this.expiryTimer)
    for (const watcher of this.watchers) watcher.close()
    this.watchers.clear()
    this.listeners.clear()
    await this.queue
  }

  private async reloadNow (reason: string): Promise<ReloadResult> {
    if (this.isClosed()) return { outcome: 'closed' }
    const { logger } = this.deps
    let next: TlsMaterial
    try {
      next = await loadTlsMaterial(this.options, { env: this.deps.env ?? {}, now: this.now() })
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err))
      this.counts.failures++
      this.counts.lastError = isEdgefwdError(error) ? error.code : undefined
      const where = error instanceof TlsMaterialError ? { file: error.file, configKey: error.configKey } : {}
      logger.error({ code: this.counts.lastError, ...where, reason, hint: isEdgefwdError(error) ? error.hint : undefined, err: error },
        `TLS material rejected, the previous set stays in use: ${error.message}`)
      return { outcome: 'rejected', error, material: this.material }
    }
    if (this.isClosed()) return { outcome: 'closed' }
    this.counts.lastError = undefined
    const digest = digestOf(next)
    if (digest === this.digest) {
      logger.debug({ reason }, 'TLS material re-read, unchanged')
      return { outcome: 'unchanged', material: this.material }
    }
    this.material = next
    this.digest = digest
    this.counts.reloads++
    this.logLoaded(next, reason)
    for (const listener of this.listeners) {
      try {
        listener(next)
      } catch (err) {
        logger.error({ err }, 'a TLS material listener threw')
      }
    }
    return { outcome: 'changed', material: next }
  }

  private isClosed (): boolean {
    return this.state.kind === 'closed'
  }

  private logLoaded (material: TlsMaterial, reason: string): void {
    const { info } = material
    this.deps.logger.info({
      reason,
      subject: info.subject,
      issuer: info.issuer,
      fingerprint256: info.fingerprint256,
      keyDetail: info.keyDetail,
      notAfter: info.notAfter.toISOString(),
      daysLeft: daysLeft(material, this.now()),
      certFile: info.files.cert,
    }, reason === 'open' ? 'TLS material loaded' : 'TLS material reloaded')
    for (const warning of info.warnings) this.deps.logger.warn({ reason }, warning)
    this.checkExpiry()
  }

  private checkExpiry (): void {
    const { info } = this.material
    const msLeft = info.notAfter.getTime() - this.now().getTime()
    const threshold = this.options.expiryWarningMs ?? DEFAULT_EXPIRY_WARNING_MS
    const fields = { subject: info.subject, notAfter: info.notAfter.toISOString(), daysLeft: this.daysLeft(), certFile: info.files.cert }
    if (msLeft <= 0) {
      this.deps.logger.error({ ...fields, code: 'EDGEFWD_ERR_TLS_CERT_EXPIRED' }, 'TLS client certificate has expired; the broker will refuse it')
    } else if (msLeft < threshold) {
      this.deps.logger.warn({ ...fields, warnDays: Math.round(threshold / DAY_MS) }, `TLS client certificate expires in ${fields.daysLeft} days`)
    }
  }

  private startWatching (): void {
    const files = [this.options.ca, this.options.cert, this.options.key, this.options.clientCa, this.options.keyPassphraseFile]
    const byDir = new Map<string, Set<string>>()
    for (const file of files) {
      if (file === undefined) continue
      const dir = dirname(resolve(file))
      const names = byDir.get(dir) ?? new Set([K8S_DATA_LINK])
      names.add(basename(file))
      byDir.set(dir, names)
    }
    for (const [dir, names] of byDir) {
      let watcher: FSWatcher
      try {
        watcher = watch(dir, (_event, filename) => {
          // Some platforms give no name; then any change in the directory counts.
          if (filename === null || names.has(basename(filename.toString()))) this.scheduleReload()
        })
      } catch (err) {
        this.deps.logger.warn({ dir, err }, 'cannot watch a TLS directory; changes there need reload (SIGHUP)')
        continue
      }
      watcher.on('error', err => {
        this.deps.logger.warn({ dir, err }, 'watching a TLS directory failed; changes there need reload (SIGHUP)')
        watcher.close()
        this.watchers.delete(watcher)
      })
      this.watchers.add(watcher)
    }
  }

  private scheduleReload (): void {
    if (this.state.kind === 'closed') return
    clearTimeout(this.debounce)
    this.debounce = setTimeout(() => {
      this.debounce = undefined
      void this.reload('file change')
    }, this.options.reloadDebounceMs ?? DEFAULT_RELOAD_DEBOUNCE_MS)
  }
}

/** Source options from the validated `tls` section (throws when a path the uplink needs is missing). */
export function tlsSourceOptions (tls: Config['tls'], source?: string): TlsSourceOptions {
  return {
    ...tlsMaterialOptions(tls, source),
    expiryWarningMs: tls.expiryWarning,
    watch: tls.watch,
    reloadDebounceMs: tls.reloadDebounce,
  }
}

function digestOf (material: TlsMaterial): string {
  return createHash('sha256').update(material.ca).update('\0').update(material.cert).update('\0').update(material.key).digest('hex')
}
