import { mkdir, readFile, rename, statfs } from 'node:fs/promises'
import { join, resolve, sep } from 'node:path'
import type { ClassicLevel } from 'classic-level'
import { Level } from 'level'
import { EdgefwdError } from '../errors.js'
import type { Logger } from '../observe/log.js'
import type { Priority } from '../types.js'
import { PRIORITY_COUNT } from '../types.js'
import { upgradeLayout1 } from './layout-upgrade.js'
import type { BackendContent, BackendReader, BackendWrite, EventKey, ExpiryEntry, ScanOptions, ScannedEvent, SeqSpan, StoreBackend, WriteOutcome } from './backend.js'
import {
  EVENT_KEY_BYTES, EXPIRY_RANGE, META_KEY, REPORT_RANGE, entryOfExpiryKey, eventKey, expiryKey, expiryRange, idOfReportKey, priorityRange,
  reportKey, seqOfEventKey
} from './keys.js'

const EMPTY = Buffer.alloc(0)

/** Keys are text (see keys.ts), values bytes. */
type Db = ClassicLevel<string, Buffer>

/**
 * The database, through `level` (the design's named store). On Node its Level is classic-level's
 * ClassicLevel, whose LevelDB-only operations the store needs and `level`'s universal types leave
 * out: compactRange() (deletes free no disk until a compaction) and the static repair() (a
 * corrupt database). Checked once here, so a `level` that ever stops being classic-level on Node
 * fails at the first open with this message, not at the first repair.
 */
const LevelDb = Level as unknown as typeof ClassicLevel
function checkLevelIsClassic (): void {
  if (typeof LevelDb.repair !== 'function' || typeof (LevelDb.prototype as { compactRange?: unknown }).compactRange !== 'function') {
    throw new EdgefwdError('EDGEFWD_ERR_STORE_IO', "the 'level' package is not classic-level on this platform: the store needs LevelDB's compactRange and repair")
  }
}
/** The part of classic-level's iterator used here. */
interface Iterator { nextv (size: number): Promise<Array<[string, Buffer]>>, close (): Promise<void> }

/** Bytes one nextv() may gather natively before handing entries to JS. */
const NEXTV_BYTES = 1024 * 1024

/**
 * Closes an iterator and frees what it read. classic-level keeps an iterator's last nextv() batch
 * in native memory until V8 collects the iterator object, and V8 does not know that memory exists:
 * draining 1M events with an iterator per lease grew RSS by ~280 MB. Reading one more entry first
 * replaces the batch (measured: 300 → 124 MB anonymous at the peak of a raw drain loop).
 */
async function release (it: Iterator): Promise<void> {
  try {
    await it.nextv(1)
  } catch {}
  await it.close().catch(() => {})
}

export interface LevelBackendOptions {
  path: string
  logger: Logger
  /** LevelDB's memtable and block cache sizes (the memory budget's); absent: DB_OPTIONS below. */
  memory?: LevelMemoryOptions
  /** Clock for naming moved-aside databases. */
  now?: () => number
}

/** Error codes classic-level / abstract-level put on errors (or their causes). */
function levelCode (err: unknown): string | undefined {
  const e = err as { code?: unknown, cause?: { code?: unknown } } | null
  const cause = e?.cause?.code
  if (typeof cause === 'string' && cause !== 'LEVEL_DATABASE_NOT_OPEN') return cause
  return typeof e?.code === 'string' ? e.code : undefined
}

/** Failures that say nothing about the database's files: repairing or moving them aside is wrong. */
function isEnvironmentProblem (err: unknown): boolean {
  return /Permission denied|Read-only file system|Too many open files|No space left|Not a directory/i.test(messageOf(err))
}

function isCorruption (err: unknown): boolean {
  return levelCode(err) === 'LEVEL_CORRUPTION' || /Corruption/.test(messageOf(err))
}

function messageOf (err: unknown): string {
  const e = err as { message?: unknown, cause?: { message?: unknown } } | null
  return [e?.message, e?.cause?.message].filter(m => typeof m === 'string').join(': ')
}

/**
 * Creates the store directory one level at a time. LevelDB only creates the last level, and was
 * seen spinning at 100% CPU on an impossible path (under /proc), as was Node 20's recursive mkdir.
 */
