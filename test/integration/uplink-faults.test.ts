/**
 * The uplink when something fails after a batch was sent: the store's delete after a PUBACK, or
 * the connection with batches in flight (found dead by the keepalive, or reset). Against the
 * embedded broker (MQTT 3.1.1) through the chaos proxy, with a store in memory.
 */
import t, { type Test } from 'tap'
import { issueCertificate } from '../../src/pki/generate.js'
import { openMemoryStore, type BatchSource, type EventStore, type Lease, type LeaseOptions } from '../../src/store/index.js'
import { ACK_ATTEMPTS, Uplink, type UplinkOptions } from '../../src/uplink/session.js'
import { startChaosProxy, type ChaosProxy } from '../../simulate/chaos-proxy.js'
import { startEmbeddedBroker, type EmbeddedBroker } from '../../simulate/embedded-broker.js'
import { captureLogger, silentLogger } from '../helpers/logger.js'
import { makeCa, makeClient } from '../helpers/test-pki.js'
import { testUplinkOptions } from '../helpers/uplink-options.js'
import { waitFor } from '../helpers/wait.js'

const ca = makeCa()
const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
const gwCert = makeClient(ca, { commonName: 'gw-1' })

async function broker (t: Test): Promise<EmbeddedBroker> {
  const b = await startEmbeddedBroker({ tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem } })
  t.teardown(async () => { await b.close() })
  return b
}

async function proxyTo (t: Test, b: EmbeddedBroker): Promise<ChaosProxy> {
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: b.port } })
  t.teardown(async () => { await proxy.close() })
  return proxy
}

async function storeWith (t: Test, n: number): Promise<EventStore> {
  const store = await openMemoryStore({ capacityBytes: 64 * 1024 * 1024, expiryIntervalMs: 0 })
  t.teardown(async () => { await store.close() })
  await store.append(Array.from({ length: n }, (_, i) => ({
    deviceId: 'dev-1', deviceSeq: i + 1, gatewayTimeMs: Date.now(), priority: 1 as const, stream: 'env', value: { kind: 'number' as const, number: i }
  })))
  return store
}

/** Small batches, quick retries, MQTT 3.1.1 (the embedded broker's). */
const options = (url: string, over: Partial<UplinkOptions> = {}): UplinkOptions => testUplinkOptions(url, () => ({ ca: ca.certPem, cert: gwCert.certPem, key: gwCert.keyPem }), {
  protocolVersion: 4, batch: { maxEvents: 20, maxBytes: 64 * 1024 }, lingerMs: 5, compression: { compression: 'none' },
  connectTimeoutMs: 2000, backoff: { initialMs: 20, maxMs: 200, multiplier: 2 }, ...over
})

/** A store whose acks of the first lease acked reject `failing` times, as an I/O error in its write would. */
class FlakyAcks implements BatchSource {
  failing = 0
  failedAcks: number[] = []
  private victim: number | undefined
  constructor (private readonly store: EventStore) {}
  async lease (maxEvents: number, maxBytes: number, opts?: LeaseOptions): Promise<Lease | null> { return await this.store.lease(maxEvents, maxBytes, opts) }
  async ack (leaseId: number): Promise<void> {
    this.victim ??= leaseId
    if (leaseId === this.victim && this.failing > 0) {
      this.failing--
      this.failedAcks.push(leaseId)
      // The store's own failure path: the commit fails and the lease may be acked or nacked again.
      throw new Error('EIO: i/o error, write')
    }
    await this.store.ack(leaseId)
  }

  nack (leaseId: number): void { this.store.nack(leaseId) }
}

t.test('a store ack that fails once after the PUBACK is tried again: deleted, nothing sent twice', async t => {
  const b = await broker(t)
  const store = await storeWith(t, 200)
  const flaky = new FlakyAcks(store)
  flaky.failing = 1
  const { logger, records } = captureLogger('warn')
  const uplink = new Uplink(flaky, options(b.url), logger)
  uplink.start()
  t.teardown(async () => { await uplink.stop(500) })
  await waitFor('every event deleted', () => store.stats().events === 0, 15_000)
  const s = uplink.stats()
  t.equal(s.ackFailures, 1, 'the failure counted')
  t.equal(s.eventsAcked, 200, 'every event acked once')
  t.equal(s.eventsResent, 0, 'nothing sent again')
  t.equal(store.stats().leasedEvents, 0, 'no lease left')
  t.ok(records().some(r => r.msg === 'store ack failed after the PUBACK; trying again'), 'the retry logged')
})

