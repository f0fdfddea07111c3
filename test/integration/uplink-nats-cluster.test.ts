/**
 * A gateway on a 3-node NATS cluster (JetStream, MQTT 3.1.1 over TLS, the client certificate
 * mapped to the user): uplink.url lists the three nodes' MQTT ports; with the node it is on
 * stopped, the gateway moves to the next and delivers on, and the events reach a subscriber on
 * another node through the cluster, each once.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
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
import { startNatsCluster, type NatsNode } from '../helpers/nats.js'
import { makeCa, makeClient } from '../helpers/test-pki.js'
import { appendEvents } from '../helpers/memory-uplink.js'
import { testUplinkOptions } from '../helpers/uplink-options.js'
import { waitFor } from '../helpers/wait.js'

const ca = makeCa()
const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
const gwCert = makeClient(ca, { commonName: 'gw-1' })
const sinkCert = makeClient(ca, { commonName: 'sink' })


/** An MQTT 3.1.1 subscriber (QoS 1) on one node, feeding `verifier`. */
async function subscribe (t: Test, node: NatsNode, verifier: SequenceVerifier): Promise<void> {
  const client = await mqtt.connectAsync(node.mqttUrl, {
    ...clientTlsOptions({ ca: ca.certPem, cert: sinkCert.certPem, key: sinkCert.keyPem }), clientId: 'sink', protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000
  }, false)
  client.on('message', (_topic, payload) => { verifier.addEnvelope(decodeEnvelopeMessage(payload)) })
  client.on('error', () => {})
  await client.subscribeAsync('edgefwd/gw-1/events', { qos: 1 })
  t.teardown(async () => { await client.endAsync(true) })
}

t.test('3 NATS nodes in uplink.url: the node the gateway is on stops, it moves on, nothing is lost', async t => {
  // Not t.testdir(): its removal would run before the cluster's stop, under nodes still writing.
  const dir = mkdtempSync(join(tmpdir(), 'edgefwd-nats-cluster-'))
  const cluster = await startNatsCluster({ dir: join(dir, 'nats'), ca: ca.certPem, cert: server.certPem, key: server.keyPem, users: ['CN=gw-1', 'CN=sink'] })
  t.teardown(async () => {
    await cluster.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  const [n1, , n3] = cluster.nodes as [NatsNode, NatsNode, NatsNode]
  const verifier = new SequenceVerifier({ expectedFirstSeq: 1 })
  await subscribe(t, n3, verifier)

  const store = await openLevelStore(join(dir, 'store'), { capacityBytes: 64 * 1024 * 1024, expiryIntervalMs: 0 }, silentLogger())
  t.teardown(async () => { await store.close() })
  const { logger, records } = captureLogger('info')
  const uplink = new Uplink(store, testUplinkOptions(n1.mqttUrl, () => ({ ca: ca.certPem, cert: gwCert.certPem, key: gwCert.keyPem }), {
    brokers: cluster.nodes.map(n => parseBrokerUrl(n.mqttUrl)), failover: 'ordered', protocolVersion: 4, pubackTimeoutMs: 5000
  }), logger)
  t.teardown(async () => { await uplink.stop(0) })

  await appendEvents(store, 1000, 1, 1)
  uplink.start()
  await waitFor('the first 1000 acknowledged by node 1', () => uplink.stats().eventsAcked === 1000)
  await n1.stop()
  await appendEvents(store, 1000, 1, 1001)
  await waitFor('the next 1000 acknowledged after node 1 stopped', () => uplink.stats().eventsAcked === 2000)
  await waitFor('all 2000 at the subscriber on node 3', () => verifier.summary().delivered === 2000)
  t.match(verifier.summary(), { delivered: 2000, unexplainedMissing: 0 }, 'every event, through the cluster')
  const online = records().filter(r => r.to === 'online').map(r => r.broker)
  t.equal(online[0], n1.mqttUrl, 'online on node 1 first')
  // Node 2 normally; node 3 when node 2 answered its first attempt with "JetStream temporarily
  // unavailable" while the cluster chose new leaders for what node 1 led.
  t.ok(online.length >= 2 && online.slice(1).every(url => url !== n1.mqttUrl), `then on the others only: ${online.slice(1).join(', ')}`)
  await n1.start()
})
