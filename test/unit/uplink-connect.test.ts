import t from 'tap'
import { parseBrokerUrl, probeBroker } from '../../src/uplink/connect.js'
import { freePort } from '../helpers/mosquitto.js'
import { makeRsaSet } from '../helpers/test-pki.js'

t.test('broker URLs: mqtts only, default port 8883, IPv6 literals', async t => {
  t.same(parseBrokerUrl('mqtts://broker.example'), { url: 'mqtts://broker.example', host: 'broker.example', port: 8883 })
  t.same(parseBrokerUrl('mqtts://[::1]:9883'), { url: 'mqtts://[::1]:9883', host: '::1', port: 9883 })
  t.equal(parseBrokerUrl('ssl://10.0.0.5:1884').port, 1884)
  t.throws(() => parseBrokerUrl('mqtt://broker.example'), { code: 'EDGEFWD_ERR_USAGE', message: /not mqtts:\/\/: edgefwd connects with mutual TLS only/ })
  t.throws(() => parseBrokerUrl('broker.example:8883'), { code: 'EDGEFWD_ERR_USAGE' })
})

t.test('a broker that is not there is an ordinary connection error, not a TLS one', async t => {
  const port = await freePort()
  const set = makeRsaSet()
  await t.rejects(probeBroker(parseBrokerUrl(`mqtts://127.0.0.1:${port}`), set, { clientId: 'gw', timeoutMs: 2000 }),
    { code: 'EDGEFWD_ERR_UPLINK_CONNECT', message: new RegExp(`cannot connect to mqtts://127\\.0\\.0\\.1:${port}: ECONNREFUSED`) })
})
