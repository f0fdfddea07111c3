/**
 * Mutual TLS against real brokers: Mosquitto 2 (an OpenSSL server, MQTT 5) and the embedded
 * aedes broker (a Node TLS server, MQTT 3.1.1). Certificates are made here with src/pki/generate.ts;
 * no PEM file is committed. Each failure is checked twice: the broker (or the client) refuses
 * the connection, and classifyTlsError() names the problem. Refusals are tried under TLS 1.3
 * (the default of both brokers) and TLS 1.2 (client maxVersion), because they look different
 * to the client (see the comment at the top of src/pki/tls-errors.ts).
 */
import t from 'tap'
import type { Test } from 'tap'
import mqtt from 'mqtt'
import type { IClientOptions } from 'mqtt'
import type { SecureVersion, TLSSocket } from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import { createServer, type AddressInfo } from 'node:net'
import { createCa, issueCertificate } from '../../src/pki/generate.js'
import type { PemPair } from '../../src/pki/generate.js'
import { clientTlsOptions } from '../../src/pki/tls-options.js'
import { classifyTlsError } from '../../src/pki/tls-errors.js'
import { isEdgefwdError, type ErrorCode } from '../../src/errors.js'
import { freePort, startMosquitto } from '../helpers/mosquitto.js'
import { waitFor } from '../helpers/wait.js'
import { startEmbeddedBroker } from '../../simulate/embedded-broker.js'
import { startChaosProxy } from '../../simulate/chaos-proxy.js'
import { connectBroker, parseBrokerUrl } from '../../src/uplink/connect.js'

const DAY = 86_400_000
const now = Date.now()
const GATEWAY = 'gw-0001'
const ca = createCa({ commonName: 'edgefwd test CA', keyBits: 2048 })
const otherCa = createCa({ commonName: 'another CA', keyBits: 2048 })
const brokerNames = ['broker.example', '127.0.0.1']
const servers = {
  main: issueCertificate(ca, { kind: 'server', commonName: 'broker.example', sans: brokerNames }),
  rogue: issueCertificate(otherCa, { kind: 'server', commonName: 'broker.example', sans: brokerNames }),
  expired: issueCertificate(ca, { kind: 'server', commonName: 'broker.example', sans: brokerNames, notBefore: new Date(now - 30 * DAY), notAfter: new Date(now - DAY) }),
  localhostOnly: issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['localhost'] }),
}
const clients = {
  good: issueCertificate(ca, { kind: 'client', commonName: GATEWAY }),
  otherCa: issueCertificate(otherCa, { kind: 'client', commonName: GATEWAY }),
  expired: issueCertificate(ca, { kind: 'client', commonName: GATEWAY, notBefore: new Date(now - 30 * DAY), notAfter: new Date(now - DAY) }),
  notYetValid: issueCertificate(ca, { kind: 'client', commonName: GATEWAY, notBefore: new Date(now + DAY), notAfter: new Date(now + 30 * DAY) }),
}
const files = { ca: '/etc/edgefwd/ca.pem', cert: '/etc/edgefwd/gateway.pem' }

type Kind = 'mosquitto' | 'aedes'

interface Broker {
  url: string
  /** Who the broker saw connect: MQTT client id and the identity it took from the certificate. */
  identities: () => Array<{ clientId: string, name: string | undefined, protocolVersion: number }>
  /** What the broker recorded about refused TLS connections (Mosquitto's log, aedes' reasons). */
  refusals: () => string
  /** Messages the broker received, as "clientId topic payload" (embedded broker only). */
  published?: string[]
}