async function ensureDir (path: string): Promise<void> {
  const parts = resolve(path).split(sep).filter(p => p !== '')
  let current: string = sep
  for (const part of parts) {
    current = join(current, part)
    try {
      await mkdir(current)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue
      throw new EdgefwdError('EDGEFWD_ERR_STORE_OPEN_FAILED', `store directory ${path} cannot be created: ${messageOf(err)}`, {
        cause: err, hint: 'set store.path to a writable directory'
      })
    }
  }
}

export function isDiskFull (err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    const { code, message, cause } = e as { code?: unknown, message?: unknown, cause?: unknown }
    if (code === 'ENOSPC') return true
    if (typeof message === 'string' && /No space left on device|ENOSPC/i.test(message)) return true
    e = cause
  }
  return false
}

/**
 * The durable backend on classic-level (LevelDB).
 *
 * Writes use a chained batch: measured here at ~273k events/s with a sync write per 1000-event
 * group, about twice `db.batch(ops, options)`. Scans open a short iterator that starts just past
 * the caller's cursor; restarting from the range start after deletes walks tombstones (~51k/s
 * against ~374k/s), which is why RingBuffer keeps cursors and why compact() exists.
 */
export class LevelBackend implements StoreBackend {
  private db: Db | undefined
  private readonly now: () => number

  constructor (private readonly opts: LevelBackendOptions) {
    this.now = opts.now ?? Date.now
  }

  async open (): Promise<BackendContent> {
    await ensureDir(this.opts.path)
    const { db, repaired } = await this.openOrRecover()
    this.db = db
    const upgraded = await upgradeLayout1(db, this.opts.logger) > 0
    return { ...await this.readContent(db), repaired, upgraded }
  }

  private async openOrRecover (): Promise<{ db: Db, repaired: boolean }> {
    const { path, logger } = this.opts
    try {
      return await openChecked(path, logger, this.opts.memory)
    } catch (err) {
      if (levelCode(err) === 'LEVEL_LOCKED') {
        throw new EdgefwdError('EDGEFWD_ERR_STORE_LOCKED', `store ${path} is locked by another process`, {
          cause: err, hint: 'another edgefwd (or another store instance) is using this directory; stop it or choose another store.path'
        })
      }
      if (isEnvironmentProblem(err)) {
        throw new EdgefwdError('EDGEFWD_ERR_STORE_OPEN_FAILED', `store ${path} could not be opened: ${messageOf(err)}`, {
          cause: err, hint: 'check that store.path is a writable directory on a local file system'
        })
      }
      logger.error({ code: 'EDGEFWD_ERR_STORE_CORRUPT', path, err }, 'store is damaged; attempting repair')
    }
    try {
      await LevelDb.repair(path)
      const { db } = await openChecked(path, logger, this.opts.memory)
      logger.error({ code: 'EDGEFWD_ERR_STORE_CORRUPT', path }, 'store repaired; readable events were kept')
      return { db, repaired: true }
    } catch (err) {
      const aside = `${path}.corrupt-${this.now()}`
      logger.error({ code: 'EDGEFWD_ERR_STORE_CORRUPT', path, movedTo: aside, err }, 'store repair failed; moving the damaged database aside and starting empty')
      try {
        await rename(path, aside)
        return { db: await openDb(path, this.opts.memory), repaired: true }
      } catch (err2) {
        throw new EdgefwdError('EDGEFWD_ERR_STORE_OPEN_FAILED', `store ${path} could not be opened, repaired or replaced`, { cause: err2 })
      }
    }
  }

  /** Reads meta and report records; validates that meta parses elsewhere (RingBuffer). */
  private async readContent (db: Db): Promise<BackendContent> {
    const meta = await db.get(META_KEY)
    const reports = []
    for await (const [key, value] of db.iterator(REPORT_RANGE)) reports.push({ id: idOfReportKey(key), value })
    return { meta, reports }
  }

  async write (w: BackendWrite, sync: boolean): Promise<WriteOutcome> {
    const db = this.live()
    const batch = db.batch()
    for (const p of w.puts) batch.put(eventKey(p.priority, p.seq), p.value as Buffer)
    for (const d of w.dels) batch.del(d.raw ?? eventKey(d.priority, d.seq))
    for (const r of w.reportPuts) batch.put(reportKey(r.id), r.value as Buffer)
    for (const id of w.reportDels) batch.del(reportKey(id))
    for (const e of w.expiryPuts) batch.put(expiryKey(e), EMPTY)
    for (const e of w.expiryDels) batch.del(expiryKey(e))
    if (w.meta !== undefined) batch.put(META_KEY, w.meta as Buffer)
    await batch.write({ sync })
    return { durable: true }
  }

