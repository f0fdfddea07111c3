/**
 * `edgefwd run` (the built executable) end to end against a real Mosquitto over mutual TLS: a C
 * device (firmware-bridge's posix-send) sends over TCP, gets acks, and every event reaches a
 * verifying subscriber; SIGTERM stops cleanly with the store empty. Then a SIGKILL in the middle of
 * draining a backlog, and a restart: no event acknowledged to a device is lost.
 */
import { execFile, execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import mqtt from 'mqtt'
import { main } from '../../src/cli/program.js'
import { decodeHeartbeat, type HeartbeatData } from '../../src/proto/codec.js'
import { issueCertificate } from '../../src/pki/generate.js'
import { clientTlsOptions } from '../../src/pki/tls-options.js'
import { decodeEnvelopeMessage } from '../../src/sink/decode.js'
import { SequenceVerifier } from '../../src/sink/verify.js'
import { assertBuilt } from '../helpers/built.js'
import { startMosquitto } from '../helpers/mosquitto.js'
import { startChaosProxy } from '../../simulate/chaos-proxy.js'
import { makeCa, makeClient, writeSet } from '../helpers/test-pki.js'
import { waitFor } from '../helpers/wait.js'
import { startRun, type RunningForwarder } from './helpers/run-child.js'

const run = promisify(execFile)
const bridge = fileURLToPath(new URL('../../firmware-bridge/', import.meta.url))
const ca = makeCa()
const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
const sinkCert = makeClient(ca, { commonName: 'sink' })

type Running = RunningForwarder
const startForwarder = startRun

async function subscriber (url: string): Promise<{ verifier: SequenceVerifier, close: () => Promise<void> }> {
  const client = await mqtt.connectAsync(url, {
    ...clientTlsOptions({ ca: ca.certPem, cert: sinkCert.certPem, key: sinkCert.keyPem }), clientId: 'subscriber', protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000
  }, false)
  const verifier = new SequenceVerifier({ expectedFirstSeq: 1 })
  client.on('message', (_topic, payload) => { verifier.addEnvelope(decodeEnvelopeMessage(payload)) })
  await client.subscribeAsync('edgefwd/gw-e2e/events', { qos: 1 })
  return { verifier, close: async () => { await client.endAsync(true) } }
}

function writeConfig (dir: string, url: string, extra = '', uplinkExtra = ''): string {
  const files = writeSet(join(dir, 'tls'), { ca: ca.certPem, ...(() => { const c = makeClient(ca, { commonName: 'gw-e2e' }); return { cert: c.certPem, key: c.keyPem } })() })
  const path = join(dir, 'edgefwd.yaml')
  writeFileSync(path, [
    'gateway: { id: gw-e2e }',
    `store: { path: ${join(dir, 'store')} }`,
    'log: { level: info }',
    'observe: { metrics: { listen: "127.0.0.1:0" } }',
    `tls: { ca: ${files.ca}, cert: ${files.cert}, key: ${files.key} }`,
    `uplink: { url: "${url}", batch: { maxEvents: 100 }, ${uplinkExtra === '' ? 'stopTimeout: 3s' : uplinkExtra} }`,
    'ingest:',
    '  rateLimit: { eventsPerSecond: 0, bytesPerSecond: 0 }',
    '  tcp:',
    '    - { address: 127.0.0.1, port: 0, format: frames }',
    extra
  ].join('\n'))
  return path
}

function tcpPort (r: Running): string {
  const running = r.lines.find(l => typeof l.msg === 'string' && l.msg.includes('running'))
  const listening = (running?.listening as string[] | undefined)?.find(a => a.startsWith('tcp '))
  if (listening === undefined) throw new Error(`no tcp listener in ${JSON.stringify(running)}`)
  return listening.slice(listening.lastIndexOf(':') + 1)
}

t.test('a C device → edgefwd run → Mosquitto over mTLS → edgefwd sink --verify; heartbeats; SIGTERM stops cleanly', async t => {
  assertBuilt()
  execFileSync('make', ['-s', '-C', bridge, 'examples'], { stdio: 'pipe', timeout: 120_000 })
  const dir = t.testdir()
  mkdirSync(join(dir, 'broker'))
  const broker = await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
  t.teardown(async () => { await broker.stop() })
  // The receiving side: the sink command, with its own certificate, verifying per-device sequences.
  const sinkFiles = writeSet(join(dir, 'sink-tls'), { ca: ca.certPem, cert: sinkCert.certPem, key: sinkCert.keyPem })
  const sinkConfig = join(dir, 'sink.yaml')
  writeFileSync(sinkConfig, `tls: { ca: ${sinkFiles.ca}, cert: ${sinkFiles.cert}, key: ${sinkFiles.key} }\nsink: { url: "${broker.url}", clientId: e2e-sink }\n`)
  let sinkOut = ''
  let sinkErr = ''
  const sinkDone = main(['sink', sinkConfig, '--verify', '--until-idle', '3s'], {}, { stdout: { write: (x: string) => { sinkOut += x } }, stderr: { write: (x: string) => { sinkErr += x } } })
  await waitFor('the sink to subscribe', () => sinkErr.includes('subscribed to'))
  // A plain subscriber for the heartbeat.
  const health = await mqtt.connectAsync(broker.url, {
    ...clientTlsOptions({ ca: ca.certPem, cert: sinkCert.certPem, key: sinkCert.keyPem }), clientId: 'health', protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000
  }, false)
  t.teardown(async () => { await health.endAsync(true) })
  const beats: HeartbeatData[] = []
  health.on('message', (_topic, payload) => { beats.push(decodeHeartbeat(payload)) })
  await health.subscribeAsync('edgefwd/gw-e2e/health', { qos: 0 })

  const fwd = startForwarder(writeConfig(dir, broker.url, '', 'heartbeatInterval: 1s'))
  t.teardown(() => { if (fwd.child.exitCode === null) fwd.child.kill('SIGKILL') })
  await waitFor(`the running line (stderr: ${fwd.stderr()})`, () => fwd.lines.some(l => typeof l.msg === 'string' && l.msg.includes('running')))
  const port = tcpPort(fwd)
  const sent = await run(`${bridge}build/posix-send`, ['-d', 'c-device', '-n', '300', '-r', '0', '-p', '2', '-w', '5000', 'tcp', '127.0.0.1', port], { timeout: 30_000 })
  t.match(sent.stdout, /highest acked seq 300/, 'the device got acks: its events are on the gateway\'s disk')
  await waitFor('a heartbeat after delivery', () => beats.some(b => b.eventsDelivered === 300))
  t.match(beats.find(b => b.eventsDelivered === 300), { gatewayId: 'gw-e2e', eventsReceived: 300, bufferedEvents: 0, linkState: 'online', diskDegraded: false })
  t.ok((beats[0]?.certDaysLeft ?? 0) > 300, 'the heartbeat carries the certificate\'s days left')
  t.equal(await sinkDone, 0, `edgefwd sink --verify: exit 0 (${sinkErr})`)
  t.match(sinkErr, /delivered 300, duplicates 0, explained missing 0, unexplained missing 0/)
  t.equal(sinkOut.trim().split('\n').length, 300, 'one JSON line per event')
  t.match(JSON.parse(sinkOut.split('\n')[0] ?? '{}'), { gateway: 'gw-e2e', deviceId: 'c-device', priority: 'high' })
  t.ok(fwd.lines.some(l => l.to === 'online'), 'the uplink logged going online')
  fwd.child.kill('SIGTERM')
  t.equal(await fwd.exited, 0, `exit 0 on SIGTERM ${fwd.stderr()}`)
  t.ok(fwd.lines.some(l => l.msg === 'edgefwd stopped'))
})

t.test('ingest.stdin: JSON lines piped into `edgefwd run` reach the subscriber', async t => {
  assertBuilt()
  const dir = t.testdir()
  mkdirSync(join(dir, 'broker'))
  const broker = await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
  t.teardown(async () => { await broker.stop() })
  const sink = await subscriber(broker.url)
  t.teardown(sink.close)
  const fwd = startForwarder(writeConfig(dir, broker.url, '  stdin: true'), 'pipe')
  t.teardown(() => { if (fwd.child.exitCode === null) fwd.child.kill('SIGKILL') })
  await waitFor(`the running line (stderr: ${fwd.stderr()})`, () => fwd.lines.some(l => typeof l.msg === 'string' && l.msg.includes('running')) || fwd.child.exitCode !== null)
  const running = fwd.lines.find(l => typeof l.msg === 'string' && l.msg.includes('running'))
  t.ok((running?.listening as string[] | undefined)?.includes('stdin stdin'), `stdin among the listeners (exit ${String(fwd.child.exitCode)}, stderr: ${fwd.stderr()})`)
  for (let seq = 1; seq <= 50; seq++) fwd.child.stdin?.write(`${JSON.stringify({ id: 'script-1', seq, v: { t: seq / 2 } })}\n`)
  await waitFor('the 50 lines at the subscriber', () => sink.verifier.summary().delivered >= 50)
  t.match(sink.verifier.summary(), { delivered: 50, duplicates: 0, unexplainedMissing: 0, perDevice: [{ deviceId: 'script-1' }] })
  fwd.child.stdin?.end()
  await waitFor('the end of stdin logged', () => fwd.lines.some(l => l.msg === 'stdin ended'))
  fwd.child.kill('SIGTERM')
  t.equal(await fwd.exited, 0, 'SIGTERM: clean exit')
})

t.test('a second signal stops at once: batches awaiting PUBACK stay in the store and arrive after the next start', async t => {
  assertBuilt()
  execFileSync('make', ['-s', '-C', bridge, 'examples'], { stdio: 'pipe', timeout: 120_000 })
  const dir = t.testdir()
  mkdirSync(join(dir, 'broker'))
  const broker = await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
  t.teardown(async () => { await broker.stop() })
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: broker.port } })
  t.teardown(async () => { await proxy.close() })
  const sink = await subscriber(broker.url)
  t.teardown(sink.close)
  const config = writeConfig(dir, proxy.url('mqtts'), '', 'stopTimeout: 60s, pubackTimeout: 60s')
  const first = startForwarder(config)
  t.teardown(() => { if (first.child.exitCode === null) first.child.kill('SIGKILL') })
  await waitFor('the uplink online', () => first.lines.some(l => l.to === 'online'))
  // The link goes dead (no byte either way, no socket closed) while a device sends.
  proxy.setMode('blackhole')
  const sent = await run(`${bridge}build/posix-send`, ['-d', 'dev-2', '-n', '400', '-r', '0', '-p', '1', '-w', '5000', 'tcp', '127.0.0.1', tcpPort(first)], { timeout: 30_000 })
  t.match(sent.stdout, /highest acked seq 400/)
  first.child.kill('SIGTERM')
  await waitFor('the stop to begin', () => first.lines.some(l => l.msg === 'stop requested'))
  first.child.kill('SIGINT')
  const started = Date.now()
  t.equal(await first.exited, 0, 'exit 0')
  t.ok(Date.now() - started < 20_000, `at once, not after the 60 s stopTimeout (${Date.now() - started} ms)`)
  t.ok(first.lines.some(l => l.msg === 'second stop signal: stopping now'))
  // The next start delivers everything, including the batches that were awaiting PUBACK.
  proxy.setMode('pass')
  const second = startForwarder(config)
  t.teardown(() => { if (second.child.exitCode === null) second.child.kill('SIGKILL') })
  await waitFor('all 400 events at the subscriber', () => sink.verifier.summary().delivered >= 400)
  t.match(sink.verifier.summary(), { delivered: 400, unexplainedMissing: 0 })
  // Batches the broker had taken before the link died can reach the subscriber before this
  // process has even set up its signal handlers: SIGTERM then would just kill it.
  await waitFor('the second forwarder running', () => second.lines.some(l => typeof l.msg === 'string' && l.msg.includes(' running: ')))
  second.child.kill('SIGTERM')
  t.equal(await second.exited, 0)
})

