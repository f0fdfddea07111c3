/**
 * The gateway's TLS material in use against a real Mosquitto and the embedded broker:
 * - hot reload while connected with events buffered: a new valid set is used from the next
 *   connection (the broker sees the new identity), an invalid set is rejected with its specific
 *   error and the previous one stays in use, and every buffered event arrives;
 * - `edgefwd certs check` (one-shot, with --url against both brokers) names each problem;
 * - `edgefwd certs check --watch` (the built executable) re-reads on SIGHUP and exits on SIGTERM.
 * Certificates are made at test time; no PEM file is committed.
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import mqtt, { MqttClient } from 'mqtt'
import { main } from '../../src/cli/program.js'
import { decodeBatch } from '../../src/proto/codec.js'
import { issueCertificate } from '../../src/pki/generate.js'
import { TlsMaterialSource } from '../../src/pki/reloader.js'
import { clientTlsOptions } from '../../src/pki/tls-options.js'
import { openLevelStore } from '../../src/store/index.js'
import { parseBrokerUrl, tlsStreamBuilder } from '../../src/uplink/connect.js'
import { startEmbeddedBroker } from '../../simulate/embedded-broker.js'
import { assertBuilt, distRoot } from '../helpers/built.js'
import { captureLogger, silentLogger } from '../helpers/logger.js'
import { startMosquitto } from '../helpers/mosquitto.js'
import { makeCa, makeClient, makeEcSet, makeRsaSet, writeSet, type TlsSet } from '../helpers/test-pki.js'
import { waitFor } from '../helpers/wait.js'

const DAY = 86_400_000
const ca = makeCa()
const otherCa = makeCa({ commonName: 'another CA' })
const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
const expiredSet = (): TlsSet => makeRsaSet({ ca, commonName: 'gw-expired', notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY) })

t.test('hot reload with events buffered: the next connection uses the new set, an invalid set is refused, nothing is lost', async t => {
  const dir = t.testdir()
  mkdirSync(join(dir, 'broker'))
  const broker = await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
  t.teardown(async () => { await broker.stop() })
  const tlsDir = join(dir, 'tls')
  const files = writeSet(tlsDir, makeRsaSet({ ca, commonName: 'gw-a' }))
  const { logger, records } = captureLogger('info')
  const source = await TlsMaterialSource.open({ ...files, watch: true, reloadDebounceMs: 300 }, { logger, env: {} })
  t.teardown(async () => { await source.close() })

  const store = await openLevelStore(join(dir, 'store'), { capacityBytes: 64 * 1024 * 1024, expiryIntervalMs: 0 }, silentLogger())
  t.teardown(async () => { await store.close() })
  await store.append(Array.from({ length: 300 }, (_, i) => ({ deviceId: 'd', deviceSeq: i + 1, gatewayTimeMs: Date.now(), priority: 1 as const, stream: 's', value: { kind: 'number' as const, number: i } })))

  const sinkCert = makeClient(ca, { commonName: 'sink' })
  const sink = await mqtt.connectAsync(broker.url, {
    ...clientTlsOptions({ ca: ca.certPem, cert: sinkCert.certPem, key: sinkCert.keyPem }), clientId: 'sink', protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000
  }, false)
  t.teardown(async () => { await sink.endAsync(true) })
  const received: number[] = []
  sink.on('message', (_topic, payload) => { for (const e of decodeBatch(payload)) received.push(e.deviceSeq) })
  await sink.subscribeAsync('edgefwd/gw/events', { qos: 1 })

  let connects = 0
  const gw = new MqttClient(tlsStreamBuilder(parseBrokerUrl(broker.url), () => source.current()), {
    clientId: 'gw', protocolVersion: 5, reconnectPeriod: 100, connectTimeout: 5000
  })
  gw.on('connect', () => { connects++ })
  t.teardown(async () => { await gw.endAsync(true) })
  const identities = (): Array<string | undefined> => broker.connections().filter(c => c.clientId === 'gw').map(c => c.username)
  const deliver = async (n: number): Promise<void> => {
    const lease = await store.lease(n, 1 << 20)
    if (lease === null) throw new Error('nothing buffered')
    await gw.publishAsync('edgefwd/gw/events', Buffer.from(lease.batch), { qos: 1 })
    await store.ack(lease.id)
  }
  const reconnect = async (): Promise<void> => {
    const before = connects;
    (gw.stream as TLSSocket).destroy()
    await waitFor('the reconnection', () => connects > before && gw.connected)
  }

  await waitFor('the first connection', () => gw.connected)
  await deliver(100)
  t.same(identities(), ['gw-a'])

  writeSet(tlsDir, makeRsaSet({ ca, commonName: 'gw-b' }), { atomic: true })
  await waitFor('the reload', () => source.stats().reloads === 1)
  t.match(source.current().info.subject, /CN=gw-b/)
  t.ok(gw.connected && connects === 1, 'a reload does not cut the connection in use')
  await reconnect()
  await deliver(100)
  t.same(identities(), ['gw-a', 'gw-b'], 'the next connection presents the new certificate')

  writeSet(tlsDir, expiredSet(), { atomic: true })
  await waitFor('the rejection', () => source.stats().failures === 1)
  t.equal(source.stats().lastError, 'EDGEFWD_ERR_TLS_CERT_EXPIRED')
  const rejected = records().find(r => r.msg?.startsWith('TLS material rejected') === true)
  t.match(rejected, { level: 50, code: 'EDGEFWD_ERR_TLS_CERT_EXPIRED', file: files.cert, configKey: 'tls.cert' })
  t.match(rejected?.msg, /has expired|expired/)
  await reconnect()
  await deliver(100)
  t.same(identities(), ['gw-a', 'gw-b', 'gw-b'], 'the invalid set was never used')

  await waitFor('every event at the subscriber', () => received.length >= 300)
  t.same([...new Set(received)].sort((a, b) => a - b), Array.from({ length: 300 }, (_, i) => i + 1), 'every buffered event arrived')
  t.equal(store.stats().events, 0)
})

/** Runs the CLI in-process. */
async function cli (argv: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await main(argv, {}, { stdout: { write: (s: string) => { stdout += s } }, stderr: { write: (s: string) => { stderr += s } } })
  return { code, stdout, stderr }
}

