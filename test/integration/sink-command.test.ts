/**
 * `edgefwd sink`, run in-process through main() against real brokers:
 * - the embedded broker (MQTT 3.1.1): a redelivered batch is written once, a malformed message is
 *   skipped, a gap explained by an eviction report passes --verify (exit 0), lines go to --out;
 *   the persistent session hands a restarted sink what was published while it was away;
 * - an unexplained gap makes --verify exit 1 and names the gap;
 * - Mosquitto (MQTT 5): the same checks, and a `$share/g/...` group of two sinks that split the
 *   stream between them, verified together.
 * Certificates are made at test time; every wait is bounded; every broker and client is stopped.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import mqtt, { type MqttClient } from 'mqtt'
import { main } from '../../src/cli/program.js'
import { issueCertificate } from '../../src/pki/generate.js'
import { clientTlsOptions } from '../../src/pki/tls-options.js'
import { concatBatch, encodeEvent, type EvictionReportData } from '../../src/proto/codec.js'
import { SequenceVerifier } from '../../src/sink/verify.js'
import { encodeLeaseEnvelope } from '../../src/uplink/envelope.js'
import { startEmbeddedBroker } from '../../simulate/embedded-broker.js'
import { startMosquitto } from '../helpers/mosquitto.js'
import { makeCa, makeClient, writeSet } from '../helpers/test-pki.js'
import { waitFor } from '../helpers/wait.js'

const ca = makeCa()
const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
const gwCert = makeClient(ca, { commonName: 'gw-1' })

/** An envelope of gateway `gatewayId` holding one event per seq of device `deviceId`. */
function envelope (batchSeq: number, seqs: number[], options: { gatewayId?: string, deviceId?: string, report?: EvictionReportData } = {}): Buffer {
  const deviceId = options.deviceId ?? 'd1'
  const events = seqs.map((seq, i) => encodeEvent({ deviceId, deviceSeq: seq, gatewayTimeMs: 1_700_000_000_000 + seq, priority: 1, stream: 's', value: { kind: 'number', number: seq } }, batchSeq * 1000 + i))
  const { bytes } = encodeLeaseEnvelope({ events, batch: concatBatch(events), firstStoreSeq: batchSeq * 1000, lastStoreSeq: batchSeq * 1000 + seqs.length - 1, report: options.report },
    { gatewayId: options.gatewayId ?? 'gw-1', batchSeq, nowMs: Date.now() }, { compression: 'auto' })
  return Buffer.from(bytes)
}

function evicted (deviceId: string, firstSeq: number, lastSeq: number): EvictionReportData {
  return { counts: [], ranges: [{ deviceId, firstSeq, lastSeq, count: lastSeq - firstSeq + 1, priority: 1, reason: 'evicted_for_space' }], rangesTruncated: false }
}

interface SinkRun { done: Promise<number>, stdout: () => string, stderr: () => string }

/** Starts `edgefwd sink` in-process and resolves once it has subscribed. */
async function startSink (argv: string[]): Promise<SinkRun> {
  let stdout = ''
  let stderr = ''
  let finished = false
  const done = main(['sink', ...argv], {}, { stdout: { write: (s: string) => { stdout += s } }, stderr: { write: (s: string) => { stderr += s } } })
  void done.then(() => { finished = true })
  await waitFor('the sink to subscribe', () => finished || stderr.includes('subscribed to'))
  if (finished) throw new Error(`sink ended before subscribing (exit ${await done}): ${stderr}`)
  return { done, stdout: () => stdout, stderr: () => stderr }
}

/** Bounds a sink run: --until-idle ends it, this catches a sink that never goes idle. */
async function exitCode (run: SinkRun, ms = 20_000): Promise<number> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([run.done, new Promise<number>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`sink did not stop within ${ms} ms: ${run.stderr()}`)) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}

function writeConfig (dir: string, name: string, sink: Record<string, unknown>): string {
  const sinkCert = makeClient(ca, { commonName: `sink-${name}` })
  const tls = writeSet(join(dir, `tls-${name}`), { ca: ca.certPem, cert: sinkCert.certPem, key: sinkCert.keyPem })
  const file = join(dir, `${name}.json`)
  writeFileSync(file, JSON.stringify({ gateway: { id: 'cloud' }, tls, sink }))
  return file
}

async function gateway (t: Test, url: string, protocolVersion: 4 | 5): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, {
    ...clientTlsOptions({ ca: ca.certPem, cert: gwCert.certPem, key: gwCert.keyPem }), clientId: 'gw-1', protocolVersion, reconnectPeriod: 0, connectTimeout: 5000
  }, false)
  t.teardown(async () => { await client.endAsync(true) })
  return client
}