async function startBroker (t: Test, kind: Kind, server: PemPair): Promise<Broker> {
  if (kind === 'mosquitto') {
    const m = await startMosquitto({ dir: t.testdir(), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
    t.teardown(m.stop)
    return {
      url: m.url,
      identities: () => m.connections().map(c => ({ clientId: c.clientId, name: c.username, protocolVersion: Number(c.protocol.slice(1)) })),
      refusals: () => m.log().split('\n').filter(l => /OpenSSL Error|certificate/i.test(l)).join('\n'),
    }
  }
  const b = await startEmbeddedBroker({ tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem } })
  t.teardown(b.close)
  const published: string[] = []
  b.onPublish(m => published.push(`${m.clientId} ${m.topic} ${m.payload.toString()}`))
  return {
    url: b.url,
    identities: () => b.clients().map(c => ({ clientId: c.clientId, name: c.commonName, protocolVersion: c.protocolVersion })),
    refusals: () => b.refused().map(r => r.reason).join('\n'),
    published,
  }
}

function options (kind: Kind, client: PemPair, extra: IClientOptions & { maxVersion?: SecureVersion } = {}): IClientOptions {
  return {
    ...clientTlsOptions({ ca: ca.certPem, cert: client.certPem, key: client.keyPem }),
    protocolVersion: kind === 'mosquitto' ? 5 : 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    clientId: `${GATEWAY}-${Math.random().toString(16).slice(2, 8)}`,
    ...extra,
  }
}

interface Failure { error: unknown, handshakeDone: boolean }

/** A connection attempt that must fail: the first error, or a bare close, within a bound. */
async function failedAttempt (t: Test, url: string, opts: IClientOptions): Promise<Failure> {
  const client = mqtt.connect(url, opts)
  t.teardown(() => { client.end(true) })
  const outcome = await new Promise<{ connected: boolean, error?: unknown }>(resolve => {
    const timer = setTimeout(() => resolve({ connected: false, error: new Error('no outcome within 8 s') }), 8000)
    const done = (o: { connected: boolean, error?: unknown }): void => { clearTimeout(timer); resolve(o) }
    client.once('connect', () => done({ connected: true }))
    client.once('error', (error) => done({ connected: false, error }))
    client.once('close', () => done({ connected: false }))
  })
  client.end(true)
  if (outcome.connected) throw new Error('connected, but the attempt should have failed')
  // `authorized` is set once the client has verified the broker: the handshake was done.
  return { error: outcome.error, handshakeDone: (client.stream as TLSSocket | undefined)?.authorized === true }
}

/** `read()` once it matches `pattern`, or its last value after 2 s (a log line may lag the client's error). */
async function eventually (read: () => string, pattern: RegExp): Promise<string> {
  const deadline = Date.now() + 2000
  let value = read()
  while (!pattern.test(value) && Date.now() < deadline) {
    await sleep(25)
    value = read()
  }
  return value
}

function assertClassified (t: Test, url: string, failure: Failure, code: ErrorCode, says: RegExp): void {
  const err = classifyTlsError(failure.error, { url, files, handshakeDone: failure.handshakeDone })
  const raw = failure.error instanceof Error ? `${(failure.error as { code?: string }).code}: ${failure.error.message.split('\n')[0]}` : `close (handshakeDone ${failure.handshakeDone})`
  t.comment(`mqtt.js reported ${raw}`)
  t.ok(isEdgefwdError(err, code), `classified ${code}`, { found: err?.code ?? raw })
  if (err === undefined) return
  t.match(err.message, url, 'the message names the broker URL')
  t.match(err.message, says)
  t.type(err.hint, 'string')
  t.equal(err.cause, failure.error, 'the original error is the cause')
}

for (const kind of ['mosquitto', 'aedes'] as const) {
  t.test(kind, async t => {
    const broker = await startBroker(t, kind, servers.main)

    t.test('a good client certificate connects; the broker knows the gateway by its certificate CN', async t => {
      const clientId = 'edge-client-1'
      const client = await mqtt.connectAsync(broker.url, options(kind, clients.good, { clientId }), false)
      t.teardown(() => { client.end(true) })
      t.ok(client.connected)
      // The username Mosquitto logs is the certificate CN (use_identity_as_username), not the client id.
      // aedes records a client on 'clientReady', which may come just after the client has its CONNACK.
      await waitFor('the broker to record the client', () => broker.identities().some(i => i.clientId === clientId), 5000)
      t.same(broker.identities().filter(i => i.clientId === clientId), [{ clientId, name: GATEWAY, protocolVersion: kind === 'mosquitto' ? 5 : 4 }])
      await client.endAsync()
    })

    t.test('a QoS 1 publish is acknowledged and reaches a subscriber', async t => {
      const subscriber = await mqtt.connectAsync(broker.url, options(kind, clients.good), false)
      const publisher = await mqtt.connectAsync(broker.url, options(kind, clients.good, { clientId: 'edge-publisher' }), false)
      t.teardown(() => { subscriber.end(true); publisher.end(true) })
      const topic = `edgefwd/test/${kind}/events`
      const granted = await subscriber.subscribeAsync(topic, { qos: 1 })
      t.equal(granted[0]?.qos, 1)
      const received = new Promise<[string, Buffer, { qos: number }]>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no message within 5 s')), 5000)
        subscriber.once('message', (topic, payload, packet) => { clearTimeout(timer); resolve([topic, payload, packet]) })
      })
      const puback = await publisher.publishAsync(topic, Buffer.from('batch-1'), { qos: 1 })
      t.ok(puback, 'PUBACK received')
      const [gotTopic, payload, packet] = await received
      t.equal(gotTopic, topic)
      t.equal(payload.toString(), 'batch-1')
      t.equal(packet.qos, 1)
      if (broker.published !== undefined) {
        const seen = `edge-publisher ${topic} batch-1`
        // aedes acknowledges before it routes, so the broker's own record may trail the PUBACK.
        t.equal(await eventually(() => broker.published?.join('\n') ?? '', new RegExp(seen)), seen, 'onPublish saw it')
      }
      await Promise.all([subscriber.endAsync(), publisher.endAsync()])
    })

    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const refusedCases: Array<[string, PemPair, RegExp]> = [
        ['a client certificate from another CA', clients.otherCa, kind === 'mosquitto' ? /certificate verify failed/ : /UNABLE_TO_VERIFY_LEAF_SIGNATURE/],
        ['an expired client certificate', clients.expired, kind === 'mosquitto' ? /certificate verify failed/ : /CERT_HAS_EXPIRED/],
        ['a not-yet-valid client certificate', clients.notYetValid, kind === 'mosquitto' ? /certificate verify failed/ : /CERT_NOT_YET_VALID/],
      ]
      for (const [name, client, brokerSays] of refusedCases) {
        t.test(`${maxVersion}: ${name} is refused by the broker: EDGEFWD_ERR_TLS_REJECTED`, async t => {
          const before = broker.identities().length
          const logged = broker.refusals().length
          const failure = await failedAttempt(t, broker.url, options(kind, client, { maxVersion }))
          assertClassified(t, broker.url, failure, 'EDGEFWD_ERR_TLS_REJECTED', /refused our client certificate|most likely refused/)
          t.equal(broker.identities().length, before, 'no MQTT session was opened')
          t.match(await eventually(() => broker.refusals().slice(logged), brokerSays), brokerSays, 'the broker recorded why')
        })
      }
    }

    t.test('TLSv1.3: no client certificate at all is refused by the broker: EDGEFWD_ERR_TLS_REJECTED', async t => {
      const { cert: _cert, key: _key, ...caOnly } = options(kind, clients.good)
      const logged = broker.refusals().length
      const failure = await failedAttempt(t, broker.url, caOnly)
      assertClassified(t, broker.url, failure, 'EDGEFWD_ERR_TLS_REJECTED', /refused our client certificate|most likely refused/)
      const brokerSays = kind === 'mosquitto' ? /peer did not return a certificate/ : /no client certificate/
      t.match(await eventually(() => broker.refusals().slice(logged), brokerSays), brokerSays, 'the broker recorded why')
    })

    t.test('a broker whose certificate comes from another CA: EDGEFWD_ERR_TLS_BROKER_UNTRUSTED', async t => {
      const rogue = await startBroker(t, kind, servers.rogue)
      const failure = await failedAttempt(t, rogue.url, options(kind, clients.good))
      assertClassified(t, rogue.url, failure, 'EDGEFWD_ERR_TLS_BROKER_UNTRUSTED', /not signed by the CA in \/etc\/edgefwd\/ca\.pem/)
      t.same(rogue.identities(), [])
    })

    t.test('a broker whose certificate expired: EDGEFWD_ERR_TLS_BROKER_UNTRUSTED', async t => {
      const stale = await startBroker(t, kind, servers.expired)
      const failure = await failedAttempt(t, stale.url, options(kind, clients.good))
      assertClassified(t, stale.url, failure, 'EDGEFWD_ERR_TLS_BROKER_UNTRUSTED', /broker's certificate expired/)
    })

    t.test('a server name the broker certificate does not carry: EDGEFWD_ERR_TLS_HOSTNAME', async t => {
      const tls = clientTlsOptions({ ca: ca.certPem, cert: clients.good.certPem, key: clients.good.keyPem }, { servername: 'other.example' })
      const failure = await failedAttempt(t, broker.url, options(kind, clients.good, tls))
      assertClassified(t, broker.url, failure, 'EDGEFWD_ERR_TLS_HOSTNAME', /not valid for "other\.example": it names DNS:broker\.example, IP Address:127\.0\.0\.1/)
    })

    t.test('an IP address the broker certificate does not carry: EDGEFWD_ERR_TLS_HOSTNAME', async t => {
      const named = await startBroker(t, kind, servers.localhostOnly)
      const failure = await failedAttempt(t, named.url, options(kind, clients.good))
      assertClassified(t, named.url, failure, 'EDGEFWD_ERR_TLS_HOSTNAME', /not valid for "127\.0\.0\.1": it names DNS:localhost/)
    })
  })
}