function config (dir: string, name: string, set: TlsSet, extra = ''): string {
  const files = writeSet(join(dir, name), set)
  const path = join(dir, `${name}.yaml`)
  writeFileSync(path, `gateway: { id: gw-check }\nlog: { level: info }\ntls:\n  ca: ${files.ca}\n  cert: ${files.cert}\n  key: ${files.key}\n${extra}`)
  return path
}

t.test('certs check: the configured material, and whether each broker accepts it', async t => {
  const dir = t.testdir()
  mkdirSync(join(dir, 'broker'))
  // The broker trusts our RSA CA and an EC P-256 CA made with the openssl command line.
  const ec = makeEcSet()
  const mosquitto = await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem + ec.ca, cert: server.certPem, key: server.keyPem })
  t.teardown(async () => { await mosquitto.stop() })
  const embedded = await startEmbeddedBroker({ tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem } })
  t.teardown(async () => { await embedded.close() })

  const good = config(dir, 'good', makeRsaSet({ ca, commonName: 'gw-check' }))
  const local = await cli(['certs', 'check', good])
  t.equal(local.code, 0, local.stderr)
  t.match(local.stdout, /subject: +CN=gw-check\n[^]*\(RSA 2048, matches\)\n[^]*\nok\n$/)

  const viaMosquitto = await cli(['certs', 'check', good, '--url', mosquitto.url])
  t.equal(viaMosquitto.code, 0, viaMosquitto.stderr)
  t.match(viaMosquitto.stdout, `broker:       ${mosquitto.url} accepted this certificate (MQTT 5)`)
  t.match(mosquitto.connections().map(c => [c.clientId, c.username]), [['gw-check', 'gw-check']])
  const viaEmbedded = await cli(['certs', 'check', good, '--url', embedded.url, '--mqtt', '3.1.1'])
  t.equal(viaEmbedded.code, 0, viaEmbedded.stderr)
  t.match(embedded.clients(), [{ clientId: 'gw-check', commonName: 'gw-check' }])

  const expired = await cli(['certs', 'check', config(dir, 'expired', expiredSet()), '--url', mosquitto.url])
  t.equal(expired.code, 1)
  t.match(expired.stderr, /^edgefwd: .*client\.pem \(tls\.cert\): .*expired/, 'refused before connecting, naming the file')

  // A cloud-style setup where the client's issuer is not in the bundle: only the broker can say no.
  const foreign = config(dir, 'foreign', { ...makeRsaSet({ ca: otherCa, commonName: 'gw-check' }), ca: ca.certPem }, '  checkClientChain: false\n')
  for (const url of [mosquitto.url, embedded.url]) {
    const refused = await cli(['certs', 'check', foreign, '--url', url, ...(url === embedded.url ? ['--mqtt', '3.1.1'] : [])])
    t.equal(refused.code, 1, `${url}: exit 1`)
    t.match(refused.stderr, /refused .*certificate/i, `${url}: the broker refused our certificate`)
  }

  // Refused locally before any connection, each with its own code.
  const refusedLocally = [
    ['notyet', makeRsaSet({ ca, commonName: 'gw-check', notBefore: new Date(Date.now() + DAY), notAfter: new Date(Date.now() + 30 * DAY) }), /is not valid before/],
    ['mismatch', { ...makeRsaSet({ ca, commonName: 'gw-check' }), key: makeRsaSet({ ca }).key }, /does not match|does not belong/],
    ['otherca', { ...makeRsaSet({ ca: otherCa, commonName: 'gw-check' }), ca: ca.certPem }, /not signed by|does not chain/],
  ] as const
  for (const [name, set, message] of refusedLocally) {
    const r = await cli(['certs', 'check', config(dir, name, set), '--url', mosquitto.url])
    t.equal(r.code, 1, `${name}: exit 1`)
    t.match(r.stderr, message, `${name}: ${r.stderr.split('\n')[0] ?? ''}`)
  }
  t.equal(mosquitto.connections().length, 1, 'none of them reached the broker')

  // Interop: an openssl-made EC P-256 CA and client work unchanged...
  const ecConfig = config(dir, 'ec', { ca: ca.certPem, cert: ec.cert, key: ec.key }, `  clientCa: ${writeSet(join(dir, 'ec-ca'), ec).ca}\n`)
  const viaEc = await cli(['certs', 'check', ecConfig, '--url', mosquitto.url])
  t.equal(viaEc.code, 0, viaEc.stderr)
  t.match(viaEc.stdout, /\(EC P-256, matches\)/)
  t.equal(mosquitto.connections().at(-1)?.username, 'gw-ec')
  // ...and a CSR made by edgefwd certs csr, signed by openssl x509 -req, works.
  const csrDir = join(dir, 'csr')
  mkdirSync(csrDir)
  const made = await cli(['certs', 'csr', '--client', 'gw-csr', '--key-out', join(csrDir, 'gw.key'), '--csr-out', join(csrDir, 'gw.csr')])
  t.equal(made.code, 0, made.stderr)
  writeFileSync(join(csrDir, 'ca.crt'), ca.certPem)
  writeFileSync(join(csrDir, 'ca.key'), ca.keyPem)
  writeFileSync(join(csrDir, 'client.ext'), 'basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = clientAuth\n')
  execFileSync('openssl', ['x509', '-req', '-in', 'gw.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '30', '-sha256',
    '-extfile', 'client.ext', '-out', 'gw.crt'], { cwd: csrDir, stdio: 'pipe' })
  const csrConfig = join(dir, 'csr.yaml')
  writeFileSync(csrConfig, `gateway: { id: gw-csr }\ntls:\n  ca: ${join(csrDir, 'ca.crt')}\n  cert: ${join(csrDir, 'gw.crt')}\n  key: ${join(csrDir, 'gw.key')}\n`)
  const viaCsr = await cli(['certs', 'check', csrConfig, '--url', mosquitto.url])
  t.equal(viaCsr.code, 0, viaCsr.stderr)
  t.equal(mosquitto.connections().at(-1)?.username, 'gw-csr')

  const rogue = config(dir, 'rogue', makeRsaSet({ ca: otherCa, commonName: 'gw-check' }))
  const untrusted = await cli(['certs', 'check', rogue, '--url', mosquitto.url])
  t.equal(untrusted.code, 1)
  t.match(untrusted.stderr, /not signed by|not trust|untrusted/i, 'a broker outside our CA is refused by us')
})

