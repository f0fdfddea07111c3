/**
 * The receiving side on a 3-node NATS cluster (src/sink/jetstream.ts): sinks share one durable
 * consumer of `$MQTT_msgs`, where NATS keeps what gateways published over MQTT with QoS 1. Every
 * event a gateway saw acknowledged reaches a sink, each sink takes a share, a sink whose
 * destination fails gives its message back to the others, and the first connection's problems
 * (another CA, an unknown user, a consumer with another filter, no stream) are specific errors.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { issueCertificate, type PemPair } from '../../src/pki/generate.js'
import { clientTlsOptions } from '../../src/pki/tls-options.js'
import type { TlsCredentials } from '../../src/pki/tls-options.js'
import type { ReceivedBatch } from '../../src/sink/destination.js'
import { JetStreamSource, mqttTopicToSubject, type JetStreamSourceOptions } from '../../src/sink/jetstream.js'
import { SequenceVerifier } from '../../src/sink/verify.js'
import { openMemoryStore } from '../../src/store/index.js'
import { parseBrokerUrl } from '../../src/uplink/connect.js'
import { Uplink } from '../../src/uplink/session.js'
import { silentLogger } from '../helpers/logger.js'
import { appendEvents } from '../helpers/memory-uplink.js'
import { startNatsCluster, type NatsCluster } from '../helpers/nats.js'
import { makeCa, makeClient } from '../helpers/test-pki.js'
import { testUplinkOptions } from '../helpers/uplink-options.js'
import { recordingDestination } from '../helpers/recording-destination.js'
import { freePort, waitFor } from '../helpers/wait.js'

const ca = makeCa()
const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
const certs = new Map(['gw-1', 'gw-2', 'sink-1', 'sink-2', 'sink-3'].map(cn => [cn, makeClient(ca, { commonName: cn })]))
const creds = (cn: string, pair: PemPair = certs.get(cn) as PemPair): () => TlsCredentials => () => ({ ca: ca.certPem, cert: pair.certPem, key: pair.keyPem })


let cluster: NatsCluster
// Not t.testdir(): its removal would run before the cluster's stop, under nodes still writing.
const dir = mkdtempSync(join(tmpdir(), 'edgefwd-sink-jetstream-'))
t.before(async () => {
  cluster = await startNatsCluster({
    dir: join(dir, 'nats'), ca: ca.certPem, cert: server.certPem, key: server.keyPem, users: [...certs.keys()].map(cn => `CN=${cn}`)
  })
})
t.teardown(async () => {
  await cluster.stop()
  rmSync(dir, { recursive: true, force: true })
})

const servers = (): string[] => cluster.nodes.map(n => n.natsUrl)

async function openSink (t: Test, name: string, over: Partial<JetStreamSourceOptions> = {}): Promise<JetStreamSource> {
  const source = await JetStreamSource.open({
    servers: servers(), credentials: creds(name), stream: '$MQTT_msgs', consumer: 'sinks', filterSubject: mqttTopicToSubject('edgefwd/+/events', '$MQTT_msgs'),
    ackWaitMs: 5000, maxAckPending: 1000, pullBatch: 16, name, ...(cluster.nodes[0] === undefined ? {} : { mqttUrl: cluster.nodes[0].mqttUrl }),
    destination: recordingDestination(), log: () => {}, connectTimeoutMs: 5000, ...over
  })
  t.teardown(async () => { await source.close() })
  return source
}

/** A gateway on all three nodes: the real uplink over a store in memory, small batches so the sinks share many. */
async function gateway (t: Test, id = 'gw-1'): Promise<{ uplink: Uplink, store: Awaited<ReturnType<typeof openMemoryStore>> }> {
  const store = await openMemoryStore({ capacityBytes: 64 * 1024 * 1024, expiryIntervalMs: 0 })
  const uplink = new Uplink(store, testUplinkOptions(cluster.nodes[1]?.mqttUrl ?? '', creds(id), {
    gatewayId: id, brokers: cluster.nodes.map(n => parseBrokerUrl(n.mqttUrl)), protocolVersion: 4, batch: { maxEvents: 25, maxBytes: 64 * 1024 }
  }), silentLogger())
  t.teardown(async () => { await uplink.stop(0); await store.close() })
  return { uplink, store }
}

/** Every batch the destinations wrote, through one verifier (what the whole receiving side got). */
function verify (...destinations: Array<{ batches: ReceivedBatch[] }>): ReturnType<SequenceVerifier['summary']> {
  const verifier = new SequenceVerifier({ expectedFirstSeq: 1 })
  for (const d of destinations) for (const b of d.batches) verifier.addEvents(b.gatewayId, b.events)
  return verifier.summary()
}

