/**
 * The sink's first NATS login by hand (src/sink/nats-probe.ts), against servers that are not
 * NATS: each failure is one specific error, bounded in time, with its socket closed. The real
 * NATS cases (a certificate of another CA, one that maps to no user) are in
 * test/integration/sink-jetstream.test.ts.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import t, { type Test } from 'tap'
import { probeNats } from '../../src/sink/nats-probe.js'
import { issueCertificate } from '../../src/pki/generate.js'
import { makeCa, makeClient, makeRsaSet } from '../helpers/test-pki.js'
import { freePort } from '../helpers/wait.js'

const set = makeRsaSet()
const credentials = { ca: set.ca, cert: set.cert, key: set.key }

async function server (t: Test, onSocket: (socket: Socket) => void): Promise<number> {
  const sockets = new Set<Socket>()
  const s: Server = createServer(socket => { sockets.add(socket); onSocket(socket) })
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>(resolve => s.close(() => { resolve() }))
  })
  return (s.address() as { port: number }).port
}

t.test('nobody listening: an outage (EDGEFWD_ERR_UPLINK_CONNECT), not a certificate problem', async t => {
  const port = await freePort()
  await t.rejects(probeNats(`nats://127.0.0.1:${port}`, credentials, 2000), { code: 'EDGEFWD_ERR_UPLINK_CONNECT', message: /ECONNREFUSED/ })
})

t.test('a server that is not NATS: it says so', async t => {
  const port = await server(t, socket => { socket.write('SSH-2.0-OpenSSH_9.2\r\n') })
  await t.rejects(probeNats(`nats://127.0.0.1:${port}`, credentials, 2000), { code: 'EDGEFWD_ERR_UPLINK_CONNECT', message: /not a NATS server \(it said "SSH-2\.0/ })
})

t.test('a server that never answers: bounded by the timeout', async t => {
  const port = await server(t, () => {})
  const started = Date.now()
  await t.rejects(probeNats(`nats://127.0.0.1:${port}`, credentials, 300), { code: 'EDGEFWD_ERR_UPLINK_CONNECT', message: /no answer within 300 ms/ })
  t.ok(Date.now() - started < 5000, 'gave up at its timeout')
})

t.test('a server that says INFO and then nothing TLS: the connection closed before the handshake', async t => {
  const port = await server(t, socket => { socket.end('INFO {"tls_required":true}\r\n') })
  await t.rejects(probeNats(`nats://127.0.0.1:${port}`, credentials, 2000), { code: /^EDGEFWD_ERR_(UPLINK_CONNECT|TLS_)/ })
})

t.test('a line without end: refused after 64 KiB, not buffered for ever', async t => {
  const port = await server(t, socket => { socket.write(Buffer.alloc(70 * 1024, 'x')) })
  await t.rejects(probeNats(`nats://127.0.0.1:${port}`, credentials, 2000), { message: /not a NATS server \(no line end in 64 KiB\)/ })
})

t.test('a NATS-like server by host name: INFO, TLS on the same socket, CONNECT and PING, then PONG in two pieces', async t => {
  const ca = makeCa()
  const serverCert = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['localhost'] })
  const client = makeClient(ca, { commonName: 'sink-1' })
  let connect = ''
  const port = await server(t, socket => {
    socket.write('INFO {"tls_required":true}\r\n')
    const tls = new TLSSocket(socket, { isServer: true, key: serverCert.keyPem, cert: serverCert.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true })
    tls.on('error', () => {})
    tls.on('data', (chunk: Buffer) => {
      connect += chunk.toString()
      if (connect.endsWith('PING\r\n')) { tls.write('PO'); setTimeout(() => { tls.write('NG\r\n') }, 20) }
    })
  })
  await probeNats(`nats://localhost:${port}`, { ca: ca.certPem, cert: client.certPem, key: client.keyPem }, 5000)
  t.match(connect, /^CONNECT \{"verbose":false,"pedantic":false,"tls_required":true,.*\}\r\nPING\r\n$/, 'logged in the way the protocol says')
})
