/**
 * The metrics and the heartbeat against what actually happened: a scripted run (good and bad
 * frames, a broker outage that fills a small store until it evicts, the recovery) through the
 * same Supervisor and endpoint `edgefwd run` uses, a real Mosquitto over mutual TLS, and a
 * subscriber that checks every device sequence. The scraped `/metrics` must equal what the sink
 * received and what the store reports; the heartbeat, decoded with protobufjs straight from the
 * .proto file, must equal the metrics.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { connect, createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import mqtt from 'mqtt'
import protobuf from 'protobufjs'
import { startChaosProxy } from '../../simulate/chaos-proxy.js'
import { configBuilder } from '../../src/config/index.js'
import { Supervisor } from '../../src/control/supervisor.js'
import { cobsEncode } from '../../src/ingest/cobs.js'
import { CRC_LENGTH, encodeFrame, writeCrc } from '../../src/ingest/frame.js'
import { parseExposition, type Sample } from '../../src/observe/exposition.js'
import { ForwarderMetrics } from '../../src/observe/forwarder-metrics.js'
import { startObserveServer } from '../../src/observe/http-server.js'
import { MetricsRegistry } from '../../src/observe/metrics.js'
import { encodeDeviceFrame } from '../../src/proto/codec.js'
import { issueCertificate } from '../../src/pki/generate.js'
import { clientTlsOptions } from '../../src/pki/tls-options.js'
import { decodeEnvelopeMessage } from '../../src/sink/decode.js'
import { SequenceVerifier } from '../../src/sink/verify.js'
import { PRIORITIES } from '../../src/types.js'
import { openLevelStore } from '../../src/store/index.js'
import { assertBuilt, distRoot } from '../helpers/built.js'
import { silentLogger } from '../helpers/logger.js'
import { startMosquitto } from '../helpers/mosquitto.js'
import { makeCa, makeClient, writeSet } from '../helpers/test-pki.js'
import { encode, event } from './helpers/device.js'
import { waitFor } from '../helpers/wait.js'

const ca = makeCa()
const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
const sinkCert = makeClient(ca, { commonName: 'sink' })
const gwCert = makeClient(ca, { commonName: 'gw-obs' })
const protoFile = fileURLToPath(new URL('../../proto/edgefwd/v1/edgefwd.proto', import.meta.url))

/** A stream frame with byte `at` flipped: after the CRC was computed (bad_crc), or before (`recrc`: the change itself is refused). */
function corrupted (seq: number, at: number, recrc = false): Buffer {
  const frame = encodeFrame({ type: 'event', body: encodeDeviceFrame(event('dev-bad', seq)) })
  frame[at] = (frame[at] ?? 0) ^ 0x55
  if (recrc) writeCrc(frame, frame.length - CRC_LENGTH)
  return Buffer.concat([cobsEncode(frame), Buffer.from([0])])
}

