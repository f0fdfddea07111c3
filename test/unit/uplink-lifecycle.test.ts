/**
 * The uplink's lifecycle on an in-memory MQTT peer and a manual clock: one stop however often it
 * is asked for, a shorter grace that shortens it, `closed` for good, a graceful stop that waits
 * for ack retries, and a refused batch that backs off before the reconnect.
 */
import t from 'tap'
import { bounded, EVENTS_TOPIC, flakyAcks, memoryUplink, pubackOldest, startWithBatchInFlight, STATUS_TOPIC, until } from '../helpers/memory-uplink.js'
import { settle } from '../helpers/manual-clock.js'

const offlinePublishes = (peer: { connections: Array<{ publishes: Array<{ topic: string, payload: Buffer | string }> }> }): number =>
  peer.connections.flatMap(c => c.publishes).filter(p => p.topic === STATUS_TOPIC && String(p.payload).includes('"offline"')).length

t.test('two stops at once are one stop: one closing, one offline, one DISCONNECT', async t => {
  const h = await memoryUplink(t)
  const { uplink, peer, records } = h
  await startWithBatchInFlight(h)
  const first = uplink.stop(5000)
  const second = uplink.stop(5000)
  await settle()
  t.equal(uplink.state(), 'closing')
  pubackOldest(peer)
  await bounded('both stops', Promise.all([first, second]))
  t.equal(uplink.state(), 'closed')
  t.equal(records().filter(r => r.to === 'closing').length, 1, 'closing entered once')
  t.equal(offlinePublishes(peer), 1, '`offline` published once')
  t.ok(peer.current?.ended, 'a clean DISCONNECT')
  t.match(uplink.stats(), { acked: 1, nacked: 0 }, 'the batch in flight got its PUBACK within the grace')
})

t.test('a second stop with a shorter grace shortens the stop in progress', async t => {
  const h = await memoryUplink(t)
  const { uplink, peer, clock } = h
  await startWithBatchInFlight(h)
  let firstDone = false
  const first = uplink.stop(60_000).then(() => { firstDone = true })
  await clock.advance(1000)
  t.notOk(firstDone, 'the graceful stop waits for the PUBACK')
  const second = uplink.stop(0)
  await bounded('both stops', Promise.all([first, second]))
  t.equal(uplink.state(), 'closed', 'closed without the clock reaching the first deadline')
  t.match(uplink.stats(), { acked: 0, nacked: 1 }, 'the batch in flight went back to the store')
  t.equal(offlinePublishes(peer), 1, 'one stop, not two')
  // A longer grace later never lengthens it; the stop is done.
  await bounded('a third stop', uplink.stop(60_000))
})

t.test('closed is terminal: start() after stop() is refused, and nothing connects again', async t => {
  const { uplink, peer, clock } = await memoryUplink(t)
  uplink.start()
  await until('online', () => uplink.state() === 'online')
  await bounded('the stop', uplink.stop(1000))
  t.equal(uplink.state(), 'closed')
  t.throws(() => { uplink.start() }, { code: 'EDGEFWD_ERR_UPLINK_CLOSED', message: /start\(\) after stop\(\) is refused/ }, 'start() after stop() throws EDGEFWD_ERR_UPLINK_CLOSED')
  await clock.advance(60_000)
  t.equal(peer.attempts, 1, 'no connection attempt after the stop')
  t.equal(uplink.state(), 'closed')
  t.equal(uplink.stats().state, 'closed')
  await bounded('a second stop', uplink.stop(1000))
  t.equal(uplink.state(), 'closed', 'a stop after the stop changes nothing')
})

t.test('a session stopped before it started is closed too', async t => {
  const { uplink, peer } = await memoryUplink(t)
  await bounded('the stop', uplink.stop())
  t.equal(uplink.state(), 'closed')
  t.throws(() => { uplink.start() }, { code: 'EDGEFWD_ERR_UPLINK_CLOSED' })
  t.equal(peer.attempts, 0)
})

