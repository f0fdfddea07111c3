/**
 * The expiry index (events with their own deadline) stays exactly in step with the events: through
 * acks, evictions and sweeps, after damage that lost index records or left stale ones behind
 * (LevelDB), and across the disk-full overlay and its move back to disk.
 */
import { ClassicLevel } from 'classic-level'
import t from 'tap'
import { decodeBatch } from '../../src/proto/codec.js'
import { FallbackBackend, LevelBackend, MemoryBackend, MemoryVolume, RingBuffer } from '../../src/store/index.js'
import type { EventStore, RingBufferOptions, StoreBackend } from '../../src/store/index.js'
import type { BackendWrite } from '../../src/store/backend.js'
import { expiryKey } from '../../src/store/keys.js'
import type { ExpiryEntry } from '../../src/store/keys.js'
import type { EventRecord, Priority } from '../../src/types.js'
import { silentLogger } from '../helpers/logger.js'
import { waitFor } from '../helpers/wait.js'

function ev (deviceSeq: number, priority: Priority, expiresAtMs?: number): EventRecord {
  const e: EventRecord = { deviceId: 'd', deviceSeq, gatewayTimeMs: 1_000_000, priority, stream: 's', value: { kind: 'raw', raw: new Uint8Array(100) } }
  if (expiresAtMs !== undefined) e.expiresAtMs = expiresAtMs
  return e
}

const sorted = (entries: ExpiryEntry[]): string[] => entries.map(e => `${e.expiresAt}/${e.priority}/${e.seq}`).sort()

/** What the index must hold: one entry per stored event that has a deadline (leases are nacked). */
async function expectedIndex (store: EventStore): Promise<ExpiryEntry[]> {
  const lease = await store.lease(10_000, 1 << 30)
  if (lease === null) return []
  store.nack(lease.id)
  return decodeBatch(lease.batch).filter(e => e.expiresAtMs !== undefined)
    .map(e => ({ expiresAt: e.expiresAtMs as number, priority: e.priority, seq: e.storeSeq }))
}

const START = 1_000_000
const initial = (): EventRecord[] => [ev(1, 1, START + 10), ev(2, 1, START + 5000), ev(3, 0, START + 5000), ev(4, 0), ev(5, 2, START + 10), ev(6, 2, START + 7000)]

/** A capacity the initial events fill exactly. */
async function fullCapacity (): Promise<number> {
  const probe = new RingBuffer(new MemoryBackend(), { capacityBytes: 1 << 20, expiryIntervalMs: 0 })
  await probe.open()
  await probe.append(initial())
  const used = probe.stats().usedBytes
  await probe.close()
  return used
}

/** Acks, evictions and a sweep, each of which must take index entries with the events. */
async function churn (store: EventStore, clock: { now: number }): Promise<void> {
  await store.append(initial())
  const lease = await store.lease(2, 1 << 20) // ev5, ev6
  await store.ack(lease!.id)
  const r = await store.append([ev(7, 3, START + 9000), ev(8, 3), ev(9, 3), ev(10, 3)]) // evicts ev3, ev4 (low)
  if (r.evicted !== 2) throw new Error(`expected two evictions, got ${r.evicted}`)
  clock.now += 100
  if (await store.expire() !== 1) throw new Error('expected ev1 to expire')
}

t.test('memory: the index holds exactly the stored events with a deadline', async t => {
  const clock = { now: START }
  const volume = new MemoryVolume()
  const store = new RingBuffer(new MemoryBackend(volume), { capacityBytes: await fullCapacity(), expiryIntervalMs: 0, now: () => clock.now })
  await store.open()
  await churn(store, clock)
  const expected = await expectedIndex(store)
  t.equal(expected.length, 2, 'ev2 and ev7 remain with deadlines')
  t.same(sorted(volume.expiry.all()), sorted(expected))
  await store.close()
})

t.test('LevelDB: the index holds exactly the stored events with a deadline; lost and stale entries are mended', async t => {
  const clock = { now: START }
  const path = `${t.testdir()}/store`
  const options: RingBufferOptions = { capacityBytes: await fullCapacity(), expiryIntervalMs: 0, compactAfterDeletes: 0, now: () => clock.now }
  const open = async (): Promise<{ store: RingBuffer, backend: LevelBackend }> => {
    const backend = new LevelBackend({ path, logger: silentLogger() })
    const store = new RingBuffer(backend, options, silentLogger())
    await store.open()
    return { store, backend }
  }
  const onDisk = async (backend: LevelBackend): Promise<ExpiryEntry[]> => {
    const out = []
    for await (const e of backend.allExpiry()) out.push(e)
    return out
  }

  const first = await open()
  await churn(first.store, clock)
  const expected = await expectedIndex(first.store)
  t.same(sorted(await onDisk(first.backend)), sorted(expected))
  const stats = first.store.stats()
  await first.store.close()

  // Damage: every index record lost, a stale one left for an event that is gone, meta unreadable.
  const db = new ClassicLevel<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await db.open()
  for await (const key of db.keys({ gte: Buffer.from('x'), lt: Buffer.from('y') })) await db.del(key)
  const stale = { expiresAt: clock.now + 50, priority: 1 as Priority, seq: 999 }
  await db.put(Buffer.from(expiryKey(stale)), Buffer.alloc(0))
  await db.put(Buffer.from('m'), Buffer.from('not json'))
  await db.close()

  const second = await open()
  t.same(sorted(await onDisk(second.backend)), sorted([...expected, stale]), 'the recount put back every lost entry')
  t.same(second.store.stats().perPriority.map(p => [p.events, p.bytes]), stats.perPriority.map(p => [p.events, p.bytes]),
    'the recount counts index entries in the bytes as appends do')
  clock.now += 60
  t.equal(await second.store.expire(), 0, 'the stale entry expires nothing')
  t.same(sorted(await onDisk(second.backend)), sorted(expected), 'and is removed when it comes due')
  clock.now += 10_000
  t.equal(await second.store.expire(), 2)
  t.same(await onDisk(second.backend), [])
  await second.store.close()
})

