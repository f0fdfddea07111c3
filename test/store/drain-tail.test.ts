/**
 * The drain's tail (src/store/drain.ts): once a reader has read to the end of its snapshot, the
 * events committed since are read by key, not by a new LevelDB iterator per lease. What a user
 * relies on: every event is delivered once and in order whichever way it was read, a nack brings
 * its events back first, and a trickle of events does not open an iterator per batch (Node 24
 * keeps the native memory of closed iterators long enough to grow the process without bound).
 */
import t from 'tap'
import { decodeBatch } from '../../src/proto/codec.js'
import { LevelBackend, RingBuffer } from '../../src/store/index.js'
import type { BackendReader } from '../../src/store/backend.js'
import type { Priority } from '../../src/types.js'
import { silentLogger } from '../helpers/logger.js'
import { ev } from './conformance.js'

const OPTIONS = { capacityBytes: 64 * 1024 * 1024, groupCommit: { windowMs: 0, maxEvents: 1000 } }

/** A LevelDB store whose backend counts the readers (iterators) the drain opens. */
async function countingStore (dir: string): Promise<{ store: RingBuffer, readers: () => number }> {
  const backend = new LevelBackend({ path: dir, logger: silentLogger() })
  const open = backend.openReader
  let readers = 0
  Object.defineProperty(backend, 'openReader', {
    value: (priority: Priority, after: number | undefined): BackendReader => { readers++; return open(priority, after) }
  })
  const store = new RingBuffer(backend, OPTIONS, silentLogger())
  await store.open()
  return { store, readers: () => readers }
}

/** Leases until the store has nothing, acking each; the device seqs in delivery order. */
async function drain (store: RingBuffer, maxEvents = 1000): Promise<number[]> {
  const out: number[] = []
  for (let lease = await store.lease(maxEvents, 1 << 30); lease !== null; lease = await store.lease(maxEvents, 1 << 30)) {
    out.push(...decodeBatch(lease.batch).map(e => e.deviceSeq))
    await store.ack(lease.id)
  }
  return out
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)

t.test('a trickle (append a few, lease, ack, again) is read from the tail: not one iterator per lease', async t => {
  const { store, readers } = await countingStore(t.testdir())
  t.teardown(async () => await store.close())
  await store.append(range(1, 10).map(n => ev(n)))
  t.same(await drain(store), range(1, 10), 'what was there before any lease')
  const delivered: number[] = []
  for (let round = 0; round < 50; round++) {
    await store.append(range(11 + round * 5, 15 + round * 5).map(n => ev(n)))
    delivered.push(...await drain(store))
  }
  t.same(delivered, range(11, 260), 'every event of the trickle, once, in order')
  t.ok(readers() <= 3, `iterators opened: ${readers()} for 51 rounds`)
})

t.test('after a restart on a drained store the trickle goes to the tail too', async t => {
  const dir = t.testdir()
  const first = await countingStore(dir)
  await first.store.append(range(1, 100).map(n => ev(n)))
  t.same(await drain(first.store), range(1, 100))
  await first.store.close()
  const { store, readers } = await countingStore(dir)
  t.teardown(async () => await store.close())
  const delivered: number[] = []
  for (let round = 0; round < 20; round++) {
    await store.append(range(101 + round * 3, 103 + round * 3).map(n => ev(n)))
    delivered.push(...await drain(store))
  }
  t.same(delivered, range(101, 160))
  t.ok(readers() <= 3, `iterators opened: ${readers()} for 20 rounds`)
})

t.test('a read cut short by its byte bound is not the end of the snapshot: a reopened backlog of large events drains whole', async t => {
  const dir = t.testdir()
  const first = await countingStore(dir)
  // ~1.6 kB each: LevelDB reads return at most ~1 MiB, ~650 of them, per call.
  const big = (n: number) => ev(n, 1, { value: { kind: 'raw', raw: new Uint8Array(1500).fill(n & 0xff) } })
  for (let from = 1; from <= 3000; from += 500) await first.store.append(range(from, from + 499).map(big))
  await first.store.close()
  const { store } = await countingStore(dir)
  t.teardown(async () => await store.close())
  t.same(await drain(store), range(1, 3000))
})

