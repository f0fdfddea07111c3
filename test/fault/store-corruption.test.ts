/**
 * Fault: damaged database files. Whatever the damage, the store starts, keeps what is readable,
 * logs an error naming the path, and its totals describe what is really there.
 */
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { decodeBatch } from '../../src/proto/codec.js'
import { openLevelStore } from '../../src/store/index.js'
import type { EventStore } from '../../src/store/index.js'
import type { EventRecord, Priority } from '../../src/types.js'
import { captureLogger, silentLogger } from '../helpers/logger.js'

const OPTIONS = { capacityBytes: 64 * 1024 * 1024, compactAfterDeletes: 0 }

function events (from: number, n: number): EventRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    deviceId: 'dev', deviceSeq: from + i, gatewayTimeMs: 1, priority: ((from + i) % 4) as Priority, stream: 's', value: { kind: 'raw', raw: new Uint8Array(200).fill(i & 0xff) }
  }))
}

/** Writes `groups` sync groups of 10 events; `flush` reopens once so they move into a table file. */
async function populate (path: string, groups: number, flush: boolean): Promise<void> {
  const store = await openLevelStore(path, OPTIONS, silentLogger())
  for (let g = 0; g < groups; g++) await store.append(events(g * 10, 10))
  await store.close()
  if (flush) await (await openLevelStore(path, OPTIONS, silentLogger())).close()
}

async function fileEnding (dir: string, suffix: string, prefix = ''): Promise<string> {
  const name = (await readdir(dir)).find(f => f.startsWith(prefix) && f.endsWith(suffix))
  if (name === undefined) throw new Error(`no ${prefix}*${suffix} file in ${dir}`)
  return join(dir, name)
}

async function garble (file: string, at: number, length: number): Promise<void> {
  const data = await readFile(file)
  data.fill(0x41, at, Math.min(data.length, at + length))
  await writeFile(file, data)
}

/**
 * Leases everything; the distinct events seen must equal the store's own totals. (Damage found
 * while leasing makes the store repair and forget its leases, so some events are seen twice.)
 */
async function checkConsistent (t: Test, store: EventStore): Promise<number> {
  const seen = new Set<number>()
  for (let l = await store.lease(1000, 1 << 30); l !== null && l.events.length > 0; l = await store.lease(1000, 1 << 30)) {
    for (const e of decodeBatch(l.batch)) seen.add(e.deviceSeq)
  }
  const n = seen.size
  t.equal(n, store.stats().events, 'the totals equal what is readable')
  const r = await store.append(events(1_000_000, 5))
  t.equal(r.accepted, 5, 'the store takes new work')
  return n
}

t.test('garbage in the middle of the write-ahead log: damaged records dropped, the rest kept, totals recounted', async t => {
  const path = `${t.testdir()}/store`
  await populate(path, 200, false)
  await garble(await fileEnding(path, '.log'), 100_000, 400)
  const { logger, records } = captureLogger()
  const store = await openLevelStore(path, OPTIONS, logger)
  t.teardown(async () => { await store.close() })
  const kept = await checkConsistent(t, store)
  t.ok(kept > 1000 && kept < 2000, `most events kept (${kept} of 2000)`)
  const err = records().find(r => r.code === 'EDGEFWD_ERR_STORE_CORRUPT')
  t.ok(err, 'an error is logged')
  t.equal(err?.path, path, 'naming the store path')
  t.equal(err?.level, 50)
})

t.test('a truncated write-ahead log loses only its torn tail', async t => {
  const path = `${t.testdir()}/store`
  await populate(path, 50, false)
  const log = await fileEnding(path, '.log')
  const size = (await readFile(log)).length
  await truncate(log, size - 1000)
  const store = await openLevelStore(path, OPTIONS, silentLogger())
  t.teardown(async () => { await store.close() })
  const kept = await checkConsistent(t, store)
  t.ok(kept >= 490 - 10 && kept < 500, `all but the torn group kept (${kept} of 500)`)
})

t.test('garbage in a table file: the store repairs itself and keeps what is readable', async t => {
  const path = `${t.testdir()}/store`
  await populate(path, 200, true)
  await garble(await fileEnding(path, '.ldb'), 5000, 400)
  const { logger, records } = captureLogger()
  const store = await openLevelStore(path, OPTIONS, logger)
  t.teardown(async () => { await store.close() })
  const kept = await checkConsistent(t, store)
  t.ok(kept > 0 && kept < 2000, `readable events kept (${kept} of 2000)`)
  t.ok(records().some(r => r.code === 'EDGEFWD_ERR_STORE_CORRUPT' && r.path === path), 'an error naming the path is logged')
})

t.test('a truncated table file: repaired, readable events kept', async t => {
  const path = `${t.testdir()}/store`
  await populate(path, 200, true)
  const table = await fileEnding(path, '.ldb')
  await truncate(table, Math.floor((await readFile(table)).length / 2))
  const store = await openLevelStore(path, OPTIONS, silentLogger())
  t.teardown(async () => { await store.close() })
  await checkConsistent(t, store)
})

t.test('a garbage manifest: repaired from the table files', async t => {
  const path = `${t.testdir()}/store`
  await populate(path, 100, true)
  await writeFile(await fileEnding(path, '', 'MANIFEST'), 'garbage'.repeat(10))
  const { logger, records } = captureLogger()
  const store = await openLevelStore(path, OPTIONS, logger)
  t.teardown(async () => { await store.close() })
  const kept = await checkConsistent(t, store)
  t.equal(kept, 1000, 'the tables were intact, so nothing is lost')
  t.ok(records().some(r => r.code === 'EDGEFWD_ERR_STORE_CORRUPT'))
})

t.test('an unreadable store path is a clear open error, not a repair', async t => {
  await t.rejects(openLevelStore('/proc/edgefwd-test/store', OPTIONS, silentLogger()), { code: 'EDGEFWD_ERR_STORE_OPEN_FAILED', message: /\/proc\/edgefwd-test\/store/ })
})