t.test('nothing listening (ECONNREFUSED) is an ordinary outage, not a TLS error', async t => {
  const url = `mqtts://127.0.0.1:${await freePort()}`
  const failure = await failedAttempt(t, url, options('mosquitto', clients.good))
  t.equal((failure.error as { code?: string } | undefined)?.code, 'ECONNREFUSED')
  t.equal(classifyTlsError(failure.error, { url, files, handshakeDone: failure.handshakeDone }), undefined)
})

t.test('embedded broker restart (stop/start) keeps persistent sessions and their queued messages, as Mosquitto with persistence does', async t => {
  const broker = await startEmbeddedBroker({ tls: { ca: ca.certPem, cert: servers.main.certPem, key: servers.main.keyPem } })
  t.teardown(async () => { await broker.close() })
  const connect = async (clientId: string, extra: IClientOptions = {}): Promise<mqtt.MqttClient> => await mqtt.connectAsync(broker.url, {
    ...clientTlsOptions({ ca: ca.certPem, cert: clients.good.certPem, key: clients.good.keyPem }), clientId, protocolVersion: 4, connectTimeout: 3000, ...extra
  })
  const sub = await connect('sub', { clean: false, reconnectPeriod: 1500 })
  t.teardown(async () => { await sub.endAsync(true) })
  const received: string[] = []
  sub.on('message', (_topic, payload) => { received.push(payload.toString()) })
  await sub.subscribeAsync('t/#', { qos: 1 })
  const reconnected = new Promise<boolean>(resolve => { sub.once('connect', (connack) => { resolve(connack.sessionPresent) }) })

  await broker.stop()
  t.equal(broker.listening(), false)
  await t.rejects(connect('pub', { reconnectPeriod: 0 }), 'nobody answers while it is down')
  await broker.start()
  t.equal(broker.listening(), true)
  // Published while the subscriber is still waiting to reconnect: queued in its session.
  const pub = await connect('pub', { reconnectPeriod: 0 })
  await pub.publishAsync('t/1', 'while you were away', { qos: 1 })
  await pub.endAsync()
  t.equal(await reconnected, true, 'the subscriber finds its session kept')
  await waitFor('the queued message', () => received.length > 0, 5000)
  t.same(received, ['while you were away'])
})

