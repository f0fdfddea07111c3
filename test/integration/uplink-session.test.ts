/**
 * The uplink session against real brokers: events buffered in LevelDB reach a subscriber exactly
 * (verified per device sequence by the sink's verifier), and a blackholed link (no byte either
 * way, no socket closed) longer than the PUBACK timeout loses nothing.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import mqtt from 'mqtt'
import { issueCertificate } from '../../src/pki/generate.js'
import { clientTlsOptions } from '../../src/pki/tls-options.js'
import { decodeEnvelopeMessage } from '../../src/sink/decode.js'
import { SequenceVerifier } from '../../src/sink/verify.js'
import { openLevelStore, type EventStore } from '../../src/store/index.js'
import { Uplink, type UplinkOptions } from '../../src/uplink/session.js'
import { startChaosProxy } from '../../simulate/chaos-proxy.js'
import { startEmbeddedBroker } from '../../simulate/embedded-broker.js'
import { captureLogger, silentLogger } from '../helpers/logger.js'
import { startMosquitto } from '../helpers/mosquitto.js'
import { makeCa, makeClient } from '../helpers/test-pki.js'
import { testUplinkOptions } from '../helpers/uplink-options.js'
import { waitFor } from '../helpers/wait.js'

const ca = makeCa()
const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
const gwCert = makeClient(ca, { commonName: 'gw-1' })
const sinkCert = makeClient(ca, { commonName: 'sink' })
const creds = { ca: ca.certPem, cert: gwCert.certPem, key: gwCert.keyPem }

const uplinkOptions = (url: string, protocolVersion: 4 | 5, over: Partial<UplinkOptions> = {}): UplinkOptions =>
  testUplinkOptions(url, () => creds, { protocolVersion, ...over })

async function bufferedStore (dir: string, n: number): Promise<EventStore> {
  const store = await openLevelStore(join(dir, 'store'), { capacityBytes: 256 * 1024 * 1024, expiryIntervalMs: 0 }, silentLogger())
  for (let i = 0; i < n; i += 1000) {
    await store.append(Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({
      deviceId: `dev-${(i + j) % 7}`, deviceSeq: Math.floor((i + j) / 7) + 1, gatewayTimeMs: Date.now(), priority: 1 as const, stream: 'env',
      value: { kind: 'numbers' as const, numbers: { t: (i + j) % 30, h: 40 } }
    })))
  }
  return store
}

/** A subscriber that verifies what arrives, per device sequence. */
async function verifyingSink (url: string, protocolVersion: 4 | 5): Promise<{ verifier: SequenceVerifier, statuses: string[], close: () => Promise<void> }> {
  const client = await mqtt.connectAsync(url, {
    ...clientTlsOptions({ ca: ca.certPem, cert: sinkCert.certPem, key: sinkCert.keyPem }), clientId: `sink-${protocolVersion}`, protocolVersion, reconnectPeriod: 0, connectTimeout: 5000
  }, false)
  const verifier = new SequenceVerifier({ expectedFirstSeq: 1 })
  const statuses: string[] = []
  client.on('message', (topic, payload) => {
    if (topic.endsWith('/status')) { statuses.push((JSON.parse(payload.toString()) as { status: string }).status); return }
    verifier.addEnvelope(decodeEnvelopeMessage(payload))
  })
  await client.subscribeAsync(['edgefwd/gw-1/events', 'edgefwd/gw-1/status'], { qos: 1 })
  return { verifier, statuses, close: async () => { await client.endAsync(true) } }
}

for (const broker of ['mosquitto', 'embedded'] as const) {
  t.test(`${broker}: buffered events arrive complete, each once, and are deleted only after PUBACK`, async t => {
    const dir = t.testdir()
    mkdirSync(join(dir, 'broker'))
    const protocolVersion = broker === 'mosquitto' ? 5 : 4
    const b = broker === 'mosquitto'
      ? await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
      : await startEmbeddedBroker({ tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem } })
    t.teardown(async () => { 'close' in b ? await b.close() : await b.stop() })
    const store = await bufferedStore(dir, 7000)
    t.teardown(async () => { await store.close() })
    const sink = await verifyingSink(b.url, protocolVersion)
    t.teardown(sink.close)
    const { logger, records } = captureLogger('info')
    const uplink = new Uplink(store, uplinkOptions(b.url, protocolVersion), logger)
    uplink.start()
    await waitFor('every event acknowledged', () => store.stats().events === 0)
    await uplink.stop(2000)
    await waitFor('every event at the sink', () => sink.verifier.summary().delivered === 7000)
    const summary = sink.verifier.summary()
    t.match(summary, { delivered: 7000, duplicates: 0, unexplainedMissing: 0 })
    t.equal(uplink.stats().eventsAcked, 7000)
    t.same(records().filter(r => typeof r.to === 'string').map(r => r.to), ['connecting', 'online', 'closing', 'closed'], 'every state change logged')
    await waitFor('the offline status', () => sink.statuses.includes('offline'))
    t.same(sink.statuses, ['online', 'offline'])
  })
}