t.test('the MQTT topic as NATS spells it, in $MQTT_msgs or a stream of ones own', async t => {
  t.equal(mqttTopicToSubject('edgefwd/+/events', '$MQTT_msgs'), '$MQTT.msgs.edgefwd.*.events')
  t.equal(mqttTopicToSubject('site.a/#', 'EVENTS'), 'site//a.>')
  t.equal(mqttTopicToSubject('/x', 'EVENTS'), '/.x', 'an empty level')
})

t.test('a fresh cluster has no $MQTT_msgs until an MQTT connection: without sink.url that is a specific error', async t => {
  await t.rejects(openSink(t, 'sink-1', { mqttUrl: undefined }),
    { code: 'EDGEFWD_ERR_CONFIG_INVALID', message: /no stream \$MQTT_msgs in this account/, hint: /set sink\.url to an MQTT listener of the cluster/ })
})

t.test('two sinks share the durable consumer: every acknowledged event arrives, each sink takes a share', async t => {
  const logged: string[] = []
  const d1 = recordingDestination()
  const d2 = recordingDestination()
  // The first sink on a fresh cluster: NATS has no $MQTT_msgs until an MQTT connection.
  const s1 = await openSink(t, 'sink-1', { destination: d1, log: line => { logged.push(line) } })
  const s2 = await openSink(t, 'sink-2', { destination: d2 })
  for (const line of [/no \$MQTT_msgs yet: connecting once to mqtts:/, /created the durable consumer sinks on \$MQTT_msgs for \$MQTT\.msgs\.edgefwd\.\*\.events/, /consuming \$MQTT_msgs/]) {
    t.ok(logged.some(l => line.test(l)), `logged ${String(line)}`)
  }

  const { uplink, store } = await gateway(t)
  await appendEvents(store, 3000, 1, 1)
  uplink.start()
  await waitFor('3000 events acknowledged by NATS', () => uplink.stats().eventsAcked === 3000)
  await waitFor('3000 events written by the two sinks', () => verify(d1, d2).delivered === 3000)
  t.match(verify(d1, d2), { delivered: 3000, unexplainedMissing: 0 }, 'every event, from one gateway through two sinks')
  t.ok(d1.batches.length > 0 && d2.batches.length > 0, `each sink took a share: ${d1.batches.length} and ${d2.batches.length} of ${uplink.stats().published} batches`)
  t.equal(s1.stats().batchesWritten + s2.stats().batchesWritten, d1.batches.length + d2.batches.length, 'the sinks count what they wrote')
})

t.test('a sink whose destination fails gives the message back; another sink writes it and what the first had pulled', async t => {
  const failing = recordingDestination()
  failing.failWith = new Error('ENOSPC: no space left on device, write')
  const a = await openSink(t, 'sink-1', { consumer: 'fail-over', destination: failing, ackWaitMs: 2000 })
  const { uplink, store } = await gateway(t)
  await appendEvents(store, 200, 1, 1)
  uplink.start()
  await t.rejects(a.failed, /ENOSPC/, 'the failure ends the failing sink')
  t.equal(a.stats().batchesWritten, 0)
  const healthy = recordingDestination()
  await openSink(t, 'sink-2', { consumer: 'fail-over', destination: healthy })
  await waitFor('the other sink to write all 200', () => verify(healthy).delivered === 200, 20_000)
  t.match(verify(healthy), { delivered: 200, unexplainedMissing: 0 })
})

t.test('the first connection\'s problems are specific errors', async t => {
  const otherCa = makeCa({ commonName: 'another CA' })
  const foreign = makeClient(otherCa, { commonName: 'sink-1' })
  await t.rejects(openSink(t, 'sink-1', { credentials: creds('sink-1', foreign) }), { code: /^EDGEFWD_ERR_TLS_/ }, 'a certificate of another CA')
  const stranger = makeClient(ca, { commonName: 'stranger' })
  await t.rejects(openSink(t, 'stranger', { credentials: creds('stranger', stranger) }),
    { code: 'EDGEFWD_ERR_UPLINK_REFUSED', message: /refused the sink/, hint: /verify_and_map/ }, 'a certificate that maps to no user')
  await t.rejects(openSink(t, 'sink-1', { filterSubject: '$MQTT.msgs.other.>' }),
    { code: 'EDGEFWD_ERR_CONFIG_INVALID', message: /the consumer sinks on \$MQTT_msgs takes \$MQTT\.msgs\.edgefwd\.\*\.events, not \$MQTT\.msgs\.other\.>/ }, 'the consumer exists with another filter')
  await t.rejects(openSink(t, 'sink-1', { stream: 'NOPE', consumer: 'x' }), { code: 'EDGEFWD_ERR_CONFIG_INVALID', message: /no stream NOPE/ }, 'no such stream')
})