function seqsOf (jsonl: string): number[] {
  return jsonl.split('\n').filter(l => l !== '').map(l => (JSON.parse(l) as { deviceSeq: number }).deviceSeq)
}

/** The same scenario on either broker: redelivery, malformed message, explained gap; then a restart that picks up the session. */
async function deliveryScenario (t: Test, url: string, mqttVersion: '5' | '3.1.1'): Promise<void> {
  const dir = t.testdir()
  const protocolVersion = mqttVersion === '5' ? 5 : 4
  const config = writeConfig(dir, 'sink', { url, mqttVersion, clientId: `sink-${mqttVersion}` })
  const out = join(dir, 'events.jsonl')
  const gw = await gateway(t, url, protocolVersion)

  const run = await startSink([config, '--verify', '--out', out, '--until-idle', '1500ms'])
  await gw.publishAsync('edgefwd/gw-1/events', envelope(1, [1, 2, 3]), { qos: 1 })
  await gw.publishAsync('edgefwd/gw-1/events', envelope(2, [4, 5]), { qos: 1 })
  await gw.publishAsync('edgefwd/gw-1/events', envelope(2, [4, 5]), { qos: 1 }) // redelivered
  await gw.publishAsync('edgefwd/gw-1/events', Buffer.from('not an envelope'), { qos: 1 })
  await gw.publishAsync('edgefwd/gw-1/events', envelope(3, [8, 9], { report: evicted('d1', 6, 7) }), { qos: 1 })
  t.equal(await exitCode(run), 0, run.stderr())
  t.same(seqsOf(readFileSync(out, 'utf8')), [1, 2, 3, 4, 5, 8, 9], 'each event once, in order')
  t.equal(run.stdout(), '', 'lines went to --out')
  t.match(run.stderr(), /delivered 7, duplicates 0, explained missing 2, unexplained missing 0/)
  t.match(run.stderr(), /1 redelivered batches dropped, 1 malformed/)
  t.match(run.stderr(), /malformed message on edgefwd\/gw-1\/events \(15 bytes\)/)
  const first = JSON.parse(readFileSync(out, 'utf8').split('\n')[0] ?? '') as Record<string, unknown>
  t.match(first, { gateway: 'gw-1', batchSeq: 1, deviceId: 'd1', deviceSeq: 1, priority: 'normal', stream: 's', value: { kind: 'number', number: 1 } })

  // Published while no sink runs: the persistent session keeps it for the next run with this client id.
  await gw.publishAsync('edgefwd/gw-1/events', envelope(4, [10, 11]), { qos: 1 })
  const again = await startSink([config, '--until-idle', '1500ms'])
  t.equal(await exitCode(again), 0, again.stderr())
  t.same(seqsOf(again.stdout()), [10, 11], 'the restarted sink got what was published while it was away')
}

t.test('embedded broker (MQTT 3.1.1)', async t => {
  const broker = await startEmbeddedBroker({ tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem } })
  t.teardown(async () => { await broker.close() })

  t.test('redelivery written once, malformed skipped, explained gap passes, session kept', async t => {
    await deliveryScenario(t, broker.url, '3.1.1')
  })

  t.test('an unexplained gap: --verify exits 1 and names it', async t => {
    const dir = t.testdir()
    const config = writeConfig(dir, 'gap', { url: broker.url, mqttVersion: '3.1.1', clientId: 'sink-gap', topic: 'edgefwd/gw-2/events' })
    const gw = await gateway(t, broker.url, 4)
    const run = await startSink([config, '--verify', '--until-idle', '1s'])
    await gw.publishAsync('edgefwd/gw-2/events', envelope(1, [1, 2], { gatewayId: 'gw-2' }), { qos: 1 })
    await gw.publishAsync('edgefwd/gw-2/events', envelope(2, [5], { gatewayId: 'gw-2', report: evicted('d1', 4, 4) }), { qos: 1 })
    t.equal(await exitCode(run), 1)
    t.same(seqsOf(run.stdout()), [1, 2, 5])
    t.match(run.stderr(), /delivered 3, duplicates 0, explained missing 1, unexplained missing 1\nunexplained gap: gateway gw-2 device d1 seq 3\n/)
  })

  t.test('a sink that cannot connect fails at once with the classified error', async t => {
    const dir = t.testdir()
    const stranger = makeCa({ commonName: 'stranger' })
    const config = join(dir, 'bad.json')
    const cert = makeClient(stranger, { commonName: 'intruder' })
    const tls = writeSet(join(dir, 'tls'), { ca: ca.certPem, cert: cert.certPem, key: cert.keyPem })
    writeFileSync(config, JSON.stringify({ gateway: { id: 'cloud' }, tls: { ...tls, checkClientChain: false }, sink: { url: broker.url, mqttVersion: '3.1.1' } }))
    let stderr = ''
    const code = await main(['sink', config, '--until-idle', '1s'], {}, { stdout: { write: () => {} }, stderr: { write: (s: string) => { stderr += s } } })
    t.equal(code, 1)
    t.match(stderr, /^edgefwd: .*EDGEFWD_ERR_TLS_REJECTED|^edgefwd: .*(refused|rejected|closed)/m)
  })
})

