/**
 * The uplink's sending rules on an in-memory MQTT peer and a manual clock (no broker, no socket,
 * no sleeping): the in-flight window, linger, the rate cap, the daily budget, dead links and the
 * store ack after a PUBACK.
 */
import t from 'tap'
import type { BatchSource, EventStore, LeaseOptions } from '../../src/store/index.js'
import { ACK_ATTEMPTS } from '../../src/uplink/session.js'
import { appendEvents, EVENTS_TOPIC, flakyAcks, memoryUplink, pubackOldest, startWithBatchInFlight, until } from '../helpers/memory-uplink.js'
import { settle } from '../helpers/manual-clock.js'

t.test('batches in flight never exceed the broker\'s Receive Maximum, nor the configured window', async t => {
  for (const { receiveMaximum, window, expected } of [{ receiveMaximum: 3, window: 8, expected: 3 }, { receiveMaximum: undefined, window: 4, expected: 4 }]) {
    await t.test(`receiveMaximum ${String(receiveMaximum)}, window ${window}`, async t => {
      const { uplink, peer, store } = await memoryUplink(t, { window, batch: { maxEvents: 1, maxBytes: 64 * 1024 } })
      peer.receiveMaximum = receiveMaximum
      await appendEvents(store, 12)
      uplink.start()
      let most = 0
      for (let acked = 0; acked < 12; acked++) {
        await until('a full window (or the last batches)', () => (peer.current?.unanswered(EVENTS_TOPIC).length ?? 0) >= Math.min(expected, 12 - acked))
        await settle()
        const inFlight = peer.current?.unanswered(EVENTS_TOPIC) ?? []
        most = Math.max(most, inFlight.length, uplink.stats().inFlight)
        peer.current?.puback(inFlight[0])
      }
      await until('every batch acknowledged', () => uplink.stats().eventsAcked === 12)
      t.equal(most, expected, `at most ${expected} in flight, and the window filled`)
    })
  }
})

t.test('a batch that was not full holds the next lease back for linger, and no longer', async t => {
  const { uplink, peer, store, clock } = await memoryUplink(t, { lingerMs: 2000, batch: { maxEvents: 10, maxBytes: 64 * 1024 } })
  await appendEvents(store, 3)
  uplink.start()
  await until('the first batch', () => peer.current?.unanswered(EVENTS_TOPIC).length === 1)
  pubackOldest(peer)
  await until('its events deleted', () => uplink.stats().eventsAcked === 3)
  await appendEvents(store, 2, 1, 4)
  await clock.advance(1999)
  t.equal(peer.current?.publishes.filter(p => p.topic === EVENTS_TOPIC).length, 1, 'nothing sent before linger is over')
  await clock.advance(1)
  await until('the second batch', () => peer.current?.unanswered(EVENTS_TOPIC).length === 1)
  t.equal(uplink.stats().eventsPublished, 5, 'the events that came meanwhile went out together, at linger')
})

t.test('the rate cap spaces batches by their bytes', async t => {
  const rate = 1000
  const { uplink, peer, store, clock } = await memoryUplink(t, { rateLimitBytesPerSecond: rate, batch: { maxEvents: 1, maxBytes: 64 * 1024 } })
  await appendEvents(store, 3)
  uplink.start()
  await until('the first batch', () => peer.current?.unanswered(EVENTS_TOPIC).length === 1)
  const first = uplink.stats().bytesSent
  const waitMs = Math.ceil(first * 1000 / rate)
  t.ok(waitMs > 1, `the first batch (${first} bytes) holds the next back ${waitMs} ms`)
  await clock.advance(waitMs - 1)
  t.equal(uplink.stats().published, 1, 'not a byte over the rate')
  t.match(uplink.stats(), { rateWaits: 1, rateWaitMs: first * 1000 / rate }, 'one wait counted, for bytes / rate')
  await clock.advance(1)
  await until('the second batch', () => uplink.stats().published === 2)
})

/** Passes through to the store and records the options of each lease. */
function watchLeases (leases: Array<LeaseOptions | undefined>) {
  return (store: EventStore): BatchSource => ({
    lease: async (n, b, o) => { const l = await store.lease(n, b, o); if (l !== null) leases.push(o); return l },
    ack: async id => { await store.ack(id) },
    nack: id => { store.nack(id) }
  })
}

