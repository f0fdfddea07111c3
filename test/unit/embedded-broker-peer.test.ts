/**
 * The simulation's embedded broker names each client by its certificate's CN. A link that drops
 * between the client's CONNECT and the broker's 'clientReady' leaves a closed socket, whose
 * getPeerCertificate() is null: that must not throw (it did, uncaught, in CI's flaky-cellular run).
 */
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import { peerCommonName } from '../../simulate/embedded-broker.js'

const socketWith = (cert: unknown): TLSSocket => ({ getPeerCertificate: () => cert }) as unknown as TLSSocket

t.test('peerCommonName: the CN when there is a certificate, undefined when the socket has none or is closed', async t => {
  t.equal(peerCommonName(socketWith({ subject: { CN: 'gw-1' } })), 'gw-1')
  t.equal(peerCommonName(socketWith({ subject: { CN: ['gw-2', 'other'] } })), 'gw-2', 'the first of several CNs')
  t.equal(peerCommonName(socketWith({})), undefined, 'no certificate: an empty object')
  t.equal(peerCommonName(socketWith(null)), undefined, 'a closed socket: null, no exception')
  t.equal(peerCommonName(undefined), undefined)
})