t.test('a backlog larger than the tail keeps (events appended while a reader is mid-way) is drained whole, in order', async t => {
  const { store } = await countingStore(t.testdir())
  t.teardown(async () => await store.close())
  await store.append(range(1, 3000).map(n => ev(n)))
  const first = await store.lease(1000, 1 << 30)
  t.ok(first)
  const delivered = decodeBatch(first!.batch).map(e => e.deviceSeq)
  await store.ack(first!.id)
  // 20,000 more while the reader is open: the tail keeps at most 8,192 and forgets the older ones.
  for (let from = 3001; from <= 23_000; from += 1000) await store.append(range(from, from + 999).map(n => ev(n)))
  delivered.push(...await drain(store, 700))
  t.same(delivered, range(1, 23_000), 'nothing skipped, nothing twice')
  t.equal(store.stats().events, 0, 'the store counts nothing left')
})

t.test('a nack of events read from the tail brings them back first; priorities stay apart', async t => {
  const { store } = await countingStore(t.testdir())
  t.teardown(async () => await store.close())
  await store.append([ev(1), ev(2)])
  t.same(await drain(store), [1, 2])
  await store.append([ev(3), ev(4, 3), ev(5), ev(6)])
  const lease = await store.lease(2, 1 << 30)
  t.same(decodeBatch(lease!.batch).map(e => e.deviceSeq), [4, 3], 'critical first, then the oldest normal')
  store.nack(lease!.id)
  await store.append([ev(7)])
  t.same(await drain(store), [4, 3, 5, 6, 7], 'the nacked events again, first, then the rest')
})

t.test('events evicted or expired in the tail before they are leased are passed over, counted once', async t => {
  const backend = new LevelBackend({ path: t.testdir(), logger: silentLogger() })
  // Room for ~6 events of ~190 stored bytes: appending more evicts the oldest of the lowest priority.
  const store = new RingBuffer(backend, { ...OPTIONS, capacityBytes: 1200 }, silentLogger())
  await store.open()
  t.teardown(async () => await store.close())
  await store.append([ev(1, 1)])
  t.same(await drain(store), [1])
  await store.append(range(2, 4).map(n => ev(n, 0)))
  await store.append(range(5, 10).map(n => ev(n, 2)))
  const delivered = (await drain(store)).sort((a, b) => a - b)
  const evicted = store.stats().drops.filter(d => d.reason === 'evicted_for_space').reduce((n, d) => n + d.count, 0)
  t.ok(evicted > 0, `some low events were evicted (${evicted})`)
  t.equal(delivered.length + evicted, 9, 'each appended event either delivered or counted evicted')
  t.same(delivered.filter(n => n >= 5), range(5, 10), 'the higher priority kept')
  t.equal(store.stats().events, 0, 'nothing left, nothing counted twice')
})

t.test('a read that fails part-way through a lease: what it had taken is leased again, nothing skipped', async t => {
  const backend = new LevelBackend({ path: t.testdir(), logger: silentLogger() })
  const getEvents = backend.getEvents.bind(backend)
  let calls = 0
  let failOnCall = -1
  Object.defineProperty(backend, 'getEvents', {
    value: async (keys: Parameters<typeof getEvents>[0]) => {
      if (++calls === failOnCall) throw new Error('EIO: i/o error, read')
      return await getEvents(keys)
    }
  })
  const store = new RingBuffer(backend, OPTIONS, silentLogger())
  await store.open()
  t.teardown(async () => { await store.close() })
  // An empty store: what comes next is read from the tail, 4096 keys a call.
  await store.append(Array.from({ length: 5000 }, (_, i) => ev(i + 1, 1)))
  failOnCall = calls + 2
  await t.rejects(store.lease(5000, 1 << 30), /EIO/, 'the second read of the lease fails')
  t.equal(store.stats().leasedEvents, 0, 'nothing of the failed lease stays leased')
  t.same(await drain(store, 5000), Array.from({ length: 5000 }, (_, i) => i + 1), 'every event, once, in order: the 4096 taken before the failure too')
})
