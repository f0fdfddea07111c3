/**
 * The store contract, run against every implementation (memory and LevelDB). Each factory makes a
 * fresh store and can reopen it on the same data, as a process restart would.
 */
import type { Test } from 'tap'
import { decodeBatch } from '../../src/proto/codec.js'
import type { EventStore, RingBufferOptions } from '../../src/store/index.js'
import type { EventRecord, Priority } from '../../src/types.js'
import { waitFor } from '../helpers/wait.js'

export interface StoreFactory {
  /** A fresh, opened store; `reopen` closes nothing: call store.close() first. */
  make (t: Test, options: RingBufferOptions): Promise<{ store: EventStore, reopen: (options?: RingBufferOptions) => Promise<EventStore> }>
}

export function ev (deviceSeq: number, priority: Priority = 1, extra: Partial<EventRecord> = {}): EventRecord {
  return {
    deviceId: extra.deviceId ?? 'dev-1',
    deviceSeq,
    gatewayTimeMs: extra.gatewayTimeMs ?? 1_700_000_000_000 + deviceSeq,
    priority,
    stream: 'telemetry',
    value: { kind: 'raw', raw: new Uint8Array(100).fill(deviceSeq & 0xff) },
    ...extra
  }
}

const BIG = { capacityBytes: 64 * 1024 * 1024, groupCommit: { windowMs: 1, maxEvents: 1000 } }

async function drainAll (store: EventStore): Promise<Array<{ deviceId: string, deviceSeq: number, priority: number }>> {
  const out = []
  for (let l = await store.lease(1000, 1 << 30); l !== null; l = await store.lease(1000, 1 << 30)) {
    out.push(...decodeBatch(l.batch).map(e => ({ deviceId: e.deviceId, deviceSeq: e.deviceSeq, priority: e.priority })))
    await store.ack(l.id)
    if (l.events.length === 0) break
  }
  return out
}

