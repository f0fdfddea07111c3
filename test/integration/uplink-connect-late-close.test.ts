/**
 * A broker that accepts our certificate, holds the CONNECT and closes seconds later without a
 * CONNACK (NATS answers CONNECT only once JetStream has its leaders; after a cluster restart it
 * closes the connections it held) is an outage, counted as `connect`; a broker that closes at
 * once after the handshake (a Node broker refusing our certificate, TLS 1.3) is still read as a
 * refused certificate. Both against a real TLS server on loopback.
 */
import { createServer, type TLSSocket } from 'node:tls'
import t, { type Test } from 'tap'
import { issueCertificate } from '../../src/pki/generate.js'
import { connectBroker, connectFailureReason, parseBrokerUrl } from '../../src/uplink/connect.js'
import { makeCa, makeClient } from '../helpers/test-pki.js'

const ca = makeCa()
const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
const client = makeClient(ca, { commonName: 'gw-1' })
const credentials = () => ({ ca: ca.certPem, cert: client.certPem, key: client.keyPem })

/** A TLS 1.3 server that checks client certificates and closes each connection `afterMs` after its handshake. */
async function closingServer (t: Test, afterMs: number): Promise<string> {
  const sockets = new Set<TLSSocket>()
  const s = createServer({ key: server.keyPem, cert: server.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, socket => {
    sockets.add(socket)
    socket.on('error', () => {})
    setTimeout(() => { socket.destroy() }, afterMs)
  })
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>(resolve => s.close(() => { resolve() }))
  })
  return `mqtts://127.0.0.1:${(s.address() as { port: number }).port}`
}

t.test('closed 1.5 s after the handshake without CONNACK: the broker is not ready, an outage', async t => {
  const url = await closingServer(t, 1500)
  const err = await connectBroker(parseBrokerUrl(url), credentials, { clientId: 'gw-1', protocolVersion: 4, timeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e)
  t.match(err, { code: 'EDGEFWD_ERR_UPLINK_CONNECT', message: /closed the connection \d+ ms after the TLS handshake without a CONNACK: the broker is busy or not ready/ })
  t.equal(connectFailureReason(err), 'connect')
})

t.test('closed at once after the handshake: still read as a refused certificate', async t => {
  const url = await closingServer(t, 0)
  const err = await connectBroker(parseBrokerUrl(url), credentials, { clientId: 'gw-1', protocolVersion: 4, timeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e)
  t.match(err, { code: 'EDGEFWD_ERR_TLS_REJECTED', message: /right after the TLS handshake, before CONNACK/ })
})