t.test('LevelDB: after a restart, delivering events with a deadline takes their index entries and bytes with them', async t => {
  // A lease reads each event for its deadline only when the store may hold one: it must know
  // that from the index at open, not only from appends since.
  const path = `${t.testdir()}/store`
  const open = async (): Promise<{ store: RingBuffer, backend: LevelBackend }> => {
    const backend = new LevelBackend({ path, logger: silentLogger() })
    const store = new RingBuffer(backend, { capacityBytes: 1 << 20, expiryIntervalMs: 0, now: () => START }, silentLogger())
    await store.open()
    return { store, backend }
  }
  const first = await open()
  await first.store.append([ev(1, 1, START + 5000), ev(2, 1), ev(3, 2, START + 7000)])
  await first.store.close()

  const second = await open()
  const lease = await second.store.lease(10, 1 << 20)
  t.equal(lease?.events.length, 3)
  await second.store.ack(lease!.id)
  const left = []
  for await (const e of second.backend.allExpiry()) left.push(e)
  t.same(left, [], 'no index entry outlives its event')
  t.same(second.store.stats().perPriority.map(p => [p.events, p.bytes]), [[0, 0], [0, 0], [0, 0], [0, 0]], 'and the byte count returns to zero')
  await second.store.close()
})

/** A disk that fills up on demand; a MemoryBackend underneath. */
class FillableDisk implements StoreBackend {
  full = false
  constructor (readonly inner: MemoryBackend) {}
  async open (): ReturnType<MemoryBackend['open']> { return await this.inner.open() }
  async write (w: BackendWrite): ReturnType<MemoryBackend['write']> {
    if (this.full) throw Object.assign(new Error('IO error: No space left on device'), { code: 'ENOSPC' })
    await this.inner.write(w)
    return { durable: true }
  }

  scan: MemoryBackend['scan'] = async (p, o) => await this.inner.scan(p, o)
  scanExpiry: MemoryBackend['scanExpiry'] = async (b, a, l) => await this.inner.scanExpiry(b, a, l)
  getEvents: MemoryBackend['getEvents'] = async k => await this.inner.getEvents(k)
  async compact (): Promise<void> {}
  async close (): Promise<void> { await this.inner.close() }
  memoryBytes (): number { return 0 }
}

t.test('disk full: deadlines expire from disk and overlay alike, and the index moves back to disk intact', async t => {
  const clock = { now: START }
  const disk = new FillableDisk(new MemoryBackend(new MemoryVolume()))
  const fallback = new FallbackBackend(disk, silentLogger())
  const store = new RingBuffer(fallback, {
    capacityBytes: 1 << 20, expiryIntervalMs: 0, memoryFallback: { maxBytes: 1 << 20, retryIntervalMs: 10 }, groupCommit: { windowMs: 0, maxEvents: 100 }, now: () => clock.now
  }, silentLogger())
  await store.open()
  const now = clock.now
  t.equal((await store.append([ev(1, 1, now + 10), ev(2, 1, now + 1000)])).durable, true)
  disk.full = true
  const r = await store.append([ev(3, 1, now + 10), ev(4, 1, now + 2000), ev(5, 1)])
  t.same([r.accepted, r.durable], [3, false], 'held in memory')
  clock.now += 100
  t.equal(await store.expire(), 2, 'ev1 from disk, ev3 from memory')
  disk.full = false
  await waitFor('disk mode again', () => store.stats().mode === 'disk', 2000)
  t.equal(store.stats().mode, 'disk')
  const expected = await expectedIndex(store)
  t.same(expected.map(e => e.seq), [2, 4])
  t.same(sorted(disk.inner.expiryEntries()), sorted(expected), 'the disk index: ev1 deleted, ev4 added')
  clock.now += 5000
  t.equal(await store.expire(), 2)
  t.same(disk.inner.expiryEntries(), [])
  await store.close()
})

t.test('a backlog of expiries is written in bounded commits, priority TTL and deadlines alike', async t => {
  const clock = { now: START }
  const writes: number[] = []
  class CountingBackend extends MemoryBackend {
    override async write (w: BackendWrite): ReturnType<MemoryBackend['write']> {
      if (w.dels.length > 0) writes.push(w.dels.length)
      return await super.write(w)
    }
  }
  const store = new RingBuffer(new CountingBackend(), { capacityBytes: 1 << 30, ttlMs: { low: 1000 }, expiryIntervalMs: 0, groupCommit: { windowMs: 0, maxEvents: 10_000 }, now: () => clock.now })
  await store.open()
  for (let i = 0; i < 25_000; i += 5000) {
    await store.append(Array.from({ length: 5000 }, (_, j) => ev(i + j, 0)))
    await store.append(Array.from({ length: 5000 }, (_, j) => ev(i + j, 1, START + 10)))
  }
  clock.now += 2000
  t.equal(await store.expire(), 50_000, 'every due event, in one call')
  t.same(writes, [20_000, 20_000, 10_000], 'in commits of at most 20000')
  t.equal(store.stats().events, 0)
  await store.close()
})