t.test('connectBroker: a reset before the broker answers our TLS hello is an outage (UPLINK_CONNECT); a refused certificate is TLS_REJECTED', async t => {
  // The reset happens as the proxy accepts (its 'reset' mode), as during a network outage; the
  // message Node gives can be the same as for a broker hanging up on our certificate.
  const broker = await startEmbeddedBroker({ tls: { ca: ca.certPem, cert: servers.main.certPem, key: servers.main.keyPem } })
  t.teardown(async () => { await broker.close() })
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: broker.port } })
  t.teardown(async () => { await proxy.close() })
  const attempt = async (url: string, cert: PemPair): Promise<unknown> => {
    const err = await connectBroker(parseBrokerUrl(url), () => ({ ca: ca.certPem, cert: cert.certPem, key: cert.keyPem }), { clientId: 'gw', protocolVersion: 4, timeoutMs: 3000 })
      .then(() => undefined, (e: unknown) => e)
    return (err as { code?: unknown } | undefined)?.code
  }
  proxy.setMode('reset')
  for (let i = 0; i < 5; i++) t.equal(await attempt(proxy.url('mqtts'), clients.good), 'EDGEFWD_ERR_UPLINK_CONNECT', `reset by the network (${i + 1})`)
  // A peer that reads our hello and hangs up without a word (as the chaos proxy does when the
  // broker behind it is down): Node then says "disconnected before secure TLS connection was
  // established", exactly as when aedes refuses a certificate under TLS 1.2.
  const silent = createServer(s => { s.on('error', () => {}); s.once('data', () => { s.destroy() }) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise(resolve => silent.close(resolve)) })
  const silentUrl = `mqtts://127.0.0.1:${(silent.address() as AddressInfo).port}`
  t.equal(await attempt(silentUrl, clients.good), 'EDGEFWD_ERR_UPLINK_CONNECT', 'closed after our hello, before any answer: not a certificate refusal')
  proxy.setMode('pass')
  t.equal(await attempt(proxy.url('mqtts'), clients.otherCa), 'EDGEFWD_ERR_TLS_REJECTED', 'the broker refused our certificate')
})
