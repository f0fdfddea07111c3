/**
 * classifyTlsError() on constructed errors shaped like those Node and mqtt.js report (the shapes
 * are measured against real brokers in test/integration/broker-tls.test.ts), and the client TLS
 * options it pairs with.
 */
import t from 'tap'
import { checkServerIdentity } from 'node:tls'
import type { PeerCertificate } from 'node:tls'
import { classifyTlsError, LATE_CLOSE_MS } from '../../src/pki/tls-errors.js'
import { classifyConnectError, connectFailureReason } from '../../src/uplink/connect.js'
import { clientTlsOptions } from '../../src/pki/tls-options.js'
import { isEdgefwdError } from '../../src/errors.js'

const url = 'mqtts://broker.example:8883'
const files = { ca: '/etc/edgefwd/ca.pem', cert: '/etc/edgefwd/gateway.pem', key: '/etc/edgefwd/gateway.key' }

function nodeError (code: string, message: string, extra: object = {}): Error {
  return Object.assign(new Error(message), { code }, extra)
}

/** What OpenSSL 3 puts in the message of a TLS alert error. */
function alertMessage (alert: string, number: number): string {
  return `80DC0C1B717F0000:error:0A000418:SSL routines:ssl3_read_bytes:${alert}:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number ${number}\n`
}

t.test('a broker certificate that does not chain to our CA: EDGEFWD_ERR_TLS_BROKER_UNTRUSTED', async t => {
  for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
    'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE']) {
    const cause = nodeError(code, 'unable to verify the first certificate')
    const err = classifyTlsError(cause, { url, files })
    t.ok(isEdgefwdError(err, 'EDGEFWD_ERR_TLS_BROKER_UNTRUSTED'), code)
    t.equal(err?.message, `the broker at ${url} presented a certificate not signed by the CA in /etc/edgefwd/ca.pem (${code})`)
    t.equal(err?.cause, cause)
    t.match(err?.hint, /tls\.ca/)
  }
  t.equal(classifyTlsError(nodeError('UNABLE_TO_VERIFY_LEAF_SIGNATURE', ''), { url })?.message,
    `the broker at ${url} presented a certificate not signed by the CA (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`, 'no file named when none is given')
})

t.test('an expired or not-yet-valid broker certificate: EDGEFWD_ERR_TLS_BROKER_UNTRUSTED, saying which', async t => {
  const expired = classifyTlsError(nodeError('CERT_HAS_EXPIRED', 'certificate has expired'), { url, files })
  t.ok(isEdgefwdError(expired, 'EDGEFWD_ERR_TLS_BROKER_UNTRUSTED'))
  t.equal(expired?.message, `the broker's certificate expired (broker ${url})`)
  const early = classifyTlsError(nodeError('CERT_NOT_YET_VALID', 'certificate is not yet valid'), { url, files })
  t.ok(isEdgefwdError(early, 'EDGEFWD_ERR_TLS_BROKER_UNTRUSTED'))
  t.match(early?.message, /not valid yet/)
  t.match(early?.hint, /clock/)
  const purpose = classifyTlsError(nodeError('INVALID_PURPOSE', 'unsupported certificate purpose'), { url })
  t.match(purpose?.message, /not issued for server use/)
})

t.test('a host name the broker certificate does not carry: EDGEFWD_ERR_TLS_HOSTNAME, naming both sides', async t => {
  const real = checkServerIdentity('other.example', { subject: { CN: 'broker.example' }, subjectaltname: 'DNS:broker.example, IP Address:127.0.0.1' } as unknown as PeerCertificate)
  t.equal((real as { code?: string } | undefined)?.code, 'ERR_TLS_CERT_ALTNAME_INVALID', 'Node\'s own error, as mqtt.js passes it on')
  const err = classifyTlsError(real, { url, files })
  t.ok(isEdgefwdError(err, 'EDGEFWD_ERR_TLS_HOSTNAME'))
  t.equal(err?.message, `the broker's certificate at ${url} is not valid for "other.example": it names DNS:broker.example, IP Address:127.0.0.1`)
  t.equal(err?.cause, real)
  t.match(err?.hint, /--san/)

  const bare = classifyTlsError(nodeError('ERR_TLS_CERT_ALTNAME_INVALID', 'Hostname/IP does not match', { cert: { subjectaltname: '' } }), { url })
  t.equal(bare?.message, `the broker's certificate at ${url} is not valid for the host name asked for: it carries no subjectAltName`)
})

t.test('the broker refused our certificate with a TLS alert: EDGEFWD_ERR_TLS_REJECTED', async t => {
  const cases: Array<[string, Error, RegExp]> = [
    ['unknown CA, TLS 1.3', nodeError('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', alertMessage('tlsv1 alert unknown ca', 48), { reason: 'tlsv1 alert unknown ca' }), /does not know the CA/],
    ['unknown CA, TLS 1.2', nodeError('EPROTO', `write EPROTO ${alertMessage('tlsv1 alert unknown ca', 48)}`), /does not know the CA/],
    ['expired', nodeError('ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED', alertMessage('sslv3 alert certificate expired', 45)), /has expired/],
    ['bad certificate', nodeError('EPROTO', `write EPROTO ${alertMessage('sslv3 alert bad certificate', 42)}`), /bad: often not valid yet/],
    ['certificate required', nodeError('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', alertMessage('tlsv13 alert certificate required', 116)), /none was sent/],
    ['certificate unknown', nodeError('ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN', alertMessage('sslv3 alert certificate unknown', 46)), /could not accept/],
    ['revoked', nodeError('ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED', alertMessage('sslv3 alert certificate revoked', 44)), /revoked/],
    ['alert only in `reason`', nodeError('ERR_SSL_X', 'ssl error', { reason: 'tlsv1 alert access denied' }), /denied access/],
  ]
  for (const [name, cause, says] of cases) {
    const err = classifyTlsError(cause, { url, files })
    t.ok(isEdgefwdError(err, 'EDGEFWD_ERR_TLS_REJECTED'), name)
    t.match(err?.message, `the broker at ${url} refused our client certificate /etc/edgefwd/gateway.pem: `, name)
    t.match(err?.message, says, name)
    t.notMatch(err?.message, /\n/, 'one line')
    t.equal(err?.cause, cause)
    t.type(err?.hint, 'string')
  }
})

