/**
 * `ingest.mqtt` against a real Mosquitto as the gateway's local broker (plain MQTT on loopback,
 * as zigbee2mqtt and Tasmota use it): zigbee2mqtt- and Tasmota-shaped messages go through
 * `edgefwd run` and the uplink (a second Mosquitto, mutual TLS) to a subscriber with exactly their
 * values; a SIGKILL in the middle of the flow loses nothing the local broker handed over; bad
 * payloads, an unreachable broker, a refusal and a store that cannot write are counted and
 * survived.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import mqtt from 'mqtt'
import { parseConfigText } from '../../src/config/index.js'
import { IngestPipeline } from '../../src/ingest/pipeline.js'
import { ingestOptions } from '../../src/ingest/options.js'
import { MqttSource, type MqttSourceConfig } from '../../src/ingest/sources/mqtt/mqtt-source.js'
import type { TransportCounters } from '../../src/ingest/counters.js'
import { transportContext, type TransportContext } from '../../src/ingest/transports/index.js'
import { issueCertificate } from '../../src/pki/generate.js'
import { clientTlsOptions } from '../../src/pki/tls-options.js'
import { decodeEnvelopeMessage } from '../../src/sink/decode.js'
import type { EventRecord } from '../../src/types.js'
import { assertBuilt } from '../helpers/built.js'
import { captureLogger } from '../helpers/logger.js'
import { freePort, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js'
import { makeCa, makeClient, writeSet } from '../helpers/test-pki.js'
import { waitFor } from '../helpers/wait.js'
import { startRun, type RunningForwarder } from './helpers/run-child.js'
import { FakeSink } from './helpers/sinks.js'
import { startChaosProxy } from '../../simulate/chaos-proxy.js'

const ca = makeCa()
const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
const subscriberCert = makeClient(ca, { commonName: 'subscriber' })

async function localBroker (t: Test, options: { port?: number, listenerConfig?: string[] } = {}): Promise<Mosquitto> {
  // Not t.testdir(): called again, it empties the directory.
  const dir = join(t.testdirName, `local-${Math.random().toString(36).slice(2, 8)}`)
  mkdirSync(dir, { recursive: true })
  // Room for what arrives while edgefwd is down (Mosquitto keeps 1000 by default, then drops).
  const broker = await startMosquitto({ dir, ca: '', cert: '', key: '', plain: true, extraConfig: ['max_queued_messages 100000'], ...options })
  t.teardown(broker.stop)
  return broker
}

type Running = RunningForwarder

function startForwarder (t: Test, config: string): Running {
  const running = startRun(config)
  t.teardown(() => { if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL') })
  return running
}

/** What reaches the uplink broker, decoded. */
async function subscriber (t: Test, url: string): Promise<EventRecord[]> {
  const client = await mqtt.connectAsync(url, {
    ...clientTlsOptions({ ca: ca.certPem, cert: subscriberCert.certPem, key: subscriberCert.keyPem }), clientId: 'subscriber', protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000
  }, false)
  t.teardown(async () => { await client.endAsync(true) })
  const events: EventRecord[] = []
  client.on('message', (_topic, payload) => { events.push(...decodeEnvelopeMessage(payload).events) })
  await client.subscribeAsync('edgefwd/gw-mqtt/events', { qos: 1 })
  return events
}

function writeConfig (dir: string, local: string, uplink: string): string {
  const client = makeClient(ca, { commonName: 'gw-mqtt' })
  const files = writeSet(join(dir, 'tls'), { ca: ca.certPem, cert: client.certPem, key: client.keyPem })
  const path = join(dir, 'edgefwd.yaml')
  writeFileSync(path, [
    'gateway: { id: gw-mqtt }',
    `store: { path: ${join(dir, 'store')} }`,
    'log: { level: info }',
    'observe: { metrics: { listen: "127.0.0.1:0" } }',
    `tls: { ca: ${files.ca}, cert: ${files.cert}, key: ${files.key} }`,
    `uplink: { url: "${uplink}", batch: { maxEvents: 200 }, stopTimeout: 3s }`,
    'ingest:',
    '  rateLimit: { eventsPerSecond: 0, bytesPerSecond: 0 }',
    '  rules: [{ stream: power, priority: high }]',
    '  mqtt:',
    `    - url: ${local}`,
    '      maxPayload: 1KiB',
    '      topics:',
    '        - { filter: "zigbee2mqtt/{device}", stream: zigbee, tags: { state: state } }',
    '        - { filter: "tele/{device}/SENSOR", stream: energy, path: ENERGY }',
    '        - { filter: "stat/{device}/POWER", stream: power, payload: number }',
  ].join('\n') + '\n')
  return path
}