  async scan (priority: Priority, opts: ScanOptions): Promise<ScannedEvent[]> {
    const it = this.live().iterator({ ...this.range(priority, opts.from, opts.reverse), reverse: opts.reverse, limit: opts.limit, highWaterMarkBytes: NEXTV_BYTES })
    try {
      return await this.read(it, opts.limit, priority)
    } finally {
      await release(it)
    }
  }

  async scanExpiry (before: number, after: ExpiryEntry | undefined, limit: number): Promise<ExpiryEntry[]> {
    const keys = await this.guarded(async () => await this.live().keys({ ...expiryRange(before, after), limit }).all())
    return keys.map(entryOfExpiryKey)
  }

  async getEvents (keys: readonly EventKey[]): Promise<Array<Uint8Array | undefined>> {
    return await this.guarded(async () => await this.live().getMany(keys.map(k => k.raw ?? eventKey(k.priority, k.seq))))
  }

  readonly openReader = (priority: Priority, after: number | undefined): BackendReader => {
    const it = this.live().iterator({ ...this.range(priority, after, false), highWaterMarkBytes: NEXTV_BYTES })
    return { next: async (limit: number) => await this.read(it, limit, priority), close: async () => { await release(it) } }
  }

  private range (priority: Priority, from: number | undefined, reverse: boolean): { gt?: string, gte?: string, lt: string } {
    const { gte, lt } = priorityRange(priority)
    if (from === undefined) return { gte, lt }
    return reverse ? { gte, lt: eventKey(priority, from) } : { gt: eventKey(priority, from), lt }
  }

  private async read (it: Iterator, limit: number, priority: Priority): Promise<ScannedEvent[]> {
    const entries = await this.guarded(async () => await it.nextv(limit))
    return entries.map(([key, value]) => ({ priority, seq: seqOfEventKey(key), value, raw: key }))
  }

  /** Runs a read; damage it finds becomes EDGEFWD_ERR_STORE_CORRUPT (the store then repairs). */
  private async guarded<T> (read: () => Promise<T>): Promise<T> {
    try {
      return await read()
    } catch (err) {
      if (isCorruption(err)) throw new EdgefwdError('EDGEFWD_ERR_STORE_CORRUPT', `store ${this.opts.path} is damaged: ${messageOf(err)}`, { cause: err })
      throw err
    }
  }

  /** Repairs the open database in place (damage found while running); keeps what is readable. */
  async repair (): Promise<BackendContent> {
    const { path, logger } = this.opts
    logger.error({ code: 'EDGEFWD_ERR_STORE_CORRUPT', path }, 'store damage found while running; repairing')
    await this.close()
    await LevelDb.repair(path)
    return await this.open()
  }

  /** Full scan of every event key: for recovery checks and tests, never on the hot path. */
  async * allEvents (): AsyncGenerator<{ priority: Priority, seq: number, bytes: number }> {
    for (let p = 0; p < PRIORITY_COUNT; p++) {
      for await (const [key, value] of this.live().iterator(priorityRange(p as Priority))) {
        yield { priority: p as Priority, seq: seqOfEventKey(key), bytes: EVENT_KEY_BYTES + value.byteLength }
      }
    }
  }

  /** Every expiry index entry: for recovery checks and tests, never on the hot path. */
  async * allExpiry (): AsyncGenerator<ExpiryEntry> {
    for await (const key of this.live().keys(EXPIRY_RANGE)) yield entryOfExpiryKey(key)
  }

  async compact (spans?: SeqSpan[]): Promise<void> {
    const db = this.db
    if (db?.status !== 'open') return
    if (spans === undefined) {
      await db.compactRange(priorityRange(0).gte, priorityRange(3).lt)
    } else {
      // Deletes happen at the old end of each priority (acks, evictions, expiry): compacting just
      // those spans rewrites the few files that hold them, not the whole store.
      for (const s of spans) await db.compactRange(eventKey(s.priority, s.first), eventKey(s.priority, s.last))
    }
    // The expiry index: small keys without values, cheap to compact whole (and a no-op when
    // empty); its sweep reads from the range start, so its delete markers must not pile up.
    await db.compactRange(EXPIRY_RANGE.gte, EXPIRY_RANGE.lt)
  }