t.test(`a store ack that fails ${ACK_ATTEMPTS} times: the batch goes back to the store and is sent again, not stranded`, async t => {
  const b = await broker(t)
  const store = await storeWith(t, 200)
  const flaky = new FlakyAcks(store)
  flaky.failing = ACK_ATTEMPTS
  const { logger, records } = captureLogger('warn')
  const uplink = new Uplink(flaky, options(b.url), logger)
  uplink.start()
  t.teardown(async () => { await uplink.stop(500) })
  await waitFor('every event deleted', () => store.stats().events === 0, 15_000)
  t.equal(flaky.failedAcks.length, ACK_ATTEMPTS, `one lease failed ${ACK_ATTEMPTS} times`)
  const s = uplink.stats()
  t.equal(s.ackFailures, ACK_ATTEMPTS, 'each failure counted')
  t.equal(s.eventsResent, 20, 'its 20 events were sent again')
  t.equal(s.eventsAcked, 200, 'then every event was acked')
  t.equal(store.stats().leasedEvents, 0, 'no lease left')
  t.ok(records().some(r => r.level === 50 && /goes back to the store/.test(String(r.msg))), 'the give-up logged as an error')
})

t.test('a dead link found by the keepalive with batches in flight is one dead link, reason keepalive', async t => {
  const b = await broker(t)
  const proxy = await proxyTo(t, b)
  const store = await storeWith(t, 2000)
  const { logger, records } = captureLogger('warn')
  // The PUBACK timer far away: the keepalive (1 s) finds the dead link first.
  const uplink = new Uplink(store, options(proxy.url('mqtts'), { keepaliveS: 1, pubackTimeoutMs: 60_000, lingerMs: 200 }), logger)
  uplink.start()
  t.teardown(async () => { await uplink.stop(500) })
  await waitFor('some batches acknowledged', () => uplink.stats().acked >= 3)
  proxy.setMode('blackhole')
  await waitFor('batches in flight on the dead link', () => uplink.stats().inFlight >= 4)
  const inFlight = uplink.stats().inFlight
  await waitFor('the dead link found', () => uplink.stats().state !== 'online', 20_000)
  t.same(uplink.stats().deadLinks, { puback_timeout: 0, keepalive: 1 }, `one dead link for ${inFlight} batches in flight`)
  t.equal(records().filter(r => /no PUBACK in time/.test(String(r.msg))).length, 0, 'not reported as a PUBACK timeout')
  t.equal(records().filter(r => /keepalive/.test(String(r.msg))).length, 1, 'reported once, as the keepalive')
  proxy.setMode('pass')
  await waitFor('every event deleted', () => store.stats().events === 0, 15_000)
  t.equal(uplink.stats().deadLinks.keepalive, 1, 'still one')
})

t.test('a connection reset with batches in flight is a disconnect, not a dead link per batch', async t => {
  const b = await broker(t)
  const proxy = await proxyTo(t, b)
  const store = await storeWith(t, 2000)
  const uplink = new Uplink(store, options(proxy.url('mqtts'), { lingerMs: 200 }), silentLogger())
  uplink.start()
  t.teardown(async () => { await uplink.stop(500) })
  await waitFor('some batches acknowledged', () => uplink.stats().acked >= 3)
  proxy.setMode('blackhole')
  await waitFor('batches in flight', () => uplink.stats().inFlight >= 4)
  proxy.setMode('reset')
  await waitFor('the connection lost', () => uplink.stats().disconnects >= 1)
  t.same(uplink.stats().deadLinks, { puback_timeout: 0, keepalive: 0 }, 'no dead link: the connection said it closed')
  proxy.setMode('pass')
  await waitFor('every event deleted', () => store.stats().events === 0, 15_000)
})
