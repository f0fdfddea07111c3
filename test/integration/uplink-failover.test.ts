/**
 * uplink.url as a list, against real brokers: with two Mosquittos as the nodes, the gateway
 * delivers to the first, rides through its loss onto the second, and back again when the second
 * goes, losing and duplicating nothing (one SequenceVerifier over what both nodes delivered).
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import mqtt from 'mqtt'
import { issueCertificate } from '../../src/pki/generate.js'
import { clientTlsOptions } from '../../src/pki/tls-options.js'
import { decodeEnvelopeMessage } from '../../src/sink/decode.js'
import { SequenceVerifier } from '../../src/sink/verify.js'
import { openLevelStore } from '../../src/store/index.js'
import { parseBrokerUrl } from '../../src/uplink/connect.js'
import { Uplink } from '../../src/uplink/session.js'
import { captureLogger, silentLogger } from '../helpers/logger.js'
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js'
import { makeCa, makeClient } from '../helpers/test-pki.js'
import { appendEvents } from '../helpers/memory-uplink.js'
import { testUplinkOptions } from '../helpers/uplink-options.js'
import { waitFor } from '../helpers/wait.js'

const ca = makeCa()
const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
const gwCert = makeClient(ca, { commonName: 'gw-1' })
const sinkCert = makeClient(ca, { commonName: 'sink' })


/** A subscriber on one node, feeding the shared verifier; counts what it got. */
async function subscribe (t: Test, node: Mosquitto, verifier: SequenceVerifier): Promise<{ received: () => number }> {
  let received = 0
  const client = await mqtt.connectAsync(node.url, {
    ...clientTlsOptions({ ca: ca.certPem, cert: sinkCert.certPem, key: sinkCert.keyPem }), clientId: 'sink', protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000
  }, false)
  client.on('message', (_topic, payload) => {
    const envelope = decodeEnvelopeMessage(payload)
    received += envelope.events.length
    verifier.addEnvelope(envelope)
  })
  client.on('error', () => {})
  await client.subscribeAsync('edgefwd/gw-1/events', { qos: 1 })
  t.teardown(async () => { await client.endAsync(true) })
  return { received: () => received }
}

t.test('two nodes in uplink.url: the loss of either one costs no event and no duplicate', async t => {
  const dir = t.testdir()
  const nodes: Mosquitto[] = []
  for (const name of ['a', 'b']) {
    mkdirSync(join(dir, name))
    const node = await startMosquitto({ dir: join(dir, name), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
    nodes.push(node)
    t.teardown(async () => { await node.stop() })
  }
  const [a, b] = nodes as [Mosquitto, Mosquitto]
  const verifier = new SequenceVerifier({ expectedFirstSeq: 1 })
  const atA = await subscribe(t, a, verifier)
  const atB = await subscribe(t, b, verifier)

  const store = await openLevelStore(join(dir, 'store'), { capacityBytes: 64 * 1024 * 1024, expiryIntervalMs: 0 }, silentLogger())
  t.teardown(async () => { await store.close() })
  const { logger, records } = captureLogger('info')
  const uplink = new Uplink(store, testUplinkOptions(a.url, () => ({ ca: ca.certPem, cert: gwCert.certPem, key: gwCert.keyPem }), {
    brokers: [a.url, b.url].map(parseBrokerUrl), failover: 'ordered', pubackTimeoutMs: 2000
  }), logger)
  t.teardown(async () => { await uplink.stop(0) })

  await appendEvents(store, 1000, 1, 1)
  uplink.start()
  await waitFor('the first 1000 delivered by node a', () => uplink.stats().eventsAcked === 1000)
  t.equal(atA.received(), 1000, 'ordered: the first node of the list takes them')
  t.equal(atB.received(), 0)

  await a.stop()
  await appendEvents(store, 1000, 1, 1001)
  await waitFor('the next 1000 delivered by node b', () => uplink.stats().eventsAcked === 2000)
  t.ok(atB.received() >= 1000, `node b took over (${atB.received()} events)`)

  // Node a back (a restart on its port), node b lost: back to a.
  mkdirSync(join(dir, 'a2'))
  const a2 = await startMosquitto({ dir: join(dir, 'a2'), ca: ca.certPem, cert: server.certPem, key: server.keyPem, port: a.port })
  t.teardown(async () => { await a2.stop() })
  const atA2 = await subscribe(t, a2, verifier)
  await b.stop()
  await appendEvents(store, 1000, 1, 2001)
  await waitFor('the last 1000 delivered by node a again', () => uplink.stats().eventsAcked === 3000)
  t.ok(atA2.received() >= 1000, `node a took them back (${atA2.received()} events)`)

  await waitFor('every event verified', () => verifier.summary().delivered === 3000)
  t.match(verifier.summary(), { delivered: 3000, duplicates: 0, unexplainedMissing: 0 }, 'each of the 3000 events once, over both nodes')
  const online = records().filter(r => r.to === 'online').map(r => r.broker)
  t.same(online, [a.url, b.url, a.url], 'online on a, then b, then a, as logged')
})