t.test('no node answers: an outage, after trying each (EDGEFWD_ERR_UPLINK_CONNECT)', async t => {
  const ports = [await freePort(), await freePort()]
  await t.rejects(openSink(t, 'sink-1', { servers: ports.map(p => `nats://127.0.0.1:${p}`) }), { code: 'EDGEFWD_ERR_UPLINK_CONNECT', message: /ECONNREFUSED/ })
})

t.test('the node a sink is connected to stops: the sink reconnects to another and goes on', async t => {
  const logged: string[] = []
  const destination = recordingDestination()
  const sink = await openSink(t, 'sink-3', { consumer: 'node-loss', destination, log: line => { logged.push(line) } })
  const at = /consuming .* at (127\.0\.0\.1:\d+) of/.exec(logged.join('\n'))?.[1]
  const node = cluster.nodes.find(n => n.natsUrl.endsWith(at ?? 'none'))
  if (node === undefined) throw new Error(`which node? ${logged.join(' | ')}`)
  const { uplink, store } = await gateway(t)
  await appendEvents(store, 500, 1, 1)
  uplink.start()
  await waitFor('the first 500 written', () => verify(destination).delivered === 500, 20_000)
  await node.stop()
  t.teardown(async () => { await node.start() })
  await appendEvents(store, 500, 1, 501)
  await waitFor('the next 500 written after the sink\'s node stopped', () => verify(destination).delivered === 1000, 60_000)
  t.match(verify(destination), { delivered: 1000, unexplainedMissing: 0 })
  t.ok(sink.stats().reconnects >= 1, `reconnected (${sink.stats().reconnects})`)
  t.ok(logged.some(l => l.startsWith(`disconnected from ${at}`)), 'said it lost its node')
  await node.start()
})

t.test('the consumer deleted under a running sink: it says so, makes it again, and takes every message', async t => {
  const logged: string[] = []
  const destination = recordingDestination()
  await openSink(t, 'sink-1', { consumer: 'deleted', destination, log: line => { logged.push(line) } })
  const admin = await connect({ servers: servers(), tls: { ...clientTlsOptions(creds('sink-2')()) } as unknown as Record<string, string> })
  t.teardown(async () => { await admin.close() })
  await (await jetstreamManager(admin)).consumers.delete('$MQTT_msgs', 'deleted')
  await waitFor('the sink to make its consumer again', () => logged.some(l => /created the durable consumer deleted on \$MQTT_msgs/.test(l)) &&
    logged.filter(l => l.startsWith('consuming ')).length === 2, 30_000)
  t.ok(logged.some(l => /^consumer (deleted|not found): \$MQTT_msgs\/deleted; making it again$/.test(l)), 'said why')
  const { uplink, store } = await gateway(t, 'gw-2')
  await appendEvents(store, 300, 1, 1)
  uplink.start()
  // The consumer made again starts from the stream's first message: what other tests left there
  // comes too, so only this gateway's events count.
  const mine = { batches: destination.batches.filter(b => b.gatewayId === 'gw-2') }
  await waitFor('all 300 of gw-2 written by the sink', () => { mine.batches = destination.batches.filter(b => b.gatewayId === 'gw-2'); return verify(mine).delivered === 300 }, 30_000)
  t.match(verify(mine), { delivered: 300, unexplainedMissing: 0 })
})

t.test('the stream deleted for good under a running sink: it cannot make its consumer again, and fails with the reason', async t => {
  const admin = await connect({ servers: servers(), tls: { ...clientTlsOptions(creds('sink-2')()) } as unknown as Record<string, string> })
  t.teardown(async () => { await admin.close() })
  const jsm = await jetstreamManager(admin)
  await jsm.streams.add({ name: 'OWN', subjects: ['own.>'], num_replicas: 3 })
  const logged: string[] = []
  const sink = await openSink(t, 'sink-1', { stream: 'OWN', consumer: 'own', filterSubject: 'own.>', log: line => { logged.push(line) } })
  await jsm.streams.delete('OWN')
  await t.rejects(sink.failed, { code: 'EDGEFWD_ERR_CONFIG_INVALID', message: /no stream OWN in this account/ })
  t.ok(logged.some(l => /^(stream not found|consumer deleted|consumer not found): OWN\/own; making it again$/.test(l)), 'said why first')
})