t.test('a blackholed link longer than the PUBACK timeout loses nothing', async t => {
  const dir = t.testdir()
  mkdirSync(join(dir, 'broker'))
  const broker = await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
  t.teardown(async () => { await broker.stop() })
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: broker.port } })
  t.teardown(async () => { await proxy.close() })
  const store = await bufferedStore(dir, 20_000)
  t.teardown(async () => { await store.close() })
  const sink = await verifyingSink(broker.url, 5)
  t.teardown(sink.close)
  const uplink = new Uplink(store, uplinkOptions(proxy.url('mqtts'), 5, { pubackTimeoutMs: 400, connectTimeoutMs: 400, batch: { maxEvents: 100, maxBytes: 128 * 1024 }, window: 4 }), silentLogger())
  uplink.start()
  await waitFor('some batches acknowledged', () => uplink.stats().acked >= 5)
  proxy.setMode('blackhole')
  await new Promise(resolve => setTimeout(resolve, 1500))
  t.equal(uplink.stats().deadLinks.puback_timeout, 1, 'the missing PUBACKs of 4 batches in flight were noticed as one dead link')
  t.ok(store.stats().events > 0, 'events still buffered while the link is dead')
  proxy.setMode('pass')
  await waitFor('every event acknowledged', () => store.stats().events === 0)
  await uplink.stop(2000)
  await waitFor('every event at the sink', () => sink.verifier.summary().unexplainedMissing === 0 && sink.verifier.summary().delivered === 20_000)
  const summary = sink.verifier.summary()
  t.match(summary, { delivered: 20_000, unexplainedMissing: 0 })
  t.comment(`duplicates after the blackhole: ${summary.duplicates}; dead links: ${JSON.stringify(uplink.stats().deadLinks)}; reconnects: ${uplink.stats().connects}`)
})

t.test('a broker restart in the middle of a stream: no loss at the receiver, duplicates only where a PUBACK was lost', async t => {
  const dir = t.testdir()
  mkdirSync(join(dir, 'broker'))
  // The broker keeps sessions and queued messages across its restart, as a production one does.
  const options = { dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem, persistence: true }
  let broker = await startMosquitto(options)
  t.teardown(async () => { await broker.stop() })
  const store = await bufferedStore(dir, 20_000)
  t.teardown(async () => { await store.close() })
  // A receiver with a persistent session that reconnects by itself.
  const receiver = await mqtt.connectAsync(broker.url, {
    ...clientTlsOptions({ ca: ca.certPem, cert: sinkCert.certPem, key: sinkCert.keyPem }), clientId: 'restart-sink', protocolVersion: 5,
    clean: false, properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 200, connectTimeout: 5000
  })
  t.teardown(async () => { await receiver.endAsync(true) })
  const verifier = new SequenceVerifier({ expectedFirstSeq: 1 })
  receiver.on('message', (_topic, payload) => { verifier.addEnvelope(decodeEnvelopeMessage(payload)) })
  await receiver.subscribeAsync('edgefwd/gw-1/events', { qos: 1 })
  const uplink = new Uplink(store, uplinkOptions(broker.url, 5, { batch: { maxEvents: 100, maxBytes: 128 * 1024 } }), silentLogger())
  uplink.start()
  await waitFor('part of the stream acknowledged', () => uplink.stats().eventsAcked >= 3000)
  await broker.stop()
  broker = await startMosquitto({ ...options, port: broker.port })
  await waitFor('every event acknowledged after the restart', () => store.stats().events === 0, 30_000)
  await uplink.stop(2000)
  t.ok(uplink.stats().connects >= 2, `the uplink reconnected (${uplink.stats().connects} connections)`)
  await waitFor('every event at the receiver', () => verifier.summary().delivered === 20_000)
  const summary = verifier.summary()
  t.match(summary, { delivered: 20_000, unexplainedMissing: 0 }, 'nothing lost across the restart')
  t.comment(`duplicates (batches whose PUBACK the restart swallowed): ${summary.duplicates}`)
})

t.test('a long outage with a small store: evictions happen, and every gap at the receiver is explained by eviction reports', async t => {
  const dir = t.testdir()
  mkdirSync(join(dir, 'broker'))
  const store = await openLevelStore(join(dir, 'small'), { capacityBytes: 200 * 1024, expiryIntervalMs: 0 }, silentLogger())
  t.teardown(async () => { await store.close() })
  // The outage: 6000 events of ~150 B into a store that holds about a quarter of them.
  for (let i = 0; i < 6000; i += 500) {
    await store.append(Array.from({ length: 500 }, (_, j) => ({
      deviceId: `dev-${(i + j) % 5}`, deviceSeq: Math.floor((i + j) / 5) + 1, gatewayTimeMs: Date.now(), priority: ((i + j) % 10 === 0 ? 3 : 1) as 1 | 3, stream: 'env',
      value: { kind: 'numbers' as const, numbers: { t: (i + j) % 30, h: 40, p: 1013, v: 3.3 } }
    })))
  }
  const evicted = store.stats().drops.reduce((n, d) => n + d.count, 0)
  t.ok(evicted > 3000, `${evicted} events evicted during the outage`)
  t.equal(store.stats().drops.filter(d => d.priority === 'critical').length, 0, 'critical events were never evicted for normal ones')
  const broker = await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
  t.teardown(async () => { await broker.stop() })
  const sink = await verifyingSink(broker.url, 5)
  t.teardown(sink.close)
  const uplink = new Uplink(store, uplinkOptions(broker.url, 5), silentLogger())
  uplink.start()
  await waitFor('the backlog and the eviction reports delivered', () => store.stats().events === 0 && store.stats().pendingReports === 0)
  await uplink.stop(2000)
  await waitFor('every delivered event at the sink', () => sink.verifier.summary().delivered === 6000 - evicted)
  const summary = sink.verifier.summary()
  t.match(summary, { delivered: 6000 - evicted, duplicates: 0, unexplainedMissing: 0, explainedMissing: evicted }, 'every missing event is accounted for by a report')
})