  async close (): Promise<void> {
    const db = this.db
    this.db = undefined
    if (db !== undefined && db.status !== 'closed') await db.close()
  }

  memoryBytes (): number { return 0 }

  readonly freeBytes = async (): Promise<number> => {
    const fs = await statfs(this.opts.path)
    return fs.bavail * fs.bsize
  }

  private live (): Db {
    if (this.db?.status !== 'open') throw new EdgefwdError('EDGEFWD_ERR_STORE_NOT_OPEN', 'store backend is not open')
    return this.db
  }
}

/** Opens and checks for damage; `repaired` when LevelDB dropped damaged log records on the way. */
async function openChecked (path: string, logger: Logger, memory: LevelMemoryOptions | undefined): Promise<{ db: Db, repaired: boolean }> {
  const db = await openDb(path, memory)
  try {
    // LevelDB's log recovery skips damaged records and only says so in its info LOG (there is no
    // paranoid mode here). Those records carried meta updates too, so the meta must be recounted.
    const dropped = await recoveryDamage(path)
    // LevelDB opens lazily: a damaged table shows up only when read. Touch the meta record, the
    // reports and both ends of every priority range so damage is found (and repaired) now.
    await probe(db)
    if (dropped === undefined) return { db, repaired: false }
    logger.error({ code: 'EDGEFWD_ERR_STORE_CORRUPT', path, detail: dropped }, 'store write-ahead log was damaged; readable events were kept and the totals are being recounted')
    return { db, repaired: true }
  } catch (err) {
    await db.close().catch(() => {})
    throw err
  }
}

/**
 * LevelDB options chosen for memory (bench:store, 1M events, 2 runs each on the 2-core VM).
 * LevelDB mmaps every table file it keeps open (up to 1000 on 64-bit), and the pages read stay in
 * RSS (file-backed) until the table leaves the table cache. With the defaults (1000 open files,
 * 2 MB tables) ~85 MB of tables were resident at the peak (compact() after the 1M drain) and RSS
 * peaked at 226–230 MB. maxOpenFiles 74 is LevelDB's floor (a 64-table cache) and 1 MB is its
 * smallest table, so at most ~64 MB of tables can be mapped: peak RSS 189 MB, file pages ~89 MB
 * (of which the node binary ~45), throughput within the run-to-run noise. The anonymous part
 * (~100 MB: V8 heap ~35, malloc arenas and LevelDB buffers) does not move with these; a 1 MB
 * writeBufferSize took ~15 MB off it but cost ~35% of append throughput, so it keeps its default.
 * A 2 MB block cache (default 8 MB) made no measurable difference to drain speed.
 */
const DB_OPTIONS = { maxOpenFiles: 74, maxFileSize: 1024 * 1024, cacheSize: 2 * 1024 * 1024 }

export interface LevelMemoryOptions { writeBufferSize: number, cacheSize: number }

async function openDb (path: string, memory?: LevelMemoryOptions): Promise<Db> {
  checkLevelIsClassic()
  const db: Db = new LevelDb<string, Buffer>(path, { keyEncoding: 'utf8', valueEncoding: 'buffer', ...DB_OPTIONS, ...memory })
  await db.open()
  return db
}

/** The first corruption line LevelDB logged while opening, if any. */
async function recoveryDamage (path: string): Promise<string | undefined> {
  try {
    const log = await readFile(join(path, 'LOG'), 'utf8')
    return log.split('\n').find(line => /Corruption|dropping \d+ bytes/.test(line))?.replace(/^\S+ \S+ /, '')
  } catch {
    return undefined
  }
}

async function probe (db: Db): Promise<void> {
  await db.get(META_KEY)
  for await (const _ of db.keys({ ...REPORT_RANGE, limit: 1 })) break
  for await (const _ of db.keys({ ...EXPIRY_RANGE, limit: 1 })) break
  for (let p = 0; p < PRIORITY_COUNT; p++) {
    for (const reverse of [false, true]) {
      for await (const _ of db.iterator({ ...priorityRange(p as Priority), reverse, limit: 1 })) break
    }
  }
}