t.test('a Node broker (aedes) refusing our certificate: no alert, only a close', async t => {
  const tls12 = nodeError('ECONNRESET', 'Client network socket disconnected before secure TLS connection was established')
  t.ok(isEdgefwdError(classifyTlsError(tls12, { url, files }), 'EDGEFWD_ERR_TLS_REJECTED'), 'TLS 1.2: reset during the handshake')
  t.match(classifyTlsError(tls12, { url })?.message, /during the TLS handshake: it most likely refused our client certificate$/)

  t.ok(isEdgefwdError(classifyTlsError(tls12, { url, serverAnswered: true }), 'EDGEFWD_ERR_TLS_REJECTED'), 'the server had answered our hello')
  t.equal(classifyTlsError(tls12, { url, serverAnswered: false }), undefined,
    'reset before the server answered: the network or a proxy (an outage), not a refusal of a certificate the broker never received')

  const closed = classifyTlsError(undefined, { url, files, handshakeDone: true })
  t.ok(isEdgefwdError(closed, 'EDGEFWD_ERR_TLS_REJECTED'), 'TLS 1.3: a bare close after the handshake, before CONNACK')
  t.match(closed?.message, /right after the TLS handshake, before CONNACK/)
  for (const code of ['ECONNRESET', 'EPIPE']) {
    t.ok(isEdgefwdError(classifyTlsError(nodeError(code, `read ${code}`), { url, handshakeDone: true }), 'EDGEFWD_ERR_TLS_REJECTED'), `TLS 1.3: ${code} after the handshake`)
  }
})

t.test('a close seconds after the handshake, before CONNACK, is a broker not ready (an outage), not a refused certificate', async t => {
  t.ok(isEdgefwdError(classifyTlsError(undefined, { url, handshakeDone: true, closedAfterHandshakeMs: 5 }), 'EDGEFWD_ERR_TLS_REJECTED'), 'at once: refused')
  t.ok(isEdgefwdError(classifyTlsError(undefined, { url, handshakeDone: true, closedAfterHandshakeMs: LATE_CLOSE_MS - 1 }), 'EDGEFWD_ERR_TLS_REJECTED'), 'just under the bound: refused')
  t.equal(classifyTlsError(undefined, { url, handshakeDone: true, closedAfterHandshakeMs: LATE_CLOSE_MS }), undefined, 'at the bound: not a TLS problem')
  t.equal(classifyTlsError(nodeError('ECONNRESET', 'read ECONNRESET'), { url, handshakeDone: true, closedAfterHandshakeMs: 4200 }), undefined, 'a reset seconds later: neither')
  const late = classifyConnectError(undefined, { url, handshakeDone: true, closedAfterHandshakeMs: 4200 })
  t.equal(late.code, 'EDGEFWD_ERR_UPLINK_CONNECT')
  t.match(late.message, /closed the connection 4200 ms after the TLS handshake without a CONNACK: the broker is busy or not ready/)
  t.match(late.hint, /not a refused certificate/)
  t.equal(connectFailureReason(late), 'connect', 'counted as a failed connection, not tls_rejected')
})

t.test('anything else is an ordinary outage: undefined', async t => {
  const outages: unknown[] = [
    nodeError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:8883'),
    nodeError('ETIMEDOUT', 'connect ETIMEDOUT'),
    nodeError('ENOTFOUND', 'getaddrinfo ENOTFOUND broker.example'),
    nodeError('ECONNRESET', 'read ECONNRESET'),
    new Error('connack timeout'),
    'a string', null, undefined, 42,
  ]
  for (const err of outages) t.equal(classifyTlsError(err, { url, files }), undefined, String((err as Error | undefined)?.message ?? err))
  t.equal(classifyTlsError(nodeError('ECONNREFUSED', 'refused'), { url, handshakeDone: true }), undefined, 'a refused TCP connection even with handshakeDone')
  t.equal(classifyTlsError(nodeError('EPROTO', 'write EPROTO ...:tlsv1 alert protocol version:...'), { url }), undefined, 'a TLS version mismatch is not about our certificate')
})

t.test('clientTlsOptions: verification always on, SNI only for host names', async t => {
  const material = { ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM' }
  const byName = clientTlsOptions(material, { servername: 'broker.example' })
  t.match(byName, { ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM', servername: 'broker.example', rejectUnauthorized: true, minVersion: 'TLSv1.2' })
  t.notOk('servername' in clientTlsOptions(material, { servername: '127.0.0.1' }), 'no SNI for an IPv4 literal')
  t.notOk('servername' in clientTlsOptions(material, { servername: '::1' }), 'no SNI for an IPv6 literal')
  t.notOk('servername' in clientTlsOptions(material), 'none unless asked')
  const cert = { subject: { CN: 'broker.example' }, subjectaltname: 'DNS:broker.example' } as unknown as PeerCertificate
  t.equal(byName.checkServerIdentity('broker.example', cert), undefined)
  t.equal((byName.checkServerIdentity('other.example', cert) as { code?: string } | undefined)?.code, 'ERR_TLS_CERT_ALTNAME_INVALID', 'host names are still checked')
})