t.test('a graceful stop waits, within its grace, for a store ack being retried', async t => {
  const state = { failing: 2 }
  const h = await memoryUplink(t, {}, flakyAcks(state))
  const { uplink, peer, clock } = h
  await startWithBatchInFlight(h)
  pubackOldest(peer)
  await until('the first ack failed', () => uplink.stats().ackFailures === 1)
  let stopped = false
  const stopping = uplink.stop(5000).then(() => { stopped = true })
  await clock.advance(200)
  await until('the second ack failed', () => uplink.stats().ackFailures === 2)
  t.notOk(stopped, 'still waiting for the retry')
  await clock.advance(400)
  await bounded('the graceful stop', stopping)
  t.match(uplink.stats(), { state: 'closed', acked: 1, eventsAcked: 5, nacked: 0, ackFailures: 2 }, 'the third attempt deleted the events: nothing to send again')
})

t.test('a batch refused by the broker goes through the jittered backoff before the reconnect', async t => {
  const h = await memoryUplink(t, { backoff: { initialMs: 100, maxMs: 1000, multiplier: 2 } })
  const { uplink, peer, clock, records } = h
  await startWithBatchInFlight(h)
  peer.current?.refuse(peer.current.unanswered(EVENTS_TOPIC)[0], 0x97)
  await until('backing off', () => uplink.state() === 'backoff')
  // random 0.5: half the cap; the cap doubles with each refusal in a row.
  t.match(uplink.stats(), { backoffMs: 50, nacked: 1, eventsResent: 5 })
  t.ok(peer.connections[0]?.destroyed, 'the connection dropped')
  await clock.advance(49)
  t.equal(peer.attempts, 1, 'no reconnect before the wait is over')
  await clock.advance(1)
  await until('online again', () => uplink.state() === 'online' && peer.connections.length === 2)
  await until('the batch sent again', () => peer.current?.unanswered(EVENTS_TOPIC).length === 1)
  peer.current?.refuse(peer.current.unanswered(EVENTS_TOPIC)[0], 0x97)
  await until('backing off again', () => uplink.state() === 'backoff')
  t.equal(uplink.stats().backoffMs, 100, 'refusals in a row wait longer: the CONNACK did not reset the backoff')
  await clock.advance(100)
  await until('online a third time', () => uplink.state() === 'online' && peer.connections.length === 3)
  await until('the batch sent a third time', () => peer.current?.unanswered(EVENTS_TOPIC).length === 1)
  pubackOldest(peer)
  await until('delivered', () => uplink.stats().eventsAcked === 5)
  t.equal(records().filter(r => typeof r.waitMs === 'number').length, 2, 'each wait logged')
})

t.test('reconnectNow: online, the connection is dropped (its batch goes back) and made again at once; in backoff, the wait ends now', async t => {
  const h = await memoryUplink(t, { backoff: { initialMs: 10_000, maxMs: 60_000, multiplier: 2 } })
  const { uplink, peer } = h
  await startWithBatchInFlight(h)
  t.match(uplink.reconnectNow(), /connection was dropped/)
  await until('online on a second connection', () => uplink.state() === 'online' && peer.connections.length === 2)
  await h.clock.advance(1000) // a lease that found its events still held waits one linger
  await until('the batch sent again', () => peer.current?.unanswered(EVENTS_TOPIC).length === 1)
  t.match(uplink.stats(), { eventsResent: 5, lastOutage: { sinceMs: Number, untilMs: Number } }, 'its batch went back to the store and was sent again; the outage is on record')
  peer.connectError = new Error('connect ECONNREFUSED')
  peer.current?.drop()
  await until('backing off', () => uplink.state() === 'backoff')
  const attempts = peer.attempts
  t.match(uplink.reconnectNow(), /backoff wait .* was cut short/)
  await until('an attempt at once, without the clock moving', () => peer.attempts === attempts + 1)
  await until('backing off again', () => uplink.state() === 'backoff')
  t.ok(uplink.stats().backoffMs >= 10_000, 'that attempt failed too: the backoff goes on, longer, not reset by the request')
})