t.test('certs check --watch (the executable): SIGHUP re-reads, an invalid set is refused, SIGTERM ends it', async t => {
  assertBuilt()
  const dir = t.testdir()
  const cfg = config(dir, 'watched', makeRsaSet({ ca, commonName: 'gw-1' }), '  watch: false\n')
  const child = spawn(process.execPath, [join(distRoot, 'bin/edgefwd.js'), 'certs', 'check', cfg, '--watch'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const lines: Array<{ msg?: string, subject?: string, code?: string }> = []
  let buffered = ''
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString()
    const parts = buffered.split('\n')
    buffered = parts.pop() ?? ''
    for (const line of parts) lines.push(JSON.parse(line) as { msg?: string })
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const seen = (msg: string): number => lines.filter(l => l.msg?.startsWith(msg) === true).length

  await waitFor('the first load', () => seen('TLS material loaded') === 1)
  const next = makeRsaSet({ ca, commonName: 'gw-2' })
  writeSet(join(dir, 'watched'), next, { atomic: true })
  child.kill('SIGHUP')
  await waitFor(`the reload (stderr: ${stderr})`, () => seen('TLS material reloaded') === 1)
  t.match(lines.find(l => l.msg === 'TLS material reloaded'), { subject: 'CN=gw-2' })

  // The certificate of one set with the key of another.
  writeSet(join(dir, 'watched'), { ...next, key: makeRsaSet({ ca }).key }, { atomic: true })
  child.kill('SIGHUP')
  await waitFor('the rejection', () => seen('TLS material rejected') === 1)
  t.match(lines.find(l => l.msg?.startsWith('TLS material rejected') === true), { code: 'EDGEFWD_ERR_TLS_KEY_MISMATCH' })

  child.kill('SIGTERM')
  const code = await Promise.race([exited, new Promise(resolve => setTimeout(() => { resolve('timeout') }, 10_000))])
  t.equal(code, 0, `exits 0 on SIGTERM${stderr === '' ? '' : `: ${stderr}`}`)
  t.equal(stderr, '')
})
