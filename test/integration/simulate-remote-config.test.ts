/**
 * The simulation's forwarder process runs a gateway as `edgefwd run` does, through the
 * Supervisor: with control.publicKeys set it takes signed remote configuration updates from the
 * embedded broker the simulation uses (MQTT 3.1.1), applies one live, restarts its forwarder for
 * another, and keeps reporting stats and serving metrics across the restart.
 */
import { createPrivateKey } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import t from 'tap'
import { startEmbeddedBroker } from '../../simulate/embedded-broker.js'
import { startForwarderChild } from '../../simulate/forwarder-child.js'
import { encodeMessage, generateKeyPair, signDocument } from '../../src/control/signing.js'
import { issueCertificate } from '../../src/pki/generate.js'
import { clientTlsOptions } from '../../src/pki/tls-options.js'
import { makeCa, makeClient, writeSet } from '../helpers/test-pki.js'
import { waitFor } from '../helpers/wait.js'

interface Ack { gateway: string, version: number | null, status: string, reason?: string, keys?: string[] }

t.test('a forwarder process with control.publicKeys applies signed updates: one live, one by a restart', async t => {
  const dir = t.testdir()
  const ca = makeCa()
  const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
  const broker = await startEmbeddedBroker({ tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem } })
  t.teardown(async () => { await broker.close() })

  const operatorKeys = generateKeyPair()
  writeFileSync(join(dir, 'operator.pub'), operatorKeys.publicPem)
  const gw = makeClient(ca, { commonName: 'sim-gw' })
  const configFile = join(dir, 'edgefwd.json')
  writeFileSync(configFile, JSON.stringify({
    gateway: { id: 'sim-gw' },
    store: { path: join(dir, 'store'), capacity: '1MiB' },
    tls: writeSet(join(dir, 'tls'), { ca: ca.certPem, cert: gw.certPem, key: gw.keyPem }),
    uplink: { url: broker.url, mqttVersion: '3.1.1', stopTimeout: '1s', backoff: { initial: 100, max: 300, refusedMin: 100 } },
    control: { publicKeys: [join(dir, 'operator.pub')], probation: '2s' },
    observe: { metrics: { enabled: true, listen: '127.0.0.1:0' } },
  }))
  const child = await startForwarderChild({ configFile, logFile: join(dir, 'forwarder.log') })
  t.teardown(async () => { await child.kill() })
  await waitFor('the forwarder process online', () => child.stats()?.uplink.state === 'online', 15_000)

  const operatorCert = makeClient(ca, { commonName: 'operator' })
  const operator = await mqtt.connectAsync(broker.url, {
    ...clientTlsOptions({ ca: ca.certPem, cert: operatorCert.certPem, key: operatorCert.keyPem }), clientId: 'operator', protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000
  }, false)
  t.teardown(async () => { await operator.endAsync(true) })
  const acks: Ack[] = []
  operator.on('message', (_topic, payload) => { acks.push(JSON.parse(payload.toString()) as Ack) })
  await operator.subscribeAsync('edgefwd/sim-gw/config/ack', { qos: 1 })
  const key = createPrivateKey(operatorKeys.privatePem)
  const publish = async (doc: unknown): Promise<void> => {
    await operator.publishAsync('edgefwd/sim-gw/config', encodeMessage(signDocument(Buffer.from(JSON.stringify(doc)), key)), { qos: 1 })
  }
  const configVersion = async (): Promise<number | undefined> => {
    const text = await (await fetch(`http://${child.metrics ?? ''}/metrics`)).text()
    const m = /^edgefwd_config_version (\d+)$/m.exec(text)
    return m === null ? undefined : Number(m[1])
  }
  t.equal(await configVersion(), 0, 'version 0 (the local configuration) before any update')

  await publish({ version: 1, config: { uplink: { batch: { maxEvents: 50 } } } })
  await waitFor('version 1 applied', () => acks.some(a => a.version === 1 && a.status === 'applied'), 15_000)
  t.match(acks.find(a => a.version === 1 && a.status === 'applied'), { gateway: 'sim-gw', keys: ['uplink.batch.maxEvents'] })
  t.equal(await configVersion(), 1)

  // uplink.window is not a live key: the Supervisor stops the forwarder and starts a new one.
  await publish({ version: 2, restart: true, config: { uplink: { window: 4 } } })
  await waitFor('version 2 applied', () => acks.some(a => a.version === 2 && a.status === 'applied'), 20_000)
  t.equal(await configVersion(), 2)
  t.ok(child.running(), 'the restart is inside the process: it still runs')
  const before = child.stats()
  await waitFor('stats from the restarted forwarder', () => child.stats() !== before && child.stats()?.uplink.state === 'online', 5000)
  await child.stop()
  t.notOk(child.running(), 'stopped gracefully')
})
