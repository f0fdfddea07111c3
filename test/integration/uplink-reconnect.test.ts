/**
 * Reconnect backoff against a broker that is not there: attempts go on, each wait drawn with full
 * jitter below a cap that grows by the multiplier up to the maximum. The waits are observed
 * through an injected sleep (no real sleeping) and a seeded random source.
 */
import t from 'tap'
import { MemoryVolume, openMemoryStore } from '../../src/store/index.js'
import { issueCertificate } from '../../src/pki/generate.js'
import { parseBrokerUrl, probeBroker } from '../../src/uplink/connect.js'
import { Uplink } from '../../src/uplink/session.js'
import { systemClock, type Clock } from '../../src/clock.js'
import { captureLogger } from '../helpers/logger.js'
import { freePort } from '../helpers/mosquitto.js'
import { makeCa, makeClient, makeRsaSet } from '../helpers/test-pki.js'
import { startEmbeddedBroker } from '../../simulate/embedded-broker.js'

/** The real timers, but sleeps that take no time: each is recorded, and `enough` is called at the `n`th. */
function recordingSleeps (waits: number[], n: number, enough: () => void): Clock {
  return {
    ...systemClock,
    sleep: async (ms: number) => {
      waits.push(ms)
      if (waits.length >= n) enough()
      await new Promise(resolve => setImmediate(resolve))
    }
  }
}

t.test('a refused connection backs off with full jitter, growing to the maximum', async t => {
  const port = await freePort()
  const store = await openMemoryStore({ capacityBytes: 1 << 20, expiryIntervalMs: 0 }, new MemoryVolume())
  t.teardown(async () => { await store.close() })
  let seed = 7
  const random = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
  const waits: number[] = []
  let done: () => void = () => {}
  const enough = new Promise<void>(resolve => { done = resolve })
  const { logger, records } = captureLogger('info')
  // Nothing listens on the port, so no TLS handshake ever starts: one set made up front serves
  // every attempt (making a CA and a client per attempt was most of this test's time).
  const credentials = makeRsaSet()
  const uplink = new Uplink(store, {
    brokers: [parseBrokerUrl(`mqtts://127.0.0.1:${port}`)],
    credentials: () => credentials,
    gatewayId: 'gw',
    protocolVersion: 5,
    topics: { events: 'e', status: 's' },
    window: 8,
    batch: { maxEvents: 100, maxBytes: 1 << 20 },
    lingerMs: 50,
    compression: { compression: 'none' },
    pubackTimeoutMs: 1000,
    connectTimeoutMs: 1000,
    keepaliveS: 30,
    backoff: { initialMs: 100, maxMs: 3200, multiplier: 2 },
    nextBatchSeq: () => 1,
    random,
    clock: recordingSleeps(waits, 12, () => { done() })
  }, logger)
  uplink.start()
  await enough
  await uplink.stop(0)
  const logged = records().filter(r => typeof r.waitMs === 'number').map(r => r.waitMs as number).slice(0, 12)
  t.equal(logged.length, 12, 'twelve attempts in no real time')
  t.same(waits.slice(0, 12), logged, 'the session waited exactly what it logged')
  const caps = [100, 200, 400, 800, 1600, 3200, 3200, 3200, 3200, 3200, 3200, 3200]
  logged.forEach((w, i) => { t.ok(w >= 0 && w < (caps[i] as number), `wait ${i + 1}: ${w} ms < ${caps[i]} ms`) })
  t.ok(logged.slice(5).some(w => w > 1600), 'late waits use the whole window up to the maximum')
  t.ok(new Set(logged).size > 8, 'jittered: the waits differ')
  t.match(records().find(r => typeof r.waitMs === 'number'), { code: 'EDGEFWD_ERR_UPLINK_CONNECT', msg: /ECONNREFUSED/ })
  t.equal(uplink.state(), 'closed', 'stopped for good')
})

t.test('a broker that refuses the connection (CONNACK: not authorized): a specific error, and longer waits', async t => {
  const ca = makeCa()
  const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
  const broker = await startEmbeddedBroker({ tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem }, authorize: c => c.clientId !== 'gw-banned' })
  t.teardown(async () => { await broker.close() })
  const client = makeClient(ca, { commonName: 'gw-banned' })
  const creds = { ca: ca.certPem, cert: client.certPem, key: client.keyPem }
  await t.rejects(probeBroker(parseBrokerUrl(broker.url), creds, { clientId: 'gw-banned', protocolVersion: 4, timeoutMs: 3000 }),
    { code: 'EDGEFWD_ERR_UPLINK_REFUSED', message: /refused the connection: .*reason code 5/ })
  await probeBroker(parseBrokerUrl(broker.url), creds, { clientId: 'gw-allowed', protocolVersion: 4, timeoutMs: 3000 })
  t.pass('another client id is accepted')

  const store = await openMemoryStore({ capacityBytes: 1 << 20, expiryIntervalMs: 0 }, new MemoryVolume())
  t.teardown(async () => { await store.close() })
  const waits: number[] = []
  let done: () => void = () => {}
  const enough = new Promise<void>(resolve => { done = resolve })
  const { logger, records } = captureLogger('info')
  const uplink = new Uplink(store, {
    brokers: [parseBrokerUrl(broker.url)],
    credentials: () => creds,
    gatewayId: 'gw-banned',
    protocolVersion: 4,
    topics: { events: 'e', status: 's' },
    window: 8,
    batch: { maxEvents: 100, maxBytes: 1 << 20 },
    lingerMs: 50,
    compression: { compression: 'none' },
    pubackTimeoutMs: 1000,
    connectTimeoutMs: 3000,
    keepaliveS: 30,
    backoff: { initialMs: 100, maxMs: 60_000, multiplier: 2, refusedMinMs: 30_000 },
    nextBatchSeq: () => 1,
    random: () => 0.5,
    clock: recordingSleeps(waits, 3, () => { done() })
  }, logger)
  uplink.start()
  await enough
  await uplink.stop(0)
  t.same(waits.slice(0, 3), [30_000, 30_000, 30_000], 'a refusal waits at least refusedMin, where a network failure would wait 50, 100, 200 ms')
  t.match(records().find(r => typeof r.waitMs === 'number'), { code: 'EDGEFWD_ERR_UPLINK_REFUSED' })
})