t.test('a spent daily budget leases critical events only, until the next UTC day', async t => {
  const leases: Array<LeaseOptions | undefined> = []
  const { uplink, peer, store, clock } = await memoryUplink(t, { dailyBudgetBytes: 1, batch: { maxEvents: 2, maxBytes: 64 * 1024 }, lingerMs: 50 }, watchLeases(leases))
  peer.pubackAtOnce = () => true
  await appendEvents(store, 4, 1)
  uplink.start()
  await until('the first batch delivered', () => uplink.stats().eventsAcked === 2)
  t.ok(uplink.stats().budgetExhausted, 'one batch spends the budget')
  await appendEvents(store, 2, 3, 100)
  await clock.advance(60)
  await until('the critical events delivered', () => uplink.stats().eventsAcked === 4)
  await clock.advance(600)
  t.same(leases, [{}, { minPriority: 3 }], 'then critical events only; the others wait')
  const midnight = Math.ceil(clock.now() / 86_400_000) * 86_400_000
  await clock.jump(midnight - clock.now())
  await clock.advance(60)
  await until('the rest delivered on the next day', () => uplink.stats().eventsAcked === 6)
  t.same(leases[2], {}, 'a new day, a new budget')
  t.ok(uplink.stats().bytesToday < uplink.stats().bytesSent, 'the day\'s byte count started over')
})

t.test('a dead link is counted once per connection, with what found it', async t => {
  const { uplink, peer, store, clock } = await memoryUplink(t, { window: 4, batch: { maxEvents: 1, maxBytes: 64 * 1024 }, pubackTimeoutMs: 5000 })
  await appendEvents(store, 4)
  uplink.start()
  await until('four batches in flight', () => peer.current?.unanswered(EVENTS_TOPIC).length === 4)
  const first = peer.current
  await clock.advance(5000)
  await until('a second connection', () => peer.connections.length === 2 && uplink.state() === 'online')
  t.same(uplink.stats().deadLinks, { puback_timeout: 1, keepalive: 0 }, 'four PUBACK timeouts on one connection: one dead link')
  t.ok(first?.destroyed, 'its socket destroyed')
  t.equal(uplink.stats().nacked, 4, 'its batches returned to the store')
  await until('the batches sent again', () => peer.current?.unanswered(EVENTS_TOPIC).length === 4)
  peer.current?.keepaliveTimeout()
  await until('a third connection', () => peer.connections.length === 3 && uplink.state() === 'online')
  t.same(uplink.stats().deadLinks, { puback_timeout: 1, keepalive: 1 }, 'the keepalive found the second')
  await until('the batches sent a third time', () => peer.current?.unanswered(EVENTS_TOPIC).length === 4)
  for (const p of peer.current?.unanswered(EVENTS_TOPIC) ?? []) peer.current?.puback(p)
  await until('everything delivered', () => uplink.stats().eventsAcked === 4)
  await clock.advance(10_000)
  t.same(uplink.stats().deadLinks, { puback_timeout: 1, keepalive: 1 }, 'the second connection\'s PUBACK timers were cancelled with it')
  t.equal(uplink.stats().eventsResent, 8)
})

t.test(`a store ack that fails is tried again after 200 then 400 ms, then the batch is nacked after ${ACK_ATTEMPTS} failures`, async t => {
  const state = { failing: ACK_ATTEMPTS }
  const h = await memoryUplink(t, {}, flakyAcks(state))
  const { uplink, peer, clock } = h
  await startWithBatchInFlight(h)
  pubackOldest(peer)
  await until('the first failure', () => uplink.stats().ackFailures === 1)
  await clock.advance(199)
  t.equal(uplink.stats().ackFailures, 1, 'no second attempt before 200 ms')
  await clock.advance(1)
  await until('the second failure', () => uplink.stats().ackFailures === 2)
  await clock.advance(400)
  await until('the third failure and the nack', () => uplink.stats().nacked === 1)
  t.match(uplink.stats(), { ackFailures: ACK_ATTEMPTS, acked: 0, eventsResent: 5 })
  await clock.advance(100)
  await until('the batch sent again', () => peer.current?.unanswered(EVENTS_TOPIC).length === 1)
  pubackOldest(peer)
  await until('and deleted', () => uplink.stats().eventsAcked === 5)
})