t.test('after a scripted run the scraped metrics equal what the sink and the store report, and the heartbeat equals the metrics', async t => {
  const dir = t.testdir()
  mkdirSync(join(dir, 'broker'))
  const broker = await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
  t.teardown(async () => { await broker.stop() })
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: broker.port } })
  t.teardown(async () => { await proxy.close() })

  // The receiving side: every event, every eviction report, every heartbeat.
  const sub = await mqtt.connectAsync(broker.url, {
    ...clientTlsOptions({ ca: ca.certPem, cert: sinkCert.certPem, key: sinkCert.keyPem }), clientId: 'obs-sink', protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000
  }, false)
  t.teardown(async () => { await sub.endAsync(true) })
  const verifier = new SequenceVerifier({ expectedFirstSeq: 1 })
  const reported = new Map<string, number>()
  const Heartbeat = (await protobuf.load(protoFile)).lookupType('edgefwd.v1.Heartbeat')
  const beats: Array<Record<string, unknown>> = []
  sub.on('message', (topic, payload) => {
    if (topic.endsWith('/health')) { beats.push(Heartbeat.toObject(Heartbeat.decode(payload), { longs: Number, enums: String, defaults: true })); return }
    const decoded = decodeEnvelopeMessage(payload)
    verifier.addEnvelope(decoded)
    for (const c of decoded.envelope.evictionReport?.counts ?? []) {
      const key = `${PRIORITIES[c.priority] ?? '?'}:${c.reason}`
      reported.set(key, (reported.get(key) ?? 0) + c.count)
    }
  })
  await sub.subscribeAsync(['edgefwd/gw-obs/events', 'edgefwd/gw-obs/health'], { qos: 1 })

  const tls = writeSet(join(dir, 'tls'), { ca: ca.certPem, cert: gwCert.certPem, key: gwCert.keyPem })
  const config = join(dir, 'gw.yaml')
  writeFileSync(config, [
    'gateway: { id: gw-obs }',
    `store: { path: ${join(dir, 'store')}, capacity: 64KiB }`,
    `tls: { ca: ${tls.ca}, cert: ${tls.cert}, key: ${tls.key} }`,
    `uplink: { url: "${proxy.url('mqtts')}", heartbeatInterval: 1s, stopTimeout: 1s, backoff: { initial: 100ms, max: 300ms }, connectTimeout: 2s }`,
    'ingest:',
    '  rateLimit: { eventsPerSecond: 1000000, bytesPerSecond: 64MiB }',
    '  tcp: [{ address: 127.0.0.1, port: 0, format: frames }]',
  ].join('\n'))
  const registry = new MetricsRegistry()
  const metrics = new ForwarderMetrics(registry, 'test')
  const build = await configBuilder({ file: config })
  const supervisor = await Supervisor.start({ config: build(), build, logger: silentLogger(), env: {}, version: 'test', metrics, onFatal: (err) => { throw err } })
  t.teardown(async () => { await supervisor.stopNow(); metrics.close() })
  const endpoint = await startObserveServer({ host: '127.0.0.1', port: 0, registry, logger: silentLogger(), health: () => supervisor.health(), ready: () => supervisor.readiness() })
  t.teardown(async () => { await endpoint.close() })
  const scrape = async (): Promise<Sample[]> => parseExposition(await (await fetch(`http://${endpoint.address}/metrics`)).text())
  const forwarder = supervisor.current
  if (forwarder === undefined) throw new Error('no forwarder')
  await waitFor('online', () => forwarder.stats().uplink.state === 'online', 10_000)

  const address = forwarder.listening.find(l => l.startsWith('tcp ')) ?? ''
  const device = connect(Number(address.slice(address.lastIndexOf(':') + 1)), '127.0.0.1')
  device.on('data', () => {})
  t.teardown(() => { device.destroy() })
  await new Promise<void>((resolve, reject) => { device.once('connect', resolve); device.once('error', reject) })
  const send = async (frames: Uint8Array[]): Promise<void> => { await new Promise<void>(resolve => device.write(Buffer.concat(frames), () => { resolve() })) }
  const stream = (deviceId: string, from: number, count: number, priority: 0 | 1 | 2 | 3): Uint8Array[] =>
    Array.from({ length: count }, (_, i) => encode('stream', event(deviceId, from + i, { priority, value: { kind: 'raw', raw: new Uint8Array(60) } })))

  // 1. Online: 100 good events, 3 with a bad CRC, 2 with a bad version byte.
  await send([...stream('dev-n', 1, 50, 1), corrupted(1, 10), corrupted(2, 20), corrupted(3, 5), corrupted(4, 0, true), ...stream('dev-n', 51, 50, 1), corrupted(5, 0, true)])
  await waitFor('100 delivered', () => verifier.summary().delivered === 100, 10_000)
  // 2. The broker unreachable: a store of 64 KiB fills with low events and evicts the oldest.
  proxy.setMode('reset')
  await waitFor('offline', () => forwarder.stats().uplink.state !== 'online', 5000)
  for (let i = 0; i < 6; i++) await send(stream('dev-low', 1 + i * 250, 250, 0))
  await send(stream('dev-crit', 1, 10, 3))
  await waitFor('every good event accepted and written', () => forwarder.stats().ingest.events === 1610 && forwarder.stats().store.pendingAppends === 0, 10_000)
  await waitFor('a failed attempt', () => registry.get('edgefwd_uplink_connect_failures_total', { reason: 'connect' }) !== undefined || forwarder.stats().uplink.connectFailures.connect !== undefined, 5000)
  t.ok(forwarder.stats().store.drops.some(d => d.reason === 'evicted_for_space' && d.priority === 'low'), 'the store evicted low events')
  // 3. Back: everything left is delivered, evictions are reported upstream.
  proxy.setMode('pass')
  await waitFor('the store drained', () => forwarder.stats().store.events === 0 && forwarder.stats().store.pendingReports === 0, 20_000)
  const store = forwarder.stats().store
  const evicted = (priority: string): number => store.drops.filter(d => d.priority === priority && d.reason === 'evicted_for_space').reduce((n, d) => n + d.count, 0)
  await waitFor('every event delivered or reported evicted', () => verifier.summary().delivered + verifier.summary().explainedMissing === 1610, 10_000)

  const samples = await scrape()
  const value = (name: string, labels: Record<string, string> = {}): number =>
    samples.filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0)
  const summary = verifier.summary()
  t.equal(summary.unexplainedMissing, 0, 'no unexplained loss')
  t.equal(value('edgefwd_frames_received_total', { transport: 'tcp' }), 1615, 'frames received: 1610 good, 5 bad')
  t.equal(value('edgefwd_frames_rejected_total', { reason: 'bad_crc' }), 3)
  t.equal(value('edgefwd_frames_rejected_total', { reason: 'bad_version' }), 2)
  t.equal(value('edgefwd_frames_rejected_total'), 5, 'no other rejection')
  t.equal(value('edgefwd_events_accepted_total'), 1610)
  t.equal(value('edgefwd_events_stored_total'), store.perPriority.reduce((n, p) => n + p.stored, 0), 'stored = the store\'s count')
  t.equal(value('edgefwd_events_stored_total', { priority: 'critical' }), 10, 'every critical event stored')
  t.equal(value('edgefwd_events_acked_total'), summary.delivered, `delivered (acked) = what the sink got, ${summary.delivered}`)
  t.equal(value('edgefwd_events_acked_total', { priority: 'critical' }), 10, 'every critical event delivered')
  t.equal(value('edgefwd_events_evicted_total', { priority: 'low' }), evicted('low'), 'evicted = the store\'s count')
  t.equal(value('edgefwd_events_evicted_total', { priority: 'low' }), reported.get('low:evicted_for_space'), 'evicted = what the eviction reports told the sink')
  t.equal(value('edgefwd_events_evicted_total', { priority: 'low' }), summary.explainedMissing, 'evicted = the gaps the sink could explain')
  t.ok(evicted('low') > 100, `a real eviction (${evicted('low')} events)`)
  t.equal(value('edgefwd_events_evicted_total', { priority: 'critical' }) + value('edgefwd_events_evicted_total', { priority: 'normal' }), 0)
  t.equal(value('edgefwd_events_dropped_total'), store.drops.reduce((n, d) => n + d.count, 0), 'dropped = the store\'s cumulative drops')
  t.equal(value('edgefwd_store_events'), 0)
  t.equal(value('edgefwd_store_capacity_bytes'), 64 * 1024)
  t.equal(value('edgefwd_uplink_state', { state: 'online' }), 1)
  t.ok(value('edgefwd_uplink_connects_total') >= 2, 'reconnected after the outage')
  t.ok(value('edgefwd_uplink_connect_failures_total', { reason: 'connect' }) >= 1, 'the outage\'s failed attempts, by reason')
  t.equal(value('edgefwd_delivery_lag_seconds_count'), summary.delivered, 'one lag observation per delivered event')
  t.equal(value('edgefwd_puback_latency_seconds_count'), value('edgefwd_batches_acked_total'), 'one PUBACK latency per acked batch')
  t.equal(value('edgefwd_events_published_total'), value('edgefwd_events_acked_total') + value('edgefwd_events_resent_total'), 'published = acked + sent again')
  t.ok(value('edgefwd_tls_cert_expiry_timestamp_seconds') > Date.now() / 1000 + 300 * 86_400, 'the certificate\'s notAfter')

  // The next heartbeat, scraped at once: nothing moves any more, so the counters must agree.
  const seen = beats.length
  // The second one: its interval began after the run, so nothing was lost in it.
  await waitFor('two heartbeats after the run', () => beats.length > seen + 1, 5000)
  const beat = beats[beats.length - 1] ?? {}
  const now = await scrape()
  const at = (name: string, labels: Record<string, string> = {}): number =>
    now.filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0)
  t.match(beat, {
    gatewayId: 'gw-obs',
    framesReceived: at('edgefwd_frames_received_total'),
    framesRejected: at('edgefwd_frames_rejected_total'),
    eventsReceived: at('edgefwd_events_accepted_total'),
    eventsDelivered: at('edgefwd_events_acked_total'),
    eventsPublished: at('edgefwd_events_published_total'),
    eventsResent: at('edgefwd_events_resent_total'),
    eventsEvicted: at('edgefwd_events_evicted_total') + at('edgefwd_events_expired_total'),
    eventsDropped: at('edgefwd_events_dropped_total'),
    bufferedEvents: at('edgefwd_store_events'),
    capacityBytes: at('edgefwd_store_capacity_bytes'),
    uplinkConnects: at('edgefwd_uplink_connects_total'),
    connectFailures: at('edgefwd_uplink_connect_failures_total'),
    authFailures: 0,
    linkState: 'online',
    diskDegraded: false,
    configVersion: 0,
  })
  const lost = at('edgefwd_events_dropped_total')
  const delivered = at('edgefwd_events_acked_total')
  t.equal(beat.deliverySuccessRatio, delivered / (delivered + lost), 'success ratio since start = delivered / (delivered + lost)')
  t.equal(beat.lossRatio, lost / 1610, 'loss ratio since start = lost / accepted')
  t.equal(beat.deliverySuccessRatioInterval, 1, 'nothing lost in the last interval')
  t.ok((beat.certDaysLeft as number) > 300)
  t.ok((beat.deliveryLagP99S as number) > 0 && (beat.pubackLatencyP99S as number) > 0, 'latency figures from the histograms')
})