function metricsUrl (r: Running): string {
  const line = r.lines.find(l => typeof l.msg === 'string' && l.msg.includes('metrics'))
  const address = line?.address ?? line?.listen
  if (typeof address !== 'string') throw new Error(`no metrics address in ${JSON.stringify(r.lines.slice(0, 5))}`)
  return `http://${address}/metrics`
}

async function metric (r: Running, series: string): Promise<number> {
  const text = await (await fetch(metricsUrl(r))).text()
  const line = text.split('\n').find(l => l.startsWith(series + ' '))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

/** The local broker, the uplink's broker with a subscriber, and a configuration of edgefwd between them. */
async function brokers (t: Test): Promise<{ local: Mosquitto, received: EventRecord[], config: string }> {
  assertBuilt()
  const dir = t.testdir()
  const local = await localBroker(t)
  mkdirSync(join(dir, 'uplink'))
  const uplink = await startMosquitto({ dir: join(dir, 'uplink'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
  t.teardown(uplink.stop)
  const received = await subscriber(t, uplink.url)
  return { local, received, config: writeConfig(dir, local.url, uplink.url) }
}

async function subscribed (r: Running): Promise<void> {
  await waitFor('edgefwd subscribed to the local broker', () => r.lines.some(l => typeof l.msg === 'string' && l.msg.startsWith('subscribed to the local broker')))
}

t.test('zigbee2mqtt and Tasmota messages → edgefwd run → uplink: exactly the published values; bad payloads counted', async t => {
  const { local, received, config } = await brokers(t)
  const fwd = startForwarder(t, config)
  await subscribed(fwd)

  const devices = await mqtt.connectAsync(local.url, { protocolVersion: 5, clientId: 'devices' })
  t.teardown(async () => { await devices.endAsync(true) })
  const publish = async (topic: string, payload: string | Buffer): Promise<void> => { await devices.publishAsync(topic, payload, { qos: 1 }) }
  // zigbee2mqtt: an Aqara door sensor and a plug with a friendly name that has a space.
  await publish('zigbee2mqtt/door_sensor', JSON.stringify({ battery: 91, contact: true, device_temperature: 24, linkquality: 87, voltage: 3005 }))
  await publish('zigbee2mqtt/Kitchen Plug', JSON.stringify({ state: 'ON', power: 12.4, energy: 3.21, linkquality: 120, update: { state: 'idle' }, child_lock: null }))
  // Tasmota: telemetry with its ENERGY object, and the POWER state topic.
  await publish('tele/tasmota_1A2B3C/SENSOR', JSON.stringify({ Time: '2026-12-07T10:00:00', ENERGY: { TotalStartTime: '2026-01-01T00:00:00', Total: 3.456, Yesterday: 0.8, Today: 0.12, Power: 45, ApparentPower: 50, ReactivePower: 21, Factor: 0.9, Voltage: 231, Current: 0.196 } }))
  await publish('stat/tasmota_1A2B3C/POWER', 'ON')
  // Bad input, each counted: not JSON, no number in the object, a number topic with text, too large.
  await publish('zigbee2mqtt/door_sensor', '{"battery": 91,')
  await publish('zigbee2mqtt/door_sensor', JSON.stringify({ action: 'single' }))
  await publish('stat/tasmota_1A2B3C/POWER', 'maybe')
  await publish('zigbee2mqtt/door_sensor', JSON.stringify({ pad: 'x'.repeat(4000), battery: 1 }))
  await publish('zigbee2mqtt/door_sensor', JSON.stringify({ battery: 90 }))
  await waitFor('5 events at the uplink\'s subscriber', () => received.length >= 5)

  // The uplink sends higher priorities first: compared per device, in seq order.
  const ordered = [...received].sort((a, b) => a.deviceId.localeCompare(b.deviceId) || a.deviceSeq - b.deviceSeq)
  const seen = ordered.map(e => ({ deviceId: e.deviceId, stream: e.stream, priority: e.priority, value: e.value, tags: e.tags }))
  t.same(seen, [
    { deviceId: 'door_sensor', stream: 'zigbee', priority: 1, value: { kind: 'numbers', numbers: { battery: 91, contact: 1, device_temperature: 24, linkquality: 87, voltage: 3005 } }, tags: undefined },
    { deviceId: 'door_sensor', stream: 'zigbee', priority: 1, value: { kind: 'numbers', numbers: { battery: 90 } }, tags: undefined },
    { deviceId: 'Kitchen_Plug', stream: 'zigbee', priority: 1, value: { kind: 'numbers', numbers: { power: 12.4, energy: 3.21, linkquality: 120 } }, tags: { state: 'ON' } },
    { deviceId: 'tasmota_1A2B3C', stream: 'energy', priority: 1, value: { kind: 'numbers', numbers: { Total: 3.456, Yesterday: 0.8, Today: 0.12, Power: 45, ApparentPower: 50, ReactivePower: 21, Factor: 0.9, Voltage: 231, Current: 0.196 } }, tags: undefined },
    { deviceId: 'tasmota_1A2B3C', stream: 'power', priority: 2, value: { kind: 'number', number: 1 }, tags: undefined },
  ], 'the published values; the rule gave the POWER stream priority high')
  const doorSeqs = ordered.filter(e => e.deviceId === 'door_sensor').map(e => e.deviceSeq)
  t.equal(doorSeqs[1], (doorSeqs[0] ?? 0) + 1, 'a device\'s seqs are dense: the rejected messages took none')

  t.equal(await metric(fwd, 'edgefwd_frames_rejected_total{reason="bad_payload"}'), 3, 'not JSON, nothing to read, not a number')
  t.equal(await metric(fwd, 'edgefwd_frames_rejected_total{reason="oversize"}'), 1)
  t.equal(await metric(fwd, 'edgefwd_frames_received_total{transport="mqtt"}'), 9)
  const rejections = fwd.lines.filter(l => l.msg === 'frame rejected').map(l => String(l.detail))
  t.match(rejections, [/zigbee2mqtt\/door_sensor: payload is not JSON/], 'the log says what was wrong (one line per reason per 10 s)')
  t.equal(fwd.child.exitCode, null, 'still running')
  fwd.child.kill('SIGTERM')
  t.equal(await fwd.exited, 0)
})

t.test('SIGKILL of edgefwd during the flow: nothing the local broker handed over is lost', async t => {
  // The store makes events durable within a millisecond or so under load, too short a window for a
  // kill to land in reliably: the last test below holds an append open to check PUBACK's order.
  const { local, received, config } = await brokers(t)
  const first = startForwarder(t, config)
  await subscribed(first)

  const devices = await mqtt.connectAsync(local.url, { protocolVersion: 5, clientId: 'devices' })
  t.teardown(async () => { await devices.endAsync(true) })
  // A steady flow (about 3 s), so the kill lands while messages are arriving.
  const total = 4000
  const published = (async () => {
    for (let i = 0; i < total; i += 50) {
      await Promise.all(Array.from({ length: 50 }, async (_, k) => {
        await devices.publishAsync(`zigbee2mqtt/meter-${(i + k) % 3}`, JSON.stringify({ n: i + k }), { qos: 1 })
      }))
      await new Promise(resolve => setTimeout(resolve, 25))
    }
  })()
  await waitFor('part of the flow delivered', () => received.length >= 300)
  first.child.kill('SIGKILL')
  await first.exited
  t.ok(received.length < total, `killed in the middle of the flow (${received.length} of ${total} delivered)`)
  await published
  const second = startForwarder(t, config)
  const missing = (): number[] => {
    const got = new Set(received.map(e => e.value?.kind === 'numbers' ? e.value.numbers.n : -1))
    return Array.from({ length: total }, (_, n) => n).filter(n => !got.has(n))
  }
  await waitFor('every published value at the subscriber', () => missing().length === 0, 60_000)
  t.same(missing(), [], `all ${total} values delivered; ${received.length - total} duplicates (at least once)`)
  second.child.kill('SIGTERM')
  t.equal(await second.exited, 0)
})

/** One ingest.mqtt entry (a YAML flow mapping) feeding a pipeline and a FakeSink in this process. */
function rig (t: Test, entry: string, ctxOver: Partial<TransportContext> = {}): {
  sink: FakeSink
  records: ReturnType<typeof captureLogger>['records']
  counters: () => TransportCounters | undefined
  source: (clientId: string, env?: Record<string, string>) => MqttSource
} {
  const config = parseConfigText(`ingest:\n  mqtt:\n    - ${entry}\n`, 'c.yaml')
  const { logger, records } = captureLogger()
  const sink = new FakeSink()
  const pipeline = new IngestPipeline(sink, ingestOptions(config.ingest), logger)
  const ctx = { ...transportContext(config.ingest, { pipeline, logger }), ...ctxOver }
  const source = (clientId: string, env: Record<string, string> = {}): MqttSource => {
    const s = new MqttSource(config.ingest.mqtt[0] as MqttSourceConfig, ctx, { clientId, env })
    t.teardown(async () => { await s.stop() })
    return s
  }
  return { sink, records, counters: () => pipeline.counters().transports.mqtt, source }
}

const logged = (records: () => Array<Record<string, unknown>>, text: string): boolean => records().some(r => typeof r.msg === 'string' && r.msg.includes(text))

t.test('an unreachable local broker: start() does not wait, failures are counted and logged once, and it connects when the broker comes', async t => {
  const port = await freePort()
  const { records, counters, source } = rig(t, `{ url: "mqtt://127.0.0.1:${port}", topics: [{ filter: "tele/{device}/SENSOR", stream: energy, path: ENERGY }] }`)
  t.match(await source('unreachable').start(), { address: `mqtt://127.0.0.1:${port} (tele/{device}/SENSOR)` })
  await waitFor('two failed attempts', () => (counters()?.failures.connect ?? 0) >= 2, 10_000)
  t.equal(records().filter(r => typeof r.msg === 'string' && r.msg.includes('ECONNREFUSED')).length, 1, 'logged once, not once per attempt')
  await localBroker(t, { port })
  await waitFor('connected', () => counters()?.connections === 1, 40_000)
  t.match(records().find(r => typeof r.msg === 'string' && r.msg.includes('again after')), { level: 30, broker: `mqtt://127.0.0.1:${port}` })
})

t.test('a broker that refuses the credentials: counted as refused, with the reason in the log', async t => {
  const dir = t.testdir()
  const passwords = join(dir, 'passwords')
  writeFileSync(passwords, '')
  execFileSync('mosquitto_passwd', ['-b', passwords, 'edgefwd', 'right'], { timeout: 10_000 })
  const local = await localBroker(t, { listenerConfig: [`password_file ${passwords}`, 'allow_anonymous false'] })
  const { records, counters, source } = rig(t, `{ url: "${local.url}", username: edgefwd, passwordEnv: LOCAL_MQTT_PASSWORD, topics: [{ filter: "a/{device}", stream: s }] }`)
  await t.rejects(source('refused').start(), { code: 'EDGEFWD_ERR_INGEST_SOURCE', message: /passwordEnv names LOCAL_MQTT_PASSWORD, which is not set/ })
  await source('refused', { LOCAL_MQTT_PASSWORD: 'wrong' }).start()
  await waitFor('the refusal counted', () => counters()?.failures.refused === 1)
  t.match(records().find(r => r.reason === 'refused'), { level: 50, msg: /refused the connection: not authorized|bad user name or password/ })
  t.ok(readFileSync(local.logFile, 'utf8').length > 0)
})

t.test('mqtts with a client certificate: messages flow; a broker certificate from another CA is refused, counted and logged', async t => {
  const dir = t.testdir()
  mkdirSync(join(dir, 'broker'))
  const broker = await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
  t.teardown(broker.stop)
  const gateway = makeClient(ca, { commonName: 'gw-local' })
  const files = writeSet(join(dir, 'tls'), { ca: ca.certPem, cert: gateway.certPem, key: gateway.keyPem })
  const other = writeSet(join(dir, 'other'), { ca: makeCa().certPem, cert: gateway.certPem, key: gateway.keyPem })
  const entry = (f: typeof files): string => `{ url: "${broker.url}", tls: { ca: ${f.ca}, cert: ${f.cert}, key: ${f.key} }, topics: [{ filter: "tele/{device}/SENSOR", stream: energy, path: ENERGY.Power }] }`
  const good = rig(t, entry(files))
  await good.source('gw-local').start()
  await waitFor('subscribed over TLS', () => good.counters()?.connections === 1)
  const device = await mqtt.connectAsync(broker.url, { ...clientTlsOptions({ ca: ca.certPem, cert: subscriberCert.certPem, key: subscriberCert.keyPem }), clientId: 'subscriber', protocolVersion: 5, reconnectPeriod: 0 })
  t.teardown(async () => { await device.endAsync(true) })
  await device.publishAsync('tele/plug/SENSOR', JSON.stringify({ ENERGY: { Power: 12 } }), { qos: 1 })
  await waitFor('the reading', () => good.sink.events.length === 1)
  t.same(good.sink.events[0]?.value, { kind: 'number', number: 12 })
  const bad = rig(t, entry(other))
  await bad.source('gw-untrusting').start()
  await waitFor('the failure counted', () => bad.counters()?.failures.connect === 1)
  t.match(bad.records().find(r => r.reason === 'lost'), { level: 50, detail: /certificate/ }, 'the TLS error says why')
  t.equal(bad.counters()?.connections ?? 0, 0)
})

t.test('a dead link (the broker silent, the socket open): found by keepalive, counted, and the source connects again', async t => {
  const local = await localBroker(t)
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: local.port } })
  t.teardown(async () => { await proxy.close() })
  const { records, counters, source } = rig(t, `{ url: "${proxy.url('mqtt')}", keepalive: 1s, topics: [{ filter: "zigbee2mqtt/{device}", stream: z }] }`)
  await source('dead-link').start()
  await waitFor('subscribed', () => counters()?.connections === 1)
  proxy.setMode('blackhole')
  await waitFor('the dead link noticed', () => counters()?.failures.connect === 1, 10_000)
  t.ok(logged(records, 'nothing from the broker for'), 'logged with the keepalive as the reason')
  proxy.setMode('pass')
  await waitFor('connected again', () => counters()?.connections === 2, 40_000)
})

t.test('a store that cannot write durably: nothing is acknowledged, the source waits for the disk, then the broker sends it again', async t => {
  const local = await localBroker(t)
  const { sink, records, counters, source } = rig(t, `{ url: "${local.url}", topics: [{ filter: "zigbee2mqtt/{device}", stream: z }] }`)
  await source('not-durable').start()
  await waitFor('subscribed', () => counters()?.connections === 1)
  const devices = await mqtt.connectAsync(local.url, { protocolVersion: 5, clientId: 'devices' })
  t.teardown(async () => { await devices.endAsync(true) })
  // The disk fills up: the store takes events into its in-memory fallback only.
  sink.durable = false
  await devices.publishAsync('zigbee2mqtt/sensor', JSON.stringify({ t: 21 }), { qos: 1 })
  await waitFor('the event held in memory only', () => sink.events.length === 1)
  t.equal(counters()?.acks, 0, 'not acknowledged to the broker')
  t.match(records().find(r => r.reason === 'unsettled'), { level: 40, msg: /did not take the events durably/ })
  await waitFor('the source waiting for the disk', () => logged(records, 'not reading the local broker'))
  await new Promise(resolve => setTimeout(resolve, 2500))
  t.equal(counters()?.connections, 1, 'no reconnection while the store is in memory: the broker keeps the message')
  t.equal(sink.events.length, 1, 'and the memory fallback gets no second copy')
  sink.durable = true
  await waitFor('the broker sent it again and it was stored durably', () => (counters()?.acks ?? 0) === 1, 10_000)
  t.same(sink.events.map(e => e.value), [{ kind: 'numbers', numbers: { t: 21 } }, { kind: 'numbers', numbers: { t: 21 } }], 'at least once: the held copy and the resent one')
  t.ok(logged(records, 'writes to disk again'))
})

t.test('a message is acknowledged only once its append is durable: one whose append has not finished comes again after a restart', async t => {
  const local = await localBroker(t)
  const { sink, counters, source } = rig(t, `{ url: "${local.url}", topics: [{ filter: "zigbee2mqtt/{device}", stream: z }] }`, { stopTimeoutMs: 200 })
  const first = source('restarted')
  await first.start()
  await waitFor('subscribed', () => counters()?.connections === 1)
  const devices = await mqtt.connectAsync(local.url, { protocolVersion: 5, clientId: 'devices' })
  t.teardown(async () => { await devices.endAsync(true) })
  await devices.publishAsync('zigbee2mqtt/sensor', JSON.stringify({ t: 1 }), { qos: 1 })
  await waitFor('the first message stored', () => sink.events.length === 1)
  await new Promise(resolve => setTimeout(resolve, 100))
  // The disk stalls: the next append does not finish before the process goes away.
  sink.block()
  await devices.publishAsync('zigbee2mqtt/sensor', JSON.stringify({ t: 2 }), { qos: 1 })
  await waitFor('its append under way', () => sink.calls.length === 2)
  await first.stop()
  t.equal(counters()?.acks, 1, 'the second message was not acknowledged')
  sink.release()
  await source('restarted').start()
  await waitFor('the broker sent it again', () => sink.events.length === 3, 10_000)
  t.same(sink.events.map(e => e.value), [1, 2, 2].map(n => ({ kind: 'numbers', numbers: { t: n } })), 'the first once; the second twice (the stalled copy and the resent one)')
})

t.test('MQTT 3.1.1: the session persists (clean session off), so what is published while edgefwd is away arrives after it returns', async t => {
  const local = await localBroker(t)
  const { sink, counters, source } = rig(t, `{ url: "${local.url}", mqttVersion: "3.1.1", topics: [{ filter: "tele/{device}/SENSOR", stream: energy, path: ENERGY.Power }] }`)
  const devices = await mqtt.connectAsync(local.url, { protocolVersion: 4, clientId: 'tasmota' })
  t.teardown(async () => { await devices.endAsync(true) })
  const first = source('v311')
  await first.start()
  await waitFor('subscribed', () => counters()?.connections === 1)
  await devices.publishAsync('tele/plug/SENSOR', JSON.stringify({ ENERGY: { Power: 40 } }), { qos: 1 })
  await waitFor('the first reading', () => sink.events.length === 1)
  await first.stop()
  await devices.publishAsync('tele/plug/SENSOR', JSON.stringify({ ENERGY: { Power: 41 } }), { qos: 1 })
  await source('v311').start()
  await waitFor('the reading published while away', () => sink.events.length === 2)
  t.same(sink.events.map(e => [e.deviceId, e.stream, e.value]), [['plug', 'energy', { kind: 'number', number: 40 }], ['plug', 'energy', { kind: 'number', number: 41 }]])
  t.match(local.connections().filter(c => c.clientId === 'v311'), [{ protocol: 'p2' }, { protocol: 'p2' }], 'both connections were MQTT 3.1.1 (Mosquitto logs it as p2)')
})
