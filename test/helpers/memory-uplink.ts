/**
 * An Uplink wired to an in-memory MQTT peer, a manual clock and a store in memory: the fast
 * uplink tests drive PUBACKs, links and time by hand. Teardown stops the uplink and closes the
 * store.
 */
import type { Test } from 'tap'
import { openMemoryStore, type BatchSource, type EventStore } from '../../src/store/index.js'
import type { Priority } from '../../src/types.js'
import { Uplink, type UplinkOptions } from '../../src/uplink/session.js'
import { captureLogger } from './logger.js'
import type { LogRecord } from './log-lines.js'
import { ManualClock } from './manual-clock.js'
import { MemoryBrokerPeer } from './memory-broker-peer.js'
import { testUplinkOptions } from './uplink-options.js'
import { waitFor } from './wait.js'

export const EVENTS_TOPIC = 'edgefwd/gw-1/events'
export const STATUS_TOPIC = 'edgefwd/gw-1/status'

export interface MemoryUplink {
  uplink: Uplink
  peer: MemoryBrokerPeer
  clock: ManualClock
  store: EventStore
  records: () => LogRecord[]
}

/** `n` events of `priority` (device sequence from `firstSeq`). */
export async function appendEvents (store: EventStore, n: number, priority: Priority = 1, firstSeq = 1): Promise<void> {
  await store.append(Array.from({ length: n }, (_, i) => ({
    deviceId: 'dev-1', deviceSeq: firstSeq + i, gatewayTimeMs: 1, priority, stream: 'env', value: { kind: 'number' as const, number: i }
  })))
}

/**
 * The uplink under test, not started. `source` wraps the store when the test watches or breaks
 * leases and acks. Random is fixed at 0.5: a backoff wait is half its cap.
 */
export async function memoryUplink (t: Test, over: Partial<UplinkOptions> = {}, source?: (store: EventStore) => BatchSource): Promise<MemoryUplink> {
  const clock = new ManualClock()
  const peer = new MemoryBrokerPeer()
  const store = await openMemoryStore({ capacityBytes: 16 << 20, expiryIntervalMs: 0 })
  const { logger, records } = captureLogger('info')
  const options = testUplinkOptions('mqtts://broker.test:8883', () => { throw new Error('no TLS in memory') }, {
    clock, connect: peer.connect, random: () => 0.5, compression: { compression: 'none' }, ...over
  })
  const uplink = new Uplink(source?.(store) ?? store, options, logger)
  t.teardown(async () => {
    const stopped = uplink.stop(0)
    let done = false
    void stopped.finally(() => { done = true })
    // Whatever the test left waiting on the clock (an ack retry's last attempt) may need time.
    for (let i = 0; i < 20 && !done; i++) await clock.advance(1000)
    await store.close()
    if (!done) throw new Error('the uplink did not stop within 20 s of its clock')
    await stopped
  })
  return { uplink, peer, clock, store, records }
}

/** A source whose store acks fail while `state.failing` > 0 (counting down), as an I/O error in the store's write would. */
export function flakyAcks (state: { failing: number }): (store: EventStore) => BatchSource {
  return store => ({
    lease: async (n, b, o) => await store.lease(n, b, o),
    ack: async id => {
      if (state.failing > 0) { state.failing--; throw new Error('EIO: i/o error, write') }
      await store.ack(id)
    },
    nack: id => { store.nack(id) }
  })
}

/** Appends `events` events, starts the uplink and waits for their batch in flight. */
export async function startWithBatchInFlight ({ uplink, peer, store }: MemoryUplink, events = 5): Promise<void> {
  await appendEvents(store, events)
  uplink.start()
  await until('a batch in flight', () => peer.current?.unanswered(EVENTS_TOPIC).length === 1)
}

/** The PUBACK of the oldest batch in flight on the current connection. */
export function pubackOldest (peer: MemoryBrokerPeer): void {
  peer.current?.puback(peer.current.unanswered(EVENTS_TOPIC)[0])
}

/** Waits, bounded, for `promise` to settle (a stop), then returns its outcome. */
export async function bounded<T> (what: string, promise: Promise<T>): Promise<T> {
  let settled = false
  const watched = promise.finally(() => { settled = true })
  await until(what, () => settled)
  return await watched
}

/** A bounded wait for a condition of the uplink (real time, polled every millisecond). */
export async function until (what: string, cond: () => boolean): Promise<void> {
  await waitFor(what, cond, 5000, 1)
}