t.test('edgefwd run with its metrics address in use: a clear error, exit 1, nothing left running or locked', async t => {
  assertBuilt()
  const dir = t.testdir()
  const busy = createServer()
  await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { busy.close() })
  const port = (busy.address() as AddressInfo).port
  const tls = writeSet(join(dir, 'tls'), { ca: ca.certPem, cert: gwCert.certPem, key: gwCert.keyPem })
  const config = join(dir, 'gw.yaml')
  writeFileSync(config, [
    'gateway: { id: gw-busy }',
    `store: { path: ${join(dir, 'store')} }`,
    `tls: { ca: ${tls.ca}, cert: ${tls.cert}, key: ${tls.key} }`,
    'uplink: { url: "mqtts://127.0.0.1:1" }',
    `observe: { metrics: { listen: "127.0.0.1:${port}" } }`,
  ].join('\n'))
  const run = spawnSync(process.execPath, [join(distRoot, 'bin/edgefwd.js'), 'run', config], { encoding: 'utf8', timeout: 30_000 })
  t.equal(run.status, 1, run.stderr)
  t.match(run.stderr, new RegExp(`^edgefwd: the metrics endpoint cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE\\nhint: `, 'm'))
  // The forwarder that started beside it was stopped: its store opens again at once.
  const store = await openLevelStore(join(dir, 'store'), { capacityBytes: 1 << 20 }, silentLogger())
  await store.close()
})
