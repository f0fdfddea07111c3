/**
 * Appends, leases, acks, nacks and expiry all at once, as the forwarder runs them: appenders
 * filling a small store (so evictions happen), an uplink-like window of leases acked or nacked at
 * random, and a TTL sweep. At the end every accepted event must have been delivered exactly once
 * or dropped, and every drop reported: delivered + dropped = accepted, exactly.
 */
import t from 'tap'
import type { Test } from 'tap'
import { decodeBatch } from '../../src/proto/codec.js'
import { MemoryVolume, openLevelStore, openMemoryStore } from '../../src/store/index.js'
import type { EventStore, RingBufferOptions } from '../../src/store/index.js'
import type { Priority } from '../../src/types.js'
import { silentLogger } from '../helpers/logger.js'

function random (seed: number): () => number {
  let s = seed >>> 0
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 0x1_0000_0000 }
}

async function run (t: Test, store: EventStore, clock: { now: number }, seed: number): Promise<void> {
  const rand = random(seed)
  let nextDeviceSeq = 0
  let accepted = 0
  let refused = 0
  const delivered = new Set<number>()
  const reported = new Map<string, number>()
  let appending = true

  const appender = async (): Promise<void> => {
    for (let round = 0; round < 60; round++) {
      const events = Array.from({ length: 1 + Math.floor(rand() * 20) }, () => ({
        deviceId: 'dev', deviceSeq: ++nextDeviceSeq, gatewayTimeMs: clock.now, priority: Math.floor(rand() * 4) as Priority, stream: 's', value: { kind: 'raw' as const, raw: new Uint8Array(80) }
      }))
      const r = await store.append(events)
      accepted += r.accepted
      refused += r.rejected.length
      if (rand() < 0.3) clock.now += 50
    }
  }
  const uplink = async (): Promise<void> => {
    while (appending || store.stats().events > 0 || store.stats().pendingReports > 0) {
      const lease = await store.lease(1 + Math.floor(rand() * 40), 1 << 20)
      if (lease === null) { await new Promise(resolve => setImmediate(resolve)); continue }
      await new Promise(resolve => setTimeout(resolve, Math.floor(rand() * 3))) // a random delay before the ack: the interleaving is the point
      if (rand() < 0.25) { store.nack(lease.id); continue }
      await store.ack(lease.id)
      for (const e of decodeBatch(lease.batch)) {
        if (delivered.has(e.deviceSeq)) t.fail(`event ${e.deviceSeq} delivered twice in acked leases`)
        delivered.add(e.deviceSeq)
      }
      for (const c of lease.report?.counts ?? []) reported.set(c.reason, (reported.get(c.reason) ?? 0) + c.count)
    }
  }
  const sweeper = async (): Promise<void> => {
    while (appending) { await store.expire(); await new Promise(resolve => setTimeout(resolve, 2)) } // sweeps paced through the run
  }

  const appenders = Promise.all(Array.from({ length: 4 }, appender)).then(() => { appending = false })
  await Promise.all([appenders, uplink(), uplink(), uplink(), sweeper()])

  const drops = store.stats().drops
  const total = (reason: string): number => drops.filter(d => d.reason === reason).reduce((n, d) => n + d.count, 0)
  const evicted = total('evicted_for_space')
  const expired = total('expired_ttl')
  t.ok(evicted > 0, `evictions happened (${evicted})`)
  t.ok(expired > 0, `expiries happened (${expired})`)
  t.equal(total('rejected_full'), refused, 'every refusal is counted')
  t.equal(delivered.size + evicted + expired, accepted, `delivered ${delivered.size} + evicted + expired = accepted ${accepted}`)
  t.same(Object.fromEntries([...reported].sort()), Object.fromEntries(
    [['evicted_for_space', evicted], ['expired_ttl', expired], ['rejected_full', refused]].filter(([, n]) => n !== 0).sort()), 'every drop was reported in an acked lease')
  t.equal(store.stats().usedBytes, 0)
}

const options = (clock: { now: number }): RingBufferOptions => ({
  capacityBytes: 40_000, ttlMs: { low: 60 }, expiryIntervalMs: 0, groupCommit: { windowMs: 1, maxEvents: 64 }, now: () => clock.now
})

for (const seed of [1, 2, 3, 4]) {
  t.test(`memory store, seed ${seed}`, async t => {
    const clock = { now: 1_000_000 }
    const store = await openMemoryStore(options(clock), new MemoryVolume())
    await run(t, store, clock, seed)
    await store.close()
  })
  t.test(`LevelDB store, seed ${seed}`, async t => {
    const clock = { now: 1_000_000 }
    const store = await openLevelStore(`${t.testdir()}/store`, options(clock), silentLogger())
    await run(t, store, clock, seed)
    await store.close()
  })
}