export function storeConformance (t: Test, name: string, factory: StoreFactory): void {
  t.test(`${name}: a second close() returns the close in progress: both resolve once the store is closed`, async t => {
    const { store } = await factory.make(t, BIG)
    await store.append([ev(1, 0), ev(2, 3)])
    const first = store.close()
    const second = store.close()
    await second
    t.equal(store.stats().state, 'closed', 'the second close waited for the first')
    await first
    await store.close()
    t.equal(store.stats().state, 'closed', 'a close after the close is a no-op')
  })

  t.test(`${name}: drains by priority high to low, oldest first, as a decodable batch`, async t => {
    const { store } = await factory.make(t, BIG)
    await store.append([ev(1, 0), ev(2, 3), ev(3, 1), ev(4, 3), ev(5, 2), ev(6, 0)])
    const lease = await store.lease(100, 1 << 20)
    t.ok(lease)
    const events = decodeBatch(lease!.batch)
    t.same(events.map(e => e.deviceSeq), [2, 4, 5, 3, 1, 6])
    t.equal(lease!.events.length, 6)
    t.equal(events[0]?.deviceId, 'dev-1')
    t.equal(lease!.lastStoreSeq - lease!.firstStoreSeq, 5, 'store seqs are one global counter')
    await store.close()
  })

  t.test(`${name}: stats count events stored per priority; the oldest buffered event's time is known`, async t => {
    const { store } = await factory.make(t, BIG)
    t.equal(await store.oldestEventTimeMs(), undefined, 'empty: no oldest event')
    await store.append([ev(1, 0, { gatewayTimeMs: 5000 }), ev(2, 3, { gatewayTimeMs: 3000 }), ev(3, 3, { gatewayTimeMs: 9000 }), ev(4, 1, { gatewayTimeMs: 4000 })])
    t.same(store.stats().perPriority.map(p => p.stored), [1, 1, 0, 2])
    t.equal(await store.oldestEventTimeMs(), 3000, 'the oldest over every priority')
    const lease = await store.lease(2, 1 << 20)
    t.equal(await store.oldestEventTimeMs(), 3000, 'leased events are still buffered')
    await store.ack(lease!.id)
    t.equal(await store.oldestEventTimeMs(), 4000, 'acked (delivered) events are gone')
    t.same(store.stats().perPriority.map(p => p.stored), [1, 1, 0, 2], 'a delivery does not change the stored count')
    await store.close()
  })

  t.test(`${name}: a lease can be limited to a minimum priority (a data budget spent: critical only)`, async t => {
    const { store } = await factory.make(t, BIG)
    await store.append([ev(1, 0), ev(2, 3), ev(3, 1), ev(4, 3), ev(5, 2)])
    const critical = await store.lease(100, 1 << 20, { minPriority: 3 })
    t.same(decodeBatch(critical!.batch).map(e => e.deviceSeq), [2, 4])
    t.equal(await store.lease(100, 1 << 20, { minPriority: 3 }), null, 'nothing more at that level')
    const rest = await store.lease(100, 1 << 20)
    t.same(decodeBatch(rest!.batch).map(e => e.deviceSeq), [5, 3, 1], 'the others stay, in order')
    await store.close()
  })

  t.test(`${name}: newest-first drain order when configured`, async t => {
    const { store } = await factory.make(t, { ...BIG, drainOrder: 'newest-first' })
    await store.append([ev(1), ev(2), ev(3), ev(4, 2)])
    const a = await store.lease(2, 1 << 20)
    const b = await store.lease(10, 1 << 20)
    t.same(decodeBatch(a!.batch).map(e => e.deviceSeq), [4, 3])
    t.same(decodeBatch(b!.batch).map(e => e.deviceSeq), [2, 1])
    await store.close()
  })

  t.test(`${name}: lease respects maxEvents and maxBytes; leases never overlap`, async t => {
    const { store } = await factory.make(t, BIG)
    await store.append(Array.from({ length: 10 }, (_, i) => ev(i + 1)))
    const a = await store.lease(3, 1 << 20)
    t.equal(a!.events.length, 3)
    const b = await store.lease(100, a!.events[0]!.byteLength * 2)
    t.equal(b!.events.length, 2, 'maxBytes bounds the lease')
    const c = await store.lease(100, 1)
    t.equal(c!.events.length, 1, 'at least one event even when it exceeds maxBytes')
    const seqs = [a, b, c].flatMap(l => decodeBatch(l!.batch).map(e => e.deviceSeq))
    t.same(seqs, [1, 2, 3, 4, 5, 6])
    t.equal(store.stats().leasedEvents, 6)
    await store.close()
  })

  t.test(`${name}: ack deletes exactly the leased events; nack returns them to the head`, async t => {
    const { store } = await factory.make(t, BIG)
    await store.append(Array.from({ length: 6 }, (_, i) => ev(i + 1)))
    const a = await store.lease(2, 1 << 20)
    const b = await store.lease(2, 1 << 20)
    await store.ack(a!.id)
    t.equal(store.stats().events, 4)
    store.nack(b!.id)
    const c = await store.lease(10, 1 << 20)
    t.same(decodeBatch(c!.batch).map(e => e.deviceSeq), [3, 4, 5, 6], 'nacked events come first again')
    await store.ack(c!.id)
    t.equal(store.stats().events, 0)
    t.equal(store.stats().usedBytes, 0)
    t.equal(await store.lease(10, 1 << 20), null, 'empty store leases nothing')
    await t.rejects(store.ack(a!.id), { code: 'EDGEFWD_ERR_STORE_UNKNOWN_LEASE' })
    t.throws(() => store.nack(b!.id), { code: 'EDGEFWD_ERR_STORE_UNKNOWN_LEASE' })
    await store.close()
  })

  t.test(`${name}: a full store evicts the lowest priority oldest first and reports it`, async t => {
    const probe = await factory.make(t, BIG)
    await probe.store.append([ev(1)])
    const size = probe.store.stats().usedBytes
    await probe.store.close()
    const { store } = await factory.make(t, { ...BIG, capacityBytes: size * 4 })
    await store.append([ev(1, 1, { deviceId: 'a' }), ev(1, 0, { deviceId: 'b' }), ev(2, 0, { deviceId: 'b' }), ev(2, 1, { deviceId: 'a' })])
    const r = await store.append([ev(3, 1, { deviceId: 'a' }), ev(4, 1, { deviceId: 'a' }), ev(5, 1, { deviceId: 'a' })])
    t.equal(r.accepted, 3)
    t.equal(r.evicted, 3, 'both low events, then the oldest normal one')
    t.ok(store.stats().usedBytes <= size * 4)
    const lease = await store.lease(100, 1 << 20)
    t.same(decodeBatch(lease!.batch).map(e => `${e.deviceId}${e.deviceSeq}`), ['a2', 'a3', 'a4', 'a5'])
    const report = lease!.report!
    t.same(report.counts.map(c => [c.priority, c.reason, c.count]), [[0, 'evicted_for_space', 2], [1, 'evicted_for_space', 1]])
    t.same(report.ranges.map(x => [x.deviceId, x.firstSeq, x.lastSeq, x.count, x.priority]), [['a', 1, 1, 1, 1], ['b', 1, 2, 2, 0]])
    await store.ack(lease!.id)
    t.equal(await store.lease(100, 1 << 20), null, 'the report is delivered once')
    const drops = store.stats().drops
    t.same(drops.map(d => [d.priority, d.reason, d.count]).sort(), [['low', 'evicted_for_space', 2], ['normal', 'evicted_for_space', 1]])
    await store.close()
  })

  t.test(`${name}: an incoming event is refused when only higher priorities or leased events remain`, async t => {
    const probe = await factory.make(t, BIG)
    await probe.store.append([ev(1)])
    const size = probe.store.stats().usedBytes
    await probe.store.close()
    const { store } = await factory.make(t, { ...BIG, capacityBytes: size * 2 })
    await store.append([ev(1, 3), ev(2, 1)])
    const leased = await store.lease(1, 1 << 20) // the critical one
    const r = await store.append([ev(3, 0), ev(4, 1)])
    t.same(r.rejected, [{ index: 0, reason: 'rejected_full' }], 'a low event cannot evict normal')
    t.equal(r.accepted, 1, 'a normal event evicts the older normal one')
    t.equal(r.evicted, 1)
    const r2 = await store.append([ev(5, 3)])
    t.equal(r2.accepted, 1, 'critical evicts normal')
    const leased2 = await store.lease(10, 1 << 20) // ev5: now everything is in flight
    const r3 = await store.append([ev(6, 3)])
    t.same(r3.rejected, [{ index: 0, reason: 'rejected_full' }], 'leased events are never evicted')
    store.nack(leased2!.id)
    store.nack(leased!.id)
    const lease = await store.lease(100, 1 << 20)
    t.same(decodeBatch(lease!.batch).map(e => e.deviceSeq), [1, 5])
    const counts = Object.fromEntries(lease!.report!.counts.map(c => [`${c.priority}:${c.reason}`, c.count]))
    t.same(counts, { '0:rejected_full': 1, '1:evicted_for_space': 2, '3:rejected_full': 1 })
    await store.close()
  })

  t.test(`${name}: events past their priority's TTL expire and are reported`, async t => {
    let now = 1_000_000
    const { store } = await factory.make(t, { ...BIG, ttlMs: { low: 1000 }, expiryIntervalMs: 0, now: () => now })
    await store.append([ev(1, 0, { gatewayTimeMs: now }), ev(2, 0, { gatewayTimeMs: now + 500 }), ev(3, 1, { gatewayTimeMs: now })])
    now += 1200
    t.equal(await store.expire(), 1, 'only the low event older than 1 s')
    now += 400
    t.equal(await store.expire(), 1)
    const lease = await store.lease(100, 1 << 20)
    t.same(decodeBatch(lease!.batch).map(e => e.deviceSeq), [3], 'normal has no TTL')
    t.same(lease!.report!.counts.map(c => [c.priority, c.reason, c.count, c.firstGatewayTimeMs]), [[0, 'expired_ttl', 2, 1_000_000]])
    await store.close()
  })

  t.test(`${name}: new priority TTLs apply from the next sweep, without a restart`, async t => {
    let now = 1_000_000
    const { store } = await factory.make(t, { ...BIG, expiryIntervalMs: 0, now: () => now })
    await store.append([ev(1, 0, { gatewayTimeMs: now }), ev(2, 1, { gatewayTimeMs: now })])
    now += 5000
    t.equal(await store.expire(), 0, 'no TTL yet')
    store.setTtl({ normal: 1000 })
    t.equal(await store.expire(), 1, 'the normal event is past its new TTL')
    t.same(store.stats().perPriority.map(p => p.events), [1, 0, 0, 0])
    store.setTtl({})
    now += 60_000
    t.equal(await store.expire(), 0, 'TTLs removed again')
    await store.close()
  })

  t.test(`${name}: leased events do not expire`, async t => {
    let now = 1_000_000
    const { store } = await factory.make(t, { ...BIG, ttlMs: { normal: 10 }, expiryIntervalMs: 0, now: () => now })
    await store.append([ev(1, 1, { gatewayTimeMs: now }), ev(2, 1, { gatewayTimeMs: now })])
    const l = await store.lease(1, 1 << 20)
    now += 100
    t.equal(await store.expire(), 1)
    await store.ack(l!.id)
    t.equal(store.stats().events, 0)
    await store.close()
  })

  t.test(`${name}: an event's own deadline expires it wherever it sits in the queue, counted and reported`, async t => {
    let now = 1_000_000
    const { store } = await factory.make(t, { ...BIG, expiryIntervalMs: 0, now: () => now })
    await store.append([
      ev(1, 1, { gatewayTimeMs: now }),
      ev(2, 1, { gatewayTimeMs: now, expiresAtMs: now + 5000 }),
      ev(3, 1, { gatewayTimeMs: now, expiresAtMs: now + 100 }),
      ev(4, 2, { gatewayTimeMs: now, expiresAtMs: now + 100 }),
      ev(5, 1, { gatewayTimeMs: now })
    ])
    now += 100
    t.equal(await store.expire(), 0, 'due strictly after the deadline, as the priority TTL')
    now += 1
    t.equal(await store.expire(), 2, 'the two short deadlines, behind an older long-lived event')
    t.equal(await store.expire(), 0, 'a sweep that finds nothing changes nothing')
    const lease = await store.lease(100, 1 << 20)
    const events = decodeBatch(lease!.batch)
    t.same(events.map(e => e.deviceSeq), [1, 2, 5])
    t.equal(events[1]?.expiresAtMs, 1_005_000, 'the deadline travels upstream with the event')
    t.same(lease!.report!.counts.map(c => [c.priority, c.reason, c.count]), [[1, 'expired_ttl', 1], [2, 'expired_ttl', 1]])
    t.same(lease!.report!.ranges.map(r => [r.deviceId, r.firstSeq, r.lastSeq, r.priority]), [['dev-1', 3, 3, 1], ['dev-1', 4, 4, 2]])
    await store.ack(lease!.id)
    now += 10_000
    t.equal(await store.expire(), 0, 'acked events leave the index with them')
    t.equal(store.stats().events, 0)
    t.equal(store.stats().usedBytes, 0, 'index entries are counted in used bytes and freed with their events')
    await store.close()
  })

  t.test(`${name}: the deadline and the priority TTL both apply: whichever comes first`, async t => {
    let now = 1_000_000
    const { store } = await factory.make(t, { ...BIG, ttlMs: { normal: 1000 }, expiryIntervalMs: 0, now: () => now })
    await store.append([ev(1, 1, { gatewayTimeMs: now, expiresAtMs: now + 5000 }), ev(2, 1, { gatewayTimeMs: now, expiresAtMs: now + 10 })])
    now += 11
    t.equal(await store.expire(), 1, 'the short deadline')
    now += 1000
    t.equal(await store.expire(), 1, 'the priority TTL, before the long deadline')
    now += 10_000
    t.equal(await store.expire(), 0, 'and its index entry went with it')
    t.equal(store.stats().events, 0)
    t.same(store.stats().drops.map(d => [d.priority, d.reason, d.count]), [['normal', 'expired_ttl', 2]])
    await store.close()
  })

  t.test(`${name}: a leased event outlives its deadline until nacked; evicted events leave the index`, async t => {
    let now = 1_000_000
    const probe = await factory.make(t, BIG)
    await probe.store.append([ev(1, 1, { expiresAtMs: now + 10 })])
    const size = probe.store.stats().usedBytes
    await probe.store.close()
    const { store } = await factory.make(t, { ...BIG, capacityBytes: size * 3, expiryIntervalMs: 0, now: () => now })
    await store.append([ev(1, 1, { expiresAtMs: now + 10 }), ev(2, 0, { expiresAtMs: now + 10 }), ev(3, 0, { expiresAtMs: now + 10 })])
    const leased = await store.lease(1, 1 << 20)
    t.same(decodeBatch(leased!.batch).map(e => e.deviceSeq), [1])
    const r = await store.append([ev(4, 1)])
    t.equal(r.evicted, 1, 'room made by evicting the oldest low event, which had a deadline')
    now += 100
    t.equal(await store.expire(), 1, 'only ev3: ev1 is in flight, ev2 was evicted')
    store.nack(leased!.id)
    t.equal(await store.expire(), 1, 'back in the queue, ev1 expires at the next sweep')
    const lease = await store.lease(100, 1 << 20)
    t.same(decodeBatch(lease!.batch).map(e => e.deviceSeq), [4])
    const counts = Object.fromEntries(lease!.report!.counts.map(c => [`${c.priority}:${c.reason}`, c.count]))
    t.same(counts, { '0:evicted_for_space': 1, '0:expired_ttl': 1, '1:expired_ttl': 1 })
    await store.close()
  })

  t.test(`${name}: an append that lands in the same commit as a sweep never evicts what the sweep expired`, async t => {
    let now = 1_000_000
    const first = (): EventRecord[] => [ev(1, 0, { expiresAtMs: now + 10 }), ev(2, 0), ev(3, 0)]
    const probe = await factory.make(t, BIG)
    await probe.store.append(first())
    const full = probe.store.stats().usedBytes
    await probe.store.close()
    const { store } = await factory.make(t, { ...BIG, capacityBytes: full, groupCommit: { windowMs: 50, maxEvents: 1000 }, expiryIntervalMs: 0, now: () => now })
    await store.append(first())
    now += 100
    // The append waits out its group window; the sweep starts at once and takes it along.
    const [appended, expired] = await Promise.all([store.append([ev(4, 0, { value: { kind: 'raw', raw: new Uint8Array(250) } })]), store.expire()])
    t.equal(expired, 1)
    t.equal(appended.evicted, 1, 'one eviction beyond the room the expiry freed')
    const lease = await store.lease(100, 1 << 20)
    t.same(decodeBatch(lease!.batch).map(e => e.deviceSeq), [3, 4])
    t.same(Object.fromEntries(lease!.report!.counts.map(c => [c.reason, c.count])), { evicted_for_space: 1, expired_ttl: 1 })
    await store.ack(lease!.id)
    t.same([store.stats().events, store.stats().usedBytes], [0, 0], 'counts stayed exact')
    await store.close()
  })

  t.test(`${name}: deadlines survive a restart`, async t => {
    let now = 1_000_000
    const options = { ...BIG, expiryIntervalMs: 0, now: () => now }
    const { store, reopen } = await factory.make(t, options)
    await store.append([ev(1, 1, { expiresAtMs: now + 10 }), ev(2, 1)])
    await store.close()
    const again = await reopen(options)
    now += 11
    t.equal(await again.expire(), 1)
    t.same((await drainAll(again)).map(e => e.deviceSeq), [2])
    await again.close()
  })

  t.test(`${name}: the expiry timer sweeps deadlines without any priority TTL configured`, async t => {
    const { store } = await factory.make(t, { ...BIG, expiryIntervalMs: 20 })
    await store.append([ev(1, 1, { expiresAtMs: Date.now() + 30 }), ev(2, 1)])
    await waitFor('the expired event swept', () => store.stats().events <= 1, 2000)
    t.equal(store.stats().events, 1)
    t.same(store.stats().drops.map(d => [d.priority, d.reason, d.count]), [['normal', 'expired_ttl', 1]])
    await store.close()
  })

  t.test(`${name}: concurrent appends are grouped into few writes and all resolve`, async t => {
    const { store } = await factory.make(t, { ...BIG, groupCommit: { windowMs: 5, maxEvents: 10_000 } })
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => store.append([ev(i + 1)])))
    t.ok(results.every(r => r.accepted === 1 && r.rejected.length === 0))
    t.equal(store.stats().events, 200)
    t.same((await drainAll(store)).map(e => e.deviceSeq), Array.from({ length: 200 }, (_, i) => i + 1), 'in append order')
    await store.close()
  })

  t.test(`${name}: bad input is refused with a coded error and changes nothing`, async t => {
    const { store } = await factory.make(t, { ...BIG, maxEventBytes: 1024 })
    await t.rejects(store.append([ev(1), { ...ev(2), deviceId: '' }]), { code: 'EDGEFWD_ERR_EVENT_INVALID' })
    await t.rejects(store.append([{ ...ev(2), priority: 7 as Priority }]), { code: 'EDGEFWD_ERR_EVENT_INVALID' })
    await t.rejects(store.append([{ ...ev(2), deviceSeq: -1 }]), { code: 'EDGEFWD_ERR_EVENT_INVALID' })
    await t.rejects(store.append([{ ...ev(2), expiresAtMs: 1.5 }]), { code: 'EDGEFWD_ERR_EVENT_INVALID' })
    await t.rejects(store.append([ev(3, 1, { value: { kind: 'raw', raw: new Uint8Array(2000) } })]), { code: 'EDGEFWD_ERR_EVENT_TOO_LARGE' })
    t.equal(store.stats().events, 0)
    t.same(await store.append([]), { accepted: 0, rejected: [], evicted: 0, durable: true })
    await store.close()
    await t.rejects(store.append([ev(1)]), { code: 'EDGEFWD_ERR_STORE_NOT_OPEN' })
    await t.rejects(store.lease(1, 1), { code: 'EDGEFWD_ERR_STORE_NOT_OPEN' })
  })

  t.test(`${name}: reopen keeps events, counters, pending reports and a monotonic sequence`, async t => {
    const probe = await factory.make(t, BIG)
    await probe.store.append([ev(1)])
    const size = probe.store.stats().usedBytes
    await probe.store.close()
    const options = { ...BIG, capacityBytes: size * 3 }
    const { store, reopen } = await factory.make(t, options)
    await store.append([ev(1, 0), ev(2, 1), ev(3, 2), ev(4, 2)]) // evicts ev1
    const inflight = await store.lease(2, 1 << 20) // never acked: must come back
    t.ok(inflight!.report, 'the eviction report rides on the lease')
    const before = store.stats()
    const lastSeq = before.nextSeq
    await store.close()

    const again = await reopen(options)
    const after = again.stats()
    t.same(after.perPriority.map(p => [p.events, p.bytes]), before.perPriority.map(p => [p.events, p.bytes]))
    t.same(after.drops, before.drops)
    t.equal(after.leasedEvents, 0)
    await again.append([ev(5, 2)])
    const lease = await again.lease(100, 1 << 20)
    const events = decodeBatch(lease!.batch)
    t.same(events.map(e => e.deviceSeq).sort(), [3, 4, 5].sort(), 'unacknowledged leases return after restart; ev2 evicted')
    t.ok(events.find(e => e.deviceSeq === 5)!.storeSeq >= lastSeq, 'the sequence goes on past the old one')
    t.ok(lease!.report, 'the unacknowledged report is carried again')
    t.equal(lease!.report!.counts.reduce((n, c) => n + c.count, 0), 2)
    await again.ack(lease!.id)
    await again.close()
    const third = await reopen(options)
    t.equal(third.stats().events, 0)
    t.equal(await third.lease(100, 1 << 20), null, 'an acked report is gone for good')
    await third.close()
  })
}
