import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto'
import t, { type Test } from 'tap'
import { isEdgefwdError, type ErrorCode } from '../../src/errors.js'
import { createCa, issueCertificate } from '../../src/pki/generate.js'
import {
  describeKey, formatReports, inspectCertificates, parseSubjectAltName, readCertificates, readPrivateKey,
} from '../../src/pki/inspect.js'

const DAY_MS = 86_400_000
const ca = createCa({ commonName: 'Inspect CA', keyBits: 2048 })
// Another CA with the very same name: chaining must be decided by signature, not by name.
const impostor = createCa({ commonName: 'Inspect CA', keyBits: 2048 })
const client = issueCertificate(ca, { kind: 'client', commonName: 'gw-1', organization: 'Acme', sans: ['gw-1.local', '10.0.0.1'] })
const caCert = new X509Certificate(ca.certPem)
const clientCert = new X509Certificate(client.certPem)
const now = new Date()

function rejectsWith (t: Test, fn: () => unknown, code: ErrorCode, message: RegExp): void {
  try {
    fn()
    t.fail('did not throw')
  } catch (err) {
    t.ok(isEdgefwdError(err, code), code)
    t.match((err as Error).message, message)
  }
}

t.test('a client certificate described', async t => {
  const [report, ...rest] = inspectCertificates('gw-1.crt', [clientCert], { now })
  t.same(rest, [])
  t.match(report, {
    file: 'gw-1.crt',
    position: 1,
    count: 1,
    subject: 'CN=gw-1, O=Acme',
    issuer: 'CN=Inspect CA',
    sans: ['DNS:gw-1.local', 'IP:10.0.0.1'],
    daysLeft: 397,
    key: { type: 'RSA', bits: 2048, label: 'RSA 2048' },
    isCa: false,
    selfSigned: false,
    extendedKeyUsage: ['clientAuth'],
    serialNumber: clientCert.serialNumber,
    sha256Fingerprint: clientCert.fingerprint256,
    problems: [],
  })
  t.equal(report?.notAfter, new Date(clientCert.validTo).toISOString().replace('.000', ''))
  t.notOk(report !== undefined && 'keyCheck' in report, 'no key check unless a key is given')

  const [caReport] = inspectCertificates('ca.crt', [caCert], { now })
  t.match(caReport, { isCa: true, selfSigned: true, daysLeft: 3650 })
  t.notOk(caReport !== undefined && 'extendedKeyUsage' in caReport, 'no extendedKeyUsage extension: none reported')
})

