/**
 * The simulation's forwarder process when it cannot start: the parent gets the reason (not a
 * hang), and a configuration problem is named, as `edgefwd run` would name it.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startForwarderChild } from '../../simulate/forwarder-child.js'

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