t.test('SIGKILL while draining a backlog, then a restart: no acknowledged event is lost', async t => {
  assertBuilt()
  const dir = t.testdir()
  mkdirSync(join(dir, 'broker'))
  const broker = await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
  t.teardown(async () => { await broker.stop() })
  // Devices fill the store while the broker is unreachable (a port nothing listens on).
  const config = writeConfig(dir, 'mqtts://127.0.0.1:1')
  const first = startForwarder(config)
  t.teardown(() => { if (first.child.exitCode === null) first.child.kill('SIGKILL') })
  await waitFor('the running line', () => first.lines.some(l => typeof l.msg === 'string' && l.msg.includes('running')))
  const sent = await run(`${bridge}build/posix-send`, ['-d', 'kill-dev', '-n', '3000', '-r', '0', '-p', '1', '-w', '5000', 'tcp', '127.0.0.1', tcpPort(first)], { timeout: 60_000 })
  t.match(sent.stdout, /highest acked seq 3000/)
  first.child.kill('SIGTERM')
  t.equal(await first.exited, 0)

  // Now the broker is there: start, let it drain part of the backlog, and kill it mid-way.
  const sink = await subscriber(broker.url)
  t.teardown(sink.close)
  writeFileSync(config, (await import('node:fs')).readFileSync(config, 'utf8').replace('mqtts://127.0.0.1:1', broker.url))
  const second = startForwarder(config)
  t.teardown(() => { if (second.child.exitCode === null) second.child.kill('SIGKILL') })
  await waitFor('part of the backlog delivered', () => sink.verifier.summary().delivered >= 500)
  second.child.kill('SIGKILL')
  await second.exited
  const third = startForwarder(config)
  t.teardown(() => { if (third.child.exitCode === null) third.child.kill('SIGKILL') })
  await waitFor('the whole backlog delivered', () => sink.verifier.summary().delivered >= 3000)
  const summary = sink.verifier.summary()
  t.match(summary, { delivered: 3000, unexplainedMissing: 0 }, 'all 3000 acknowledged events arrived')
  t.comment(`duplicates after the SIGKILL: ${summary.duplicates}`)
  third.child.kill('SIGTERM')
  t.equal(await third.exited, 0)
})