t.test('--key: matches, or a KEY_MISMATCH problem', async t => {
  const good = inspectCertificates('gw-1.crt', [clientCert], { now, key: { file: 'gw-1.key', key: createPrivateKey(client.keyPem) } })
  t.match(good, [{ keyCheck: { file: 'gw-1.key', matches: true }, problems: [] }])

  const bad = inspectCertificates('gw-1.crt', [clientCert], { now, key: { file: 'ca.key', key: createPrivateKey(ca.keyPem) } })
  t.match(bad, [{ keyCheck: { file: 'ca.key', matches: false } }])
  t.same(bad[0]?.problems, [{ code: 'EDGEFWD_ERR_TLS_KEY_MISMATCH', message: 'the key in ca.key does not belong to this certificate' }])

  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey
  t.match(inspectCertificates('gw-1.crt', [clientCert], { now, key: { file: 'ec.key', key: ec } })[0]?.problems,
    [{ code: 'EDGEFWD_ERR_TLS_KEY_MISMATCH', message: /\(the key is EC P-256, the certificate's is RSA 2048\)$/ }])

  const bundle = inspectCertificates('chain.pem', [clientCert, caCert], { now, key: { file: 'gw-1.key', key: createPrivateKey(client.keyPem) } })
  t.match(bundle, [{ position: 1, count: 2, keyCheck: { matches: true } }, { position: 2, count: 2, problems: [] }], 'only the first (leaf) is checked against the key')
  t.notOk(bundle[1] !== undefined && 'keyCheck' in bundle[1])
})

t.test('--ca: chains by signature, not by name', async t => {
  const good = inspectCertificates('gw-1.crt', [clientCert], { now, ca: { file: 'ca.crt', certificates: [caCert] } })
  t.match(good, [{ caCheck: { file: 'ca.crt', chains: true }, problems: [] }])
  t.match(inspectCertificates('ca.crt', [caCert], { now, ca: { file: 'ca.crt', certificates: [caCert] } }), [{ caCheck: { chains: true } }],
    'the CA itself chains to itself')

  const sameName = inspectCertificates('gw-1.crt', [clientCert], { now, ca: { file: 'other.crt', certificates: [new X509Certificate(impostor.certPem)] } })
  t.match(sameName, [{ caCheck: { chains: false } }])
  t.same(sameName[0]?.problems, [{
    code: 'EDGEFWD_ERR_TLS_CERT_UNTRUSTED',
    message: 'not signed by the CA in other.crt: its issuer has the CA\'s name but the signature does not verify: a different CA of the same name',
  }])

  const otherName = createCa({ commonName: 'Other CA', keyBits: 2048 })
  t.match(inspectCertificates('gw-1.crt', [clientCert], { now, ca: { file: 'o.crt', certificates: [new X509Certificate(otherName.certPem)] } })[0]?.problems,
    [{ code: 'EDGEFWD_ERR_TLS_CERT_UNTRUSTED', message: 'not signed by the CA in o.crt: its issuer is CN=Inspect CA' }])
  t.match(inspectCertificates('gw-1.crt', [clientCert], { now, ca: { file: 'both.pem', certificates: [new X509Certificate(otherName.certPem), caCert] } }),
    [{ caCheck: { chains: true } }], 'any CA of a bundle will do')
})

t.test('expired and not yet valid, by the clock given', async t => {
  const notBefore = new Date('2030-01-01T00:00:00Z')
  const notAfter = new Date('2030-01-31T00:00:00Z')
  const cert = new X509Certificate(issueCertificate(ca, { kind: 'client', commonName: 'dated', notBefore, notAfter }).certPem)
  const at = (iso: string): ReturnType<typeof inspectCertificates> => inspectCertificates('d.crt', [cert], { now: new Date(iso) })
  t.same(at('2029-12-31T00:00:00Z')[0]?.problems, [{ code: 'EDGEFWD_ERR_TLS_CERT_NOT_YET_VALID', message: 'not valid before 2030-01-01T00:00:00Z (check this machine\'s clock)' }])
  t.match(at('2029-12-31T00:00:00Z')[0], { daysLeft: 31 })
  t.same(at('2030-01-15T00:00:00Z')[0]?.problems, [])
  t.same(at('2030-02-03T00:00:00Z')[0]?.problems, [{ code: 'EDGEFWD_ERR_TLS_CERT_EXPIRED', message: 'expired on 2030-01-31T00:00:00Z' }])
  t.match(at('2030-02-03T00:00:00Z')[0], { daysLeft: -3 })

  const text = (iso: string): string => formatReports(at(iso), new Date(iso))
  t.match(text('2030-01-15T00:00:00Z'), /^ {2}valid until +2030-01-31T00:00:00Z \(16 days left\)$/m)
  t.match(text('2030-01-15T00:00:00Z'), /^ {2}note +expires in 16 days: renew it now$/m)
  t.match(text('2030-01-30T01:00:00Z'), /\(23 hours left\)$/m)
  t.match(text('2030-02-03T00:00:00Z'), /\(expired 3 days ago\)$/m)
  t.match(text('2030-01-31T05:00:00Z'), /\(expired 5 hours ago\)$/m)
  t.match(text('2030-02-03T00:00:00Z'), /^ {2}problem +EDGEFWD_ERR_TLS_CERT_EXPIRED: expired on 2030-01-31T00:00:00Z$/m)
})

t.test('the human report', async t => {
  const text = formatReports(inspectCertificates('certs/gw-1.crt', [clientCert, caCert], {
    now, key: { file: 'certs/gw-1.key', key: createPrivateKey(client.keyPem) }, ca: { file: 'ca.crt', certificates: [caCert] },
  }), now)
  const blocks = text.split('\n\n')
  t.equal(blocks.length, 2)
  t.equal(blocks[0], [
    'certs/gw-1.crt (certificate 1 of 2)',
    '  subject      CN=gw-1, O=Acme',
    '  issuer       CN=Inspect CA',
    '  SANs         DNS:gw-1.local, IP:10.0.0.1',
    `  valid from   ${new Date(clientCert.validFrom).toISOString().replace('.000', '')}`,
    `  valid until  ${new Date(clientCert.validTo).toISOString().replace('.000', '')} (397 days left)`,
    '  key          RSA 2048',
    '  CA           no',
    '  usage        clientAuth',
    `  serial       ${clientCert.serialNumber}`,
    `  SHA-256      ${clientCert.fingerprint256}`,
    '  key file     certs/gw-1.key: matches',
    '  chains to    ca.crt: yes',
  ].join('\n'))
  t.match(blocks[1], /^certs\/gw-1\.crt \(certificate 2 of 2\)\n {2}subject +CN=Inspect CA\n {2}issuer +CN=Inspect CA \(self-signed\)\n {2}SANs +none\n/)
  t.match(blocks[1], /^ {2}CA +yes$/m)
  t.match(blocks[1], /^ {2}usage +any \(no extendedKeyUsage\)$/m)
  t.notMatch(text, /PRIVATE KEY|MII/, 'nothing of a key')
})

t.test('reading certificates: PEM bundles, and clear refusals', async t => {
  t.equal(readCertificates(Buffer.from(`junk before\n${client.certPem}${ca.certPem}`), 'b.pem').length, 2)
  // run's loader refuses DER (Node's TLS takes PEM): inspect must not pass a file run refuses.
  rejectsWith(t, () => readCertificates(clientCert.raw, 'c.der'), 'EDGEFWD_ERR_TLS_PEM_INVALID', /^c\.der is DER \(binary\), not PEM$/)

  rejectsWith(t, () => readCertificates(Buffer.from(client.keyPem), 'gw-1.key'), 'EDGEFWD_ERR_TLS_PEM_INVALID', /^gw-1\.key holds a private key, not a certificate$/)
  rejectsWith(t, () => readCertificates(Buffer.from('-----BEGIN CERTIFICATE REQUEST-----\nMII=\n-----END CERTIFICATE REQUEST-----\n'), 'x.csr'),
    'EDGEFWD_ERR_TLS_PEM_INVALID', /^x\.csr holds a certificate signing request, not a certificate$/)
  rejectsWith(t, () => readCertificates(Buffer.from('hello\n'), 'x.txt'), 'EDGEFWD_ERR_TLS_PEM_INVALID', /^x\.txt holds no PEM certificate/)
  rejectsWith(t, () => readCertificates(Buffer.from([0x30, 0x03, 0x01, 0x01, 0xff]), 'x.bin'), 'EDGEFWD_ERR_TLS_PEM_INVALID', /^x\.bin holds no PEM certificate/)
  const damaged = client.certPem.replace(/\n[A-Za-z0-9+/]{64}\n/, '\nAAAA\n')
  rejectsWith(t, () => readCertificates(Buffer.from(ca.certPem + damaged), 'chain.pem'), 'EDGEFWD_ERR_TLS_PEM_INVALID', /^chain\.pem holds a damaged certificate: certificate 2 of 2 /)
})

t.test('reading keys: PKCS#8, PKCS#1, SEC1; encrypted keys refused without touching OpenSSL', async t => {
  const rsa = createPrivateKey(client.keyPem)
  const pkcs1 = rsa.export({ type: 'pkcs1', format: 'pem' }) as string
  t.equal(describeKey(readPrivateKey(pkcs1, 'k1')).label, 'RSA 2048')
  t.equal(describeKey(readPrivateKey(client.keyPem, 'k8')).label, 'RSA 2048')
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey
  const sec1 = `-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n${ec.export({ type: 'sec1', format: 'pem' }) as string}`
  t.same(describeKey(readPrivateKey(sec1, 'ec.key')), { type: 'EC', curve: 'P-256', bits: 256, label: 'EC P-256' })

  const encrypted = rsa.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }) as string
  rejectsWith(t, () => readPrivateKey(encrypted, 'enc.key'), 'EDGEFWD_ERR_TLS_KEY_PASSPHRASE', /^enc\.key is encrypted/)
  const legacy = rsa.export({ type: 'pkcs1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }) as string
  t.match(legacy, /Proc-Type: 4,ENCRYPTED/)
  rejectsWith(t, () => readPrivateKey(legacy, 'legacy.key'), 'EDGEFWD_ERR_TLS_KEY_PASSPHRASE', /^legacy\.key is encrypted/)
  rejectsWith(t, () => readPrivateKey(client.certPem, 'gw-1.crt'), 'EDGEFWD_ERR_TLS_PEM_INVALID', /^gw-1\.crt holds a certificate, not a private key$/)
  rejectsWith(t, () => readPrivateKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', 'bad.key'),
    'EDGEFWD_ERR_TLS_PEM_INVALID', /^bad\.key holds a damaged or unsupported private key$/)
})

t.test('key descriptions', async t => {
  const key = (type: 'ec' | 'ed25519', curve?: string): ReturnType<typeof describeKey> =>
    describeKey(type === 'ec' ? generateKeyPairSync('ec', { namedCurve: curve ?? '' }).publicKey : generateKeyPairSync('ed25519').publicKey)
  t.same(key('ec', 'secp384r1'), { type: 'EC', curve: 'P-384', bits: 384, label: 'EC P-384' })
  t.same(key('ec', 'secp256k1'), { type: 'EC', curve: 'secp256k1', label: 'EC secp256k1' })
  t.same(key('ed25519'), { type: 'Ed25519', bits: 256, label: 'Ed25519' })
  t.same(describeKey(caCert.publicKey), { type: 'RSA', bits: 2048, label: 'RSA 2048' })
})

t.test('subjectAltName as Node prints it, quoted values included', async t => {
  t.same(parseSubjectAltName(undefined), [])
  t.same(parseSubjectAltName('DNS:a.example, IP Address:10.0.0.1, IP Address:0:0:0:0:0:0:0:1, URI:spiffe://x/y'),
    ['DNS:a.example', 'IP:10.0.0.1', 'IP:0:0:0:0:0:0:0:1', 'URI:spiffe://x/y'])
  t.same(parseSubjectAltName('DNS:"evil.example, DNS:good.example", DNS:b'), ['DNS:evil.example, DNS:good.example', 'DNS:b'],
    'a quoted name with a comma stays one name')
})

t.test('days left are rounded: issued for N days means N days left', async t => {
  const cert = new X509Certificate(issueCertificate(ca, { kind: 'client', commonName: 'n', validityDays: 30 }).certPem)
  t.match(inspectCertificates('n.crt', [cert], { now: new Date() }), [{ daysLeft: 30 }])
  t.match(inspectCertificates('n.crt', [cert], { now: new Date(Date.now() + 10 * DAY_MS) }), [{ daysLeft: 20 }])
})
