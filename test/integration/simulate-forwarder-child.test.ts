/**
 * The simulation's forwarder process when it cannot start: the parent gets the reason (not a
 * hang), and a configuration problem is named, as `edgefwd run` would name it; and its metrics
 * endpoint (simulate --metrics).
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startForwarderChild } from '../../simulate/forwarder-child.js'
import { makeCa, makeClient, writeSet } from '../helpers/test-pki.js'

t.test('missing TLS files: the start fails with the file named, within the ready timeout', async t => {
  const dir = t.testdir()
  const configFile = join(dir, 'edgefwd.json')
  writeFileSync(configFile, JSON.stringify({
    gateway: { id: 'sim-gw' },
    store: { path: join(dir, 'store'), capacity: '1MiB' },
    tls: { ca: join(dir, 'nope', 'ca.crt'), cert: join(dir, 'nope', 'gw.crt'), key: join(dir, 'nope', 'gw.key') },
    uplink: { url: 'mqtts://127.0.0.1:1', mqttVersion: '3.1.1' },
  }))
  const started = Date.now()
  await t.rejects(startForwarderChild({ configFile, logFile: join(dir, 'forwarder.log'), readyTimeoutMs: 20_000 }), /the forwarder failed to start: .*nope/)
  t.ok(Date.now() - started < 20_000, 'told at once, not after the timeout')
})

t.test('an invalid configuration: the start fails naming the key', async t => {
  const dir = t.testdir()
  const configFile = join(dir, 'edgefwd.json')
  writeFileSync(configFile, JSON.stringify({ uplink: { window: 0 } }))
  await t.rejects(startForwarderChild({ configFile, logFile: join(dir, 'forwarder.log') }), /uplink\.window/)
})

t.test('with observe.metrics on, the forwarder process serves the endpoint `edgefwd run` serves and says where', async t => {
  const dir = t.testdir()
  const ca = makeCa()
  const gw = makeClient(ca, { commonName: 'sim-gw' })
  const tls = writeSet(join(dir, 'tls'), { ca: ca.certPem, cert: gw.certPem, key: gw.keyPem })
  const configFile = join(dir, 'edgefwd.json')
  writeFileSync(configFile, JSON.stringify({
    gateway: { id: 'sim-gw' },
    store: { path: join(dir, 'store'), capacity: '1MiB' },
    tls,
    uplink: { url: 'mqtts://127.0.0.1:1', mqttVersion: '3.1.1' },
    observe: { metrics: { enabled: true, listen: '127.0.0.1:0' } },
  }))
  const child = await startForwarderChild({ configFile, logFile: join(dir, 'forwarder.log') })
  t.teardown(async () => { await child.kill() })
  t.match(child.metrics, /^127\.0\.0\.1:\d+$/)
  const metrics = await (await fetch(`http://${child.metrics ?? ''}/metrics`)).text()
  t.match(metrics, /^edgefwd_build_info\{version="simulation"\} 1$/m)
  t.match(metrics, /^edgefwd_store_capacity_bytes 1048576$/m)
  const ready = await fetch(`http://${child.metrics ?? ''}/readyz`)
  t.equal(ready.status, 200, 'an outage younger than readyOfflineGrace is still ready')
  await child.stop()
})