t.test('usage errors', async t => {
  const run = async (argv: string[]): Promise<{ code: number, stderr: string }> => {
    let stderr = ''
    const code = await main(['sink', ...argv], {}, { stdout: { write: () => {} }, stderr: { write: (s: string) => { stderr += s } } })
    return { code, stderr }
  }
  t.match(await run([]), { code: 2, stderr: /needs process signals.*--until-idle/ })
  t.match(await run(['--until-idle', 'soon']), { code: 2, stderr: /--until-idle expected a duration/ })
  t.match(await run(['--until-idle', '1s']), { code: 78, stderr: /sink\.url: is required/ })
  t.match(await run(['--until-idle', '1s', '--set', 'sink.url=mqtts://127.0.0.1:1', '--set', 'sink.shareGroup=g', '--set', 'sink.mqttVersion=3.1.1']), { code: 78, stderr: /sink\.shareGroup: needs sink\.mqttVersion 5/ })
  t.match(await run(['--until-idle', '1s', '--set', 'sink.source=jetstream']), { code: 78, stderr: /sink\.jetstream\.servers: is required when sink\.source is jetstream/ })
  t.match(await run(['--until-idle', '1s', '--set', 'sink.source=jetstream', '--set', 'sink.jetstream.servers=nats://127.0.0.1:1', '--set', 'sink.shareGroup=g']),
    { code: 78, stderr: /sink\.shareGroup: is for an MQTT sink: JetStream sinks share the work through sink\.jetstream\.consumer/ })
})

t.test('Mosquitto (MQTT 5)', async t => {
  const dir = t.testdir()
  mkdirSync(join(dir, 'broker'))
  const broker = await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
  t.teardown(async () => { await broker.stop() })

  t.test('redelivery written once, malformed skipped, explained gap passes, session kept', async t => {
    await deliveryScenario(t, broker.url, '5')
    t.ok(broker.connections().some(c => c.clientId === 'sink-5' && c.protocol === 'p5'), 'the sink spoke MQTT 5')
  })

  t.test('$share/g: two sinks split the stream; together every event arrives once', async t => {
    const dir = t.testdir()
    const outs = ['a', 'b'].map(n => join(dir, `${n}.jsonl`))
    const configs = ['a', 'b'].map(n => writeConfig(dir, n, { url: broker.url, clientId: `sink-share-${n}`, shareGroup: 'g' }))
    const runs = [await startSink([configs[0] ?? '', '--out', outs[0] ?? '', '--until-idle', '2s']), await startSink([configs[1] ?? '', '--out', outs[1] ?? '', '--until-idle', '2s'])]
    const gw = await gateway(t, broker.url, 5)
    const batches = 40
    for (let b = 1; b <= batches; b++) await gw.publishAsync('edgefwd/gw-1/events', envelope(b, [b * 2 - 1, b * 2]), { qos: 1 })
    for (const run of runs) t.equal(await exitCode(run), 0, run.stderr())
    t.match(runs[0]?.stderr(), /subscribed to \$share\/g\/edgefwd\/\+\/events/)
    const lines = outs.map(o => readFileSync(o, 'utf8').split('\n').filter(l => l !== ''))
    t.ok((lines[0]?.length ?? 0) > 0 && (lines[1]?.length ?? 0) > 0, `both sinks got a share (${lines[0]?.length} + ${lines[1]?.length} lines)`)
    const verifier = new SequenceVerifier({ expectedFirstSeq: 1 })
    for (const l of lines.flat()) {
      const e = JSON.parse(l) as { gateway: string, deviceId: string, deviceSeq: number }
      verifier.addEvents(e.gateway, [{ deviceId: e.deviceId, deviceSeq: e.deviceSeq } as Parameters<SequenceVerifier['addEvents']>[1][number]])
    }
    t.match(verifier.summary(), { delivered: batches * 2, duplicates: 0, unexplainedMissing: 0 })
  })
})
