/**
 * The uplink's optional limits against a real broker (the embedded one), on an injected clock:
 * the rate cap holds the published bytes per second within 10% over the whole run, and a spent
 * daily budget lets only critical events through until the next UTC day. The injected sleep
 * advances the clock, so the test takes no real time waiting.
 */
import v8 from 'node:v8'
import vm from 'node:vm'
import t from 'tap'
import { issueCertificate } from '../../src/pki/generate.js'
import { openMemoryStore, type BatchSource, type EventStore } from '../../src/store/index.js'
import type { Priority } from '../../src/types.js'
import { systemClock, type Clock } from '../../src/clock.js'
import { Uplink, type UplinkOptions } from '../../src/uplink/session.js'
import { startEmbeddedBroker } from '../../simulate/embedded-broker.js'
import { silentLogger } from '../helpers/logger.js'
import { makeCa, makeClient } from '../helpers/test-pki.js'
import { testUplinkOptions } from '../helpers/uplink-options.js'
import { waitFor } from '../helpers/wait.js'

v8.setFlagsFromString('--expose-gc')

const ca = makeCa()
const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
const gw = makeClient(ca, { commonName: 'gw' })

/** What to print when a wait times out. */
let debug = (): string => ''
/** The shared bounded wait (helpers/wait.ts), its timeout message followed by the session's state. */
async function waitExplained (what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  await waitFor(what, cond, ms, 10).catch((err: Error) => { throw new Error(`${err.message}: ${debug()}`) })
}

async function fill (store: EventStore, n: number, priorityOf: (i: number) => Priority): Promise<void> {
  for (let i = 0; i < n; i += 1000) {
    await store.append(Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({
      deviceId: 'd', deviceSeq: i + j + 1, gatewayTimeMs: 1, priority: priorityOf(i + j), stream: 's', value: { kind: 'raw' as const, raw: new Uint8Array(100).fill((i + j) & 0xff) }
    })))
  }
}

/** The real timers, but the time of `clock` and waits that `sleep` decides. */
function fakeClock (clock: { now: number }, sleep: Clock['sleep']): Clock {
  return { ...systemClock, now: () => clock.now, sleep }
}

function options (url: string, clock: { now: number }, over: Partial<UplinkOptions>): UplinkOptions {
  return testUplinkOptions(url, () => ({ ca: ca.certPem, cert: gw.certPem, key: gw.keyPem }), {
    gatewayId: 'gw',
    protocolVersion: 4,
    window: 4,
    batch: { maxEvents: 1000, maxBytes: 8 * 1024 },
    lingerMs: 50,
    compression: { compression: 'none' },
    // Fractional waits (bytes / rate) advance the fake clock exactly, as real time would.
    clock: fakeClock(clock, async (ms: number) => { clock.now += ms; await new Promise(resolve => setImmediate(resolve)) }),
    ...over
  })
}

t.test('the rate cap holds the published bytes per second within 10%', async t => {
  const broker = await startEmbeddedBroker({ tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem } })
  t.teardown(async () => { await broker.close() })
  const store = await openMemoryStore({ capacityBytes: 64 << 20, expiryIntervalMs: 0 })
  t.teardown(async () => { await store.close() })
  await fill(store, 10_000, () => 1)
  const clock = { now: Date.UTC(2026, 10, 21, 10, 0, 0) }
  // Watch each lease: the clock and the bytes sent before that batch.
  const leases: Array<{ at: number, bytesBefore: number }> = []
  let uplink: Uplink | undefined
  const watched: BatchSource = {
    lease: async (n, b, o) => {
      const l = await store.lease(n, b, o)
      if (l !== null) leases.push({ at: clock.now, bytesBefore: uplink?.stats().bytesSent ?? 0 })
      return l
    },
    ack: async id => { await store.ack(id) },
    nack: id => { store.nack(id) }
  }
  const rate = 64 * 1024
  uplink = new Uplink(watched, options(broker.url, clock, { rateLimitBytesPerSecond: rate }), silentLogger())
  uplink.start()
  debug = () => JSON.stringify({ u: uplink?.stats(), s: store.stats().perPriority, clock: clock.now })
  await waitExplained('the store drained', () => store.stats().events === 0)
  await uplink.stop(1000)
  const first = leases[0]
  const last = leases[leases.length - 1]
  if (first === undefined || last === undefined) throw new Error('no leases')
  const measured = last.bytesBefore / ((last.at - first.at) / 1000)
  t.ok(Math.abs(measured - rate) / rate < 0.1, `${Math.round(measured)} B/s published for a cap of ${rate} B/s`)
  t.ok(uplink.stats().rateWaits > 10, `the cap made the session wait (${uplink.stats().rateWaits} times)`)
})

