/**
 * Signed remote configuration against a real Mosquitto over mutual TLS: the gateway (the same
 * Supervisor `edgefwd run` uses) takes an update from its retained config topic, applies it live
 * or by an in-process restart, proves delivery within the probation or rolls back, and reports
 * every outcome on the ack topic. The crash case runs the built `edgefwd run` and SIGKILLs it.
 */
import { spawn } from 'node:child_process'
import { createPrivateKey, type KeyObject } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import mqtt, { type MqttClient } from 'mqtt'
import { configBuilder } from '../../src/config/index.js'
import { encodeMessage, generateKeyPair, signDocument } from '../../src/control/signing.js'
import { Supervisor } from '../../src/control/supervisor.js'
import { ForwarderMetrics } from '../../src/observe/forwarder-metrics.js'
import { MetricsRegistry } from '../../src/observe/metrics.js'
import { issueCertificate } from '../../src/pki/generate.js'
import { clientTlsOptions } from '../../src/pki/tls-options.js'
import { assertBuilt, distRoot } from '../helpers/built.js'
import { silentLogger } from '../helpers/logger.js'
import { freePort, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js'
import { makeCa, makeClient, writeSet } from '../helpers/test-pki.js'
import { encode, event } from './helpers/device.js'
import { waitFor } from '../helpers/wait.js'

const ca = makeCa()
const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
const operatorCert = makeClient(ca, { commonName: 'operator' })
const operatorKeys = generateKeyPair()
const operatorKey = createPrivateKey(operatorKeys.privatePem)
const intruderKey = createPrivateKey(generateKeyPair().privatePem)

interface Ack { gateway: string, version: number | null, status: string, reason?: string, detail?: string, keys?: string[] }

/** The operator's side: publishes signed updates (retained) and reads the acks. */
async function operator (t: Test, broker: Mosquitto, gw: string): Promise<{ acks: Ack[], heartbeats: unknown[], publish: (doc: unknown, key?: KeyObject, tamper?: boolean, topic?: string) => Promise<void> }> {
  const client: MqttClient = await mqtt.connectAsync(broker.url, {
    ...clientTlsOptions({ ca: ca.certPem, cert: operatorCert.certPem, key: operatorCert.keyPem }), clientId: `operator-${gw}`, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000
  }, false)
  t.teardown(async () => { await client.endAsync(true) })
  const acks: Ack[] = []
  const heartbeats: unknown[] = []
  client.on('message', (topic, payload) => { (topic.endsWith('/health') ? heartbeats : acks).push(JSON.parse(payload.toString())) })
  await client.subscribeAsync([`edgefwd/${gw}/config/ack`, `edgefwd/${gw}/health`], { qos: 1 })
  return {
    acks,
    heartbeats,
    publish: async (doc, key = operatorKey, tamper = false, topic = `edgefwd/${gw}/config`) => {
      const message = signDocument(Buffer.from(JSON.stringify(doc)), key)
      // A document changed after signing: a version and content the operator never signed.
      if (tamper) message.document = Buffer.from(JSON.stringify({ ...(doc as object), version: 99 })).toString('base64')
      await client.publishAsync(topic, encodeMessage(message), { qos: 1, retain: true })
    }
  }
}

function writeConfig (dir: string, gw: string, url: string, extra: string[] = []): string {
  const c = makeClient(ca, { commonName: gw })
  const tls = writeSet(join(dir, 'tls'), { ca: ca.certPem, cert: c.certPem, key: c.keyPem })
  writeFileSync(join(dir, 'operator.pub'), operatorKeys.publicPem)
  const path = join(dir, 'gw.yaml')
  writeFileSync(path, [
    `gateway: { id: ${gw} }`,
    `store: { path: ${join(dir, 'store')} }`,
    'log: { level: info }',
    `tls: { ca: ${tls.ca}, cert: ${tls.cert}, key: ${tls.key} }`,
    `uplink: { url: "${url}", stopTimeout: 1s, backoff: { initial: 100ms, max: 300ms, refusedMin: 100ms }, connectTimeout: 2s }`,
    'ingest:',
    '  rateLimit: { eventsPerSecond: 10000, burst: 1s }',
    '  tcp: [{ address: 127.0.0.1, port: 0, format: frames }]',
    `control: { publicKeys: [${join(dir, 'operator.pub')}], probation: 4s }`,
    'observe: { metrics: { listen: "127.0.0.1:0" } }',
    ...extra
  ].join('\n'))
  return path
}

async function startGateway (t: Test, config: string): Promise<{ supervisor: Supervisor, registry: MetricsRegistry }> {
  const logger = silentLogger()
  const registry = new MetricsRegistry()
  const metrics = new ForwarderMetrics(registry, 'test')
  const build = await configBuilder({ file: config })
  const supervisor = await Supervisor.start({ config: build(), build, logger, env: {}, version: 'test', metrics, onFatal: (err) => { throw err } })
  t.teardown(async () => { await supervisor.stopNow(); metrics.close() })
  await waitFor('the gateway online', () => supervisor.current?.stats().uplink.state === 'online', 10_000)
  return { supervisor, registry }
}

/** Sends `count` events from one device over TCP as fast as it can; resolves once the gateway has read them all. */
async function burst (supervisor: Supervisor, deviceId: string, from: number, count: number): Promise<void> {
  const read = (): number => supervisor.current?.stats().ingest.frames ?? 0
  const before = read()
  const address = supervisor.current?.listening.find(l => l.startsWith('tcp ')) ?? ''
  const port = Number(address.slice(address.lastIndexOf(':') + 1))
  const socket = connect(port, '127.0.0.1')
  socket.on('data', () => {})
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const frames = Array.from({ length: count }, (_, i) => encode('stream', event(deviceId, from + i)))
  await new Promise<void>(resolve => socket.write(Buffer.concat(frames), () => { resolve() }))
  await waitFor(`the gateway to read all ${count} frames`, () => read() >= before + count, 10_000)
  socket.destroy()
}

const rateLimited = (supervisor: Supervisor): number => supervisor.current?.stats().ingest.rejected.rate_limited ?? -1

t.test('a signed update is applied live; bad signature, invalid, older version are each rejected with their reason', async t => {
  const dir = t.testdir()
  mkdirSync(join(dir, 'broker'))
  const broker = await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
  t.teardown(async () => { await broker.stop() })
  const op = await operator(t, broker, 'gw-live')
  const config = writeConfig(dir, 'gw-live', broker.url)
  writeFileSync(config, readFileSync(config, 'utf8')
    .replace('stopTimeout: 1s,', 'stopTimeout: 1s, heartbeatInterval: 1s, heartbeatFormat: json,')
    .replace('probation: 4s', 'probation: 4s, fleetTopic: test/fleet/config'))
  const { supervisor, registry } = await startGateway(t, config)
  const forwarder = supervisor.current

  await burst(supervisor, 'dev-1', 1, 40)
  await waitFor('40 events accepted', () => (supervisor.current?.stats().ingest.events ?? 0) === 40, 5000)
  t.equal(rateLimited(supervisor), 0, 'before the update nothing is rate limited')

  await op.publish({ version: 1, comment: 'throttle devices', config: { ingest: { rateLimit: { eventsPerSecond: 1, burst: '1s' } }, log: { level: 'warn' } } })
  await waitFor('version 1 applied', () => op.acks.some(a => a.version === 1 && a.status === 'applied'), 15_000)
  t.match(op.acks.find(a => a.version === 1 && a.status === 'applied'), { gateway: 'gw-live', keys: ['ingest.rateLimit.eventsPerSecond', 'log.level'] })
  t.ok(op.acks.some(a => a.version === 1 && a.status === 'probation'), 'the probation ack came first (the publish that proved delivery)')
  t.equal(supervisor.current, forwarder, 'applied live: the same forwarder, no restart')
  t.equal(supervisor.config.ingest.rateLimit.eventsPerSecond, 1)
  await burst(supervisor, 'dev-1', 41, 40)
  await waitFor('rate-limited frames', () => rateLimited(supervisor) > 0, 5000)
  t.ok(rateLimited(supervisor) >= 35, `the new rate limit takes effect at once (${rateLimited(supervisor)} of 40 refused)`)

  await op.publish({ version: 9, config: { uplink: { window: 16 } } }, intruderKey)
  await waitFor('bad_signature (unknown key)', () => op.acks.some(a => a.reason === 'bad_signature'), 10_000)
  await op.publish({ version: 2, config: {} }, operatorKey, true)
  await waitFor('bad_signature (tampered document)', () => op.acks.filter(a => a.reason === 'bad_signature').length === 2, 10_000)
  await op.publish({ version: 5, config: { uplink: { window: 5000 } } })
  await waitFor('version 5 answered', () => op.acks.some(a => a.version === 5), 10_000)
  t.match(op.acks.find(a => a.version === 5), { status: 'rejected', reason: 'invalid', detail: /uplink\.window: must be at most 1000/ })
  await op.publish({ version: 3, config: { uplink: { batch: { linger: '10ms' } } } })
  await waitFor('version 3 answered', () => op.acks.some(a => a.version === 3), 10_000)
  t.match(op.acks.find(a => a.version === 3), { status: 'rejected', reason: 'old_version', detail: /version 3 is not newer than version 5/ })
  await op.publish({ version: 6, config: { uplink: { url: 'mqtts://127.0.0.1:1' } } })
  await waitFor('version 6 answered', () => op.acks.some(a => a.version === 6), 10_000)
  t.match(op.acks.find(a => a.version === 6), { status: 'rejected', reason: 'restart_required', keys: ['uplink.url'] })

  t.equal(supervisor.config.uplink.window, 8, 'nothing of the rejected updates was applied')
  t.equal(supervisor.config.ingest.rateLimit.eventsPerSecond, 1, 'version 1 still in force')

  // The fleet-wide topic shares the version sequence; the whole overlay replaces version 1's.
  await op.publish({ version: 7, config: { uplink: { batch: { maxEvents: 50 } } } }, operatorKey, false, 'test/fleet/config')
  await waitFor('version 7 (fleet topic) applied', () => op.acks.some(a => a.version === 7 && a.status === 'applied'), 15_000)
  t.equal(supervisor.config.uplink.batch.maxEvents, 50)
  t.equal(supervisor.config.ingest.rateLimit.eventsPerSecond, 10_000, 'a key version 7 leaves out returns to its local value')
  const counts = Object.fromEntries(registry.series('edgefwd_config_updates_total').map(s => [s.labels.result, s.value]))
  t.same(counts, { applied: 2, bad_signature: 2, old_version: 1, invalid: 1, restart_required: 1, rolled_back: 0 })
  t.equal(registry.get('edgefwd_config_version'), 7)
  await waitFor('a heartbeat with version 7', () => op.heartbeats.some(h => (h as { configVersion?: number }).configVersion === 7), 5000)
  t.match(op.heartbeats.at(-1), { gatewayId: 'gw-live', linkState: 'online', configVersion: 7 }, 'uplink.heartbeatFormat: json')
})

t.test('updates that break the gateway are rolled back: one it cannot start with at once, one that cuts it off within its probation', async t => {
  const dir = t.testdir()
  mkdirSync(join(dir, 'broker'))
  const broker = await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
  t.teardown(async () => { await broker.stop() })
  const op = await operator(t, broker, 'gw-rollback')
  const { supervisor, registry } = await startGateway(t, writeConfig(dir, 'gw-rollback', broker.url))
  const before = supervisor.current

  // A forwarder that cannot even start with the update (its store path lies under a file).
  writeFileSync(join(dir, 'a-file'), '')
  await op.publish({ version: 1, restart: true, config: { store: { path: join(dir, 'a-file', 'store') } } })
  await waitFor('the rollback of version 1', () => op.acks.some(a => a.version === 1 && a.status === 'rolled_back'), 20_000)
  t.match(op.acks.find(a => a.version === 1 && a.status === 'rolled_back'), { reason: 'rolled_back', detail: /^the forwarder did not start with it: / })
  await waitFor('online again on the previous store', () => supervisor.current?.stats().uplink.state === 'online', 10_000)
  t.equal(supervisor.config.store.path, join(dir, 'store'))

  const wrongPort = await freePort()
  const sent = Date.now()
  await op.publish({ version: 2, restart: true, comment: 'move to the new broker (wrong port)', config: { uplink: { url: `mqtts://127.0.0.1:${wrongPort}` } } })
  await waitFor('the rollback ack', () => op.acks.some(a => a.version === 2 && a.status === 'rolled_back'), 20_000)
  const took = Date.now() - sent
  t.ok(took < 12_000, `rolled back and reported within the 4 s probation plus a reconnect (${took} ms)`)
  t.match(op.acks.find(a => a.version === 2 && a.status === 'rolled_back'), { reason: 'rolled_back', detail: /no publish was acknowledged by the broker within the probation of 4000 ms/ })
  t.notOk(op.acks.some(a => a.status === 'applied'))
  t.not(supervisor.current, before, 'the forwarder was restarted for the update, and again for the rollback')
  t.same(supervisor.config.uplink.url, [broker.url], 'back on the previous broker')
  await waitFor('online again', () => supervisor.current?.stats().uplink.state === 'online', 10_000)
  t.equal(registry.get('edgefwd_config_updates_total', { result: 'rolled_back' }), 2)
  t.equal(registry.get('edgefwd_config_version'), 0, 'still the local configuration')
  const state = JSON.parse(readFileSync(join(dir, 'control', 'state.json'), 'utf8')) as Record<string, unknown>
  t.match(state, { highestVersion: 2, lastFailed: { version: 2 } })
  t.notOk('pending' in state, 'nothing left on probation')
  t.notOk('current' in state, 'no good remote configuration yet')
})

t.test('a crash between apply and the end of probation comes back on the last good configuration', async t => {
  assertBuilt()
  const dir = t.testdir()
  mkdirSync(join(dir, 'broker'))
  const broker = await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
  t.teardown(async () => { await broker.stop() })
  const op = await operator(t, broker, 'gw-crash')
  const config = writeConfig(dir, 'gw-crash', broker.url)
  writeFileSync(config, readFileSync(config, 'utf8').replace('probation: 4s', 'probation: 2m'))
  const start = (): { lines: () => string, exited: Promise<number | null>, kill: () => void } => {
    const child = spawn(process.execPath, [join(distRoot, 'bin/edgefwd.js'), 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => { out += c.toString() })
    child.stderr.on('data', (c: Buffer) => { out += c.toString() })
    t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
    return { lines: () => out, exited: new Promise(resolve => child.once('exit', code => { resolve(code) })), kill: () => { child.kill('SIGKILL') } }
  }

  const first = start()
  await waitFor('the first process online', () => first.lines().includes('"to":"online"'), 15_000)
  await op.publish({ version: 1, config: { uplink: { batch: { linger: '20ms' } } } })
  await waitFor('version 1 applied (the last good)', () => op.acks.some(a => a.version === 1 && a.status === 'applied'), 15_000)
  await op.publish({ version: 2, restart: true, config: { uplink: { url: `mqtts://127.0.0.1:${await freePort()}` } } })
  await waitFor('version 2 being applied', () => first.lines().includes('applying remote configuration version 2'), 10_000)
  await waitFor('the forwarder restarted on version 2', () => (first.lines().match(/ running: /g) ?? []).length === 2, 10_000)
  first.kill()
  await first.exited
  const pending = JSON.parse(readFileSync(join(dir, 'control', 'state.json'), 'utf8')) as Record<string, unknown>
  t.match(pending, { current: { version: 1 }, pending: { version: 2, restart: true } }, 'killed with version 2 on probation')

  const second = start()
  await waitFor('the second process online, on the last good broker', () => second.lines().includes('"to":"online"'), 15_000)
  await waitFor('the rollback reported', () => op.acks.some(a => a.version === 2 && a.status === 'rolled_back'), 10_000)
  t.match(op.acks.find(a => a.version === 2 && a.status === 'rolled_back'), { detail: 'restarted during probation' })
  t.match(second.lines(), /running version 1/, 'version 1 (the last good) is in force')
  await new Promise(resolve => setTimeout(resolve, 1000)) // a span in which nothing may happen
  t.notMatch(second.lines(), /applying remote configuration/, 'the retained version 2 is not applied again')
  const state = JSON.parse(readFileSync(join(dir, 'control', 'state.json'), 'utf8')) as Record<string, unknown>
  t.match(state, { highestVersion: 2, current: { version: 1 }, lastFailed: { version: 2, reason: 'restarted during probation' } })
  t.notOk('pending' in state)
})