t.test('a spent daily budget lets only critical events through until the next UTC day', async t => {
  const broker = await startEmbeddedBroker({ tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem } })
  t.teardown(async () => { await broker.close() })
  const store = await openMemoryStore({ capacityBytes: 64 << 20, expiryIntervalMs: 0 })
  t.teardown(async () => { await store.close() })
  await fill(store, 5000, i => (i % 10 === 0 ? 3 : 1))
  const clock = { now: Date.UTC(2026, 10, 21, 10, 0, 0) }
  const budget = 100 * 1024
  const uplink = new Uplink(store, options(broker.url, clock, { dailyBudgetBytes: budget, batch: { maxEvents: 1000, maxBytes: 4 * 1024 } }), silentLogger())
  uplink.start()
  debug = () => JSON.stringify({ u: uplink?.stats(), s: store.stats().perPriority, clock: clock.now })
  const critical = (): number => store.stats().perPriority.find(p => p.priority === 'critical')?.events ?? -1
  await waitExplained('the budget spent and the critical events delivered', () => uplink.stats().budgetExhausted && critical() === 0 && uplink.stats().inFlight === 0)
  const s = uplink.stats()
  const normalLeft = store.stats().perPriority.find(p => p.priority === 'normal')?.events ?? 0
  t.ok(normalLeft > 0, `${normalLeft} normal events wait for the next day`)
  t.ok(s.bytesToday >= budget, 'the budget was used')
  const normalBytes = s.bytesToday
  t.comment(`bytes today: ${s.bytesToday} for a budget of ${budget}`)
  // Everything past the budget was critical: the normal part stayed within 10% of the budget.
  t.ok(normalBytes <= budget * 1.1 + 500 * 130, 'spending stopped at the budget, but for critical events')
  // The next UTC day: a new budget, spent on normal events again, and stopped at it again.
  clock.now = Date.UTC(2026, 10, 22, 0, 0, 1)
  t.equal(uplink.stats().bytesToday, 0, 'a new day starts a new budget')
  await waitExplained('the second day\'s budget spent', () => uplink.stats().budgetExhausted && uplink.stats().inFlight === 0)
  const leftAfter = store.stats().perPriority.find(p => p.priority === 'normal')?.events ?? 0
  const perEvent = 128
  const delivered = normalLeft - leftAfter
  t.ok(Math.abs(delivered * perEvent - budget) / budget < 0.1, `day 2: ${delivered} normal events (~${delivered * perEvent} B) for a budget of ${budget} B`)
  t.ok(uplink.stats().bytesToday <= budget * 1.1, `day 2 spent ${uplink.stats().bytesToday} B`)
  await uplink.stop(1000)
})

t.test('linger: after a batch that was not full, the next lease waits, so a trickle goes out in fuller batches', async t => {
  const broker = await startEmbeddedBroker({ tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem } })
  t.teardown(async () => { await broker.close() })
  const store = await openMemoryStore({ capacityBytes: 64 << 20, expiryIntervalMs: 0 })
  t.teardown(async () => { await store.close() })
  const clock = { now: Date.UTC(2026, 10, 21, 10, 0, 0) }
  const calls: number[] = []
  const watched: BatchSource = {
    lease: async (n, b, o) => {
      const l = await store.lease(n, b, o)
      calls.push(l?.events.length ?? 0)
      return l
    },
    ack: async id => { await store.ack(id) },
    nack: id => { store.nack(id) }
  }
  // A sleep the test releases by hand: it sees what the session waits for, and when.
  const sleeps: Array<{ ms: number, release: () => void }> = []
  await fill(store, 5, () => 1)
  const uplink = new Uplink(watched, options(broker.url, clock, {
    lingerMs: 2000,
    clock: fakeClock(clock, async (ms: number) => { await new Promise<void>(resolve => { sleeps.push({ ms, release: () => { clock.now += ms; resolve() } }) }) })
  }), silentLogger())
  uplink.start()
  await waitExplained('the first batch acknowledged and the session waiting', () => uplink.stats().eventsAcked === 5 && sleeps.length === 1)
  t.same(calls, [5], 'after a batch of 5 (not full) the session waits before asking the store again')
  t.equal(sleeps[0]?.ms, 2000, 'for the linger time')
  await store.append(Array.from({ length: 7 }, (_, i) => ({ deviceId: 'd', deviceSeq: 100 + i, gatewayTimeMs: 1, priority: 1 as const, stream: 's' })))
  sleeps.shift()?.release()
  await waitExplained('the second batch', () => uplink.stats().eventsAcked === 12)
  t.same(calls.slice(0, 2), [5, 7], 'the events that arrived meanwhile went out together')
  const stopping = uplink.stop(1000)
  for (const s of sleeps.splice(0)) s.release()
  await stopping
})

t.test('a batch that cannot be prepared (the batch-sequence file on a full disk) goes back to the store, and delivery resumes', async t => {
  const broker = await startEmbeddedBroker({ tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem } })
  t.teardown(async () => { await broker.close() })
  const store = await openMemoryStore({ capacityBytes: 64 << 20, expiryIntervalMs: 0 })
  t.teardown(async () => { await store.close() })
  await fill(store, 2000, () => 1)
  const clock = { now: Date.UTC(2026, 10, 21, 10, 0, 0) }
  let seq = 0
  let failures = 0
  const uplink = new Uplink(store, options(broker.url, clock, {
    nextBatchSeq: () => {
      if (failures < 3) { failures++; throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }) }
      return ++seq
    }
  }), silentLogger())
  uplink.start()
  await waitExplained('the store drained', () => store.stats().events === 0)
  await uplink.stop(1000)
  t.equal(failures, 3, 'three batches could not be prepared')
  t.equal(uplink.stats().eventsAcked, 2000, 'every event delivered once the disk had room')
  t.equal(store.stats().leasedEvents, 0, 'no lease stranded')
})

t.test('an idle session polls the empty store for as long as it is connected without its memory growing', async t => {
  // Each wait used to leave a reaction on a promise that lives as long as the connection: an
  // idle gateway polling every 50 ms grew by hundreds of MB a day.
  const gc = vm.runInNewContext('gc') as () => void
  const broker = await startEmbeddedBroker({ tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem } })
  t.teardown(async () => { await broker.close() })
  const store = await openMemoryStore({ capacityBytes: 64 << 20, expiryIntervalMs: 0 })
  t.teardown(async () => { await store.close() })
  let polls = 0
  const counted: BatchSource = {
    lease: async (n, b, o) => { polls++; return await store.lease(n, b, o) },
    ack: async id => { await store.ack(id) },
    nack: id => { store.nack(id) }
  }
  const clock = { now: Date.UTC(2026, 10, 21, 10, 0, 0) }
  const uplink = new Uplink(counted, options(broker.url, clock, {}), silentLogger())
  uplink.start()
  await waitExplained('the first polls', () => polls > 1000)
  gc()
  const before = process.memoryUsage().heapUsed
  const from = polls
  await waitExplained('100000 more polls', () => polls > from + 100_000, 60_000)
  gc()
  const grown = process.memoryUsage().heapUsed - before
  t.ok(grown < 8 * 1024 * 1024, `heap grew ${(grown / 1024 / 1024).toFixed(1)} MB over 100000 polls`)
  t.equal(uplink.state(), 'online')
  await uplink.stop(1000)
})
