import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto'
import forge from 'node-forge'
import t, { type Test } from 'tap'
import { isEdgefwdError, type ErrorCode } from '../../src/errors.js'
import { CA_VALIDITY_DAYS, createCa, createCsr, issueCertificate, LEAF_VALIDITY_DAYS, signCsr, type PemPair } from '../../src/pki/generate.js'

const DAY_MS = 86_400_000

// One CA for the whole file (RSA key generation is the slow part); 2048 bits except where the default is tested.
const ca = createCa({ commonName: 'Test CA', organization: 'Edgefwd Tests', keyBits: 2048 })
const caX509 = new X509Certificate(ca.certPem)

interface ForgeExtension { name?: string, critical?: boolean, [key: string]: unknown }

function extension (pem: string, name: string): ForgeExtension | undefined {
  return forge.pki.certificateFromPem(pem).getExtension(name) as ForgeExtension | undefined
}

function rejectsWith (t: Test, fn: () => unknown, code: ErrorCode, message: RegExp, what: string): void {
  try {
    fn()
    t.fail(`${what}: did not throw`)
  } catch (err) {
    t.ok(isEdgefwdError(err, code), `${what}: ${code}`)
    t.match((err as Error).message, message, what)
  }
}

function chainsToCa (pem: string): boolean {
  const cert = new X509Certificate(pem)
  return cert.checkIssued(caX509) && cert.verify(caX509.publicKey)
}

t.test('a CA: self-signed, CA:TRUE pathlen 0, keyCertSign, 10 years, RSA 3072 by default', async t => {
  const made = createCa({ commonName: 'Default CA' })
  const cert = new X509Certificate(made.certPem)
  t.equal(cert.subject, 'CN=Default CA')
  t.equal(cert.issuer, 'CN=Default CA')
  t.ok(cert.ca)
  t.ok(cert.verify(cert.publicKey), 'self-signed')
  t.equal(cert.publicKey.asymmetricKeyDetails?.modulusLength, 3072)
  t.ok(cert.checkPrivateKey(createPrivateKey(made.keyPem)))
  t.match(made.keyPem, /^-----BEGIN PRIVATE KEY-----\n/, 'PKCS#8')
  const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / DAY_MS
  t.equal(Math.round(days), CA_VALIDITY_DAYS)
  t.ok(Date.parse(cert.validFrom) <= Date.now() - 59_000, 'backdated a minute for clock skew')

  t.match(extension(made.certPem, 'basicConstraints'), { cA: true, pathLenConstraint: 0, critical: true })
  t.match(extension(made.certPem, 'keyUsage'), { keyCertSign: true, cRLSign: true, critical: true })
  t.ok(extension(made.certPem, 'subjectKeyIdentifier'))
  t.equal(caX509.subject, 'CN=Test CA\nO=Edgefwd Tests')
})

t.test('a client certificate: clientAuth, not a CA, signed by the CA, its own key', async t => {
  const leaf = issueCertificate(ca, { kind: 'client', commonName: 'gw-1' })
  const cert = new X509Certificate(leaf.certPem)
  t.equal(cert.subject, 'CN=gw-1')
  t.equal(cert.issuer, caX509.subject)
  t.notOk(cert.ca)
  t.same(cert.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'extendedKeyUsage clientAuth only')
  t.equal(cert.subjectAltName, undefined, 'no SANs unless asked')
  t.ok(chainsToCa(leaf.certPem))
  t.ok(cert.checkPrivateKey(createPrivateKey(leaf.keyPem)))
  t.notOk(cert.checkPrivateKey(createPrivateKey(ca.keyPem)))
  t.equal(cert.publicKey.asymmetricKeyDetails?.modulusLength, 2048)
  t.equal(Math.round((Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / DAY_MS), LEAF_VALIDITY_DAYS)

  t.match(extension(leaf.certPem, 'basicConstraints'), { cA: false, critical: true })
  t.match(extension(leaf.certPem, 'keyUsage'), { digitalSignature: true, keyEncipherment: true, critical: true })
  const akid = extension(leaf.certPem, 'authorityKeyIdentifier')
  const caSkid = forge.pki.certificateFromPem(ca.certPem).generateSubjectKeyIdentifier().toHex()
  t.ok(akid !== undefined && forge.util.bytesToHex(String(akid.value)).includes(caSkid), 'authorityKeyIdentifier is the CA\'s key id')

  const other = issueCertificate(ca, { kind: 'client', commonName: 'gw-1' })
  t.not(new X509Certificate(other.certPem).serialNumber, cert.serialNumber, 'random serials')
  t.match(cert.serialNumber, /^[0-7][0-9A-F]{31}$/, '128-bit positive serial')
})

t.test('a server certificate: serverAuth, its name first among the SANs, IP addresses as IP SANs', async t => {
  const leaf = issueCertificate(ca, { kind: 'server', commonName: 'broker.local', sans: ['127.0.0.1', 'broker', '::1'], organization: 'Acme' })
  const cert = new X509Certificate(leaf.certPem)
  t.equal(cert.subject, 'CN=broker.local\nO=Acme')
  t.same(cert.keyUsage, ['1.3.6.1.5.5.7.3.1'])
  t.equal(cert.subjectAltName, 'DNS:broker.local, IP Address:127.0.0.1, DNS:broker, IP Address:0:0:0:0:0:0:0:1')
  t.equal(cert.checkHost('broker.local'), 'broker.local')
  t.equal(cert.checkIP('127.0.0.1'), '127.0.0.1')
  const again = issueCertificate(ca, { kind: 'server', commonName: 'b.local', sans: ['b.local'] })
  t.equal(new X509Certificate(again.certPem).subjectAltName, 'DNS:b.local', 'the name is not repeated')
})

t.test('validity: days, explicit dates, clamped to the CA, nonsense refused', async t => {
  const short = new X509Certificate(issueCertificate(ca, { kind: 'client', commonName: 'a', validityDays: 2 }).certPem)
  t.equal(Math.round((Date.parse(short.validTo) - Date.parse(short.validFrom)) / DAY_MS), 2)

  const notBefore = new Date('2024-01-01T00:00:00Z')
  const notAfter = new Date('2024-02-01T00:00:00Z')
  const dated = new X509Certificate(issueCertificate(ca, { kind: 'client', commonName: 'a', notBefore, notAfter }).certPem)
  t.equal(new Date(dated.validFrom).toISOString(), notBefore.toISOString())
  t.equal(new Date(dated.validTo).toISOString(), notAfter.toISOString())

  const long = new X509Certificate(issueCertificate(ca, { kind: 'client', commonName: 'a', validityDays: CA_VALIDITY_DAYS * 2 }).certPem)
  t.equal(long.validTo, caX509.validTo, 'a leaf never outlives its CA')

  const farCa = createCa({ commonName: 'Far CA', keyBits: 2048, validityDays: 365 * 40 })
  t.match(new X509Certificate(farCa.certPem).validTo, /20[6-9]\d GMT$/, 'dates past 2049 (GeneralizedTime) read back')

  rejectsWith(t, () => issueCertificate(ca, { kind: 'client', commonName: 'a', validityDays: 0 }), 'EDGEFWD_ERR_USAGE', /positive number of days/, 'zero days')
  rejectsWith(t, () => issueCertificate(ca, { kind: 'client', commonName: 'a', notBefore: notAfter, notAfter: notBefore }),
    'EDGEFWD_ERR_USAGE', /notAfter must be later/, 'notAfter before notBefore')
})

t.test('names and key sizes out of range are refused before any key is made', async t => {
  rejectsWith(t, () => createCa({ commonName: '' }), 'EDGEFWD_ERR_USAGE', /1 to 64 characters/, 'empty CN')
  rejectsWith(t, () => issueCertificate(ca, { kind: 'client', commonName: 'x'.repeat(65) }), 'EDGEFWD_ERR_USAGE', /1 to 64/, 'long CN')
  rejectsWith(t, () => createCa({ commonName: 'a', keyBits: 1024 }), 'EDGEFWD_ERR_TLS_KEY_UNSUPPORTED', /2048 to 8192 bits, got 1024/, '1024 bits')
  rejectsWith(t, () => createCsr({ commonName: 'a', keyBits: 2048.5 }), 'EDGEFWD_ERR_TLS_KEY_UNSUPPORTED', /got 2048.5/, 'fractional bits')
})

t.test('a CSR: signed by its own key, subject and requested usage and names', async t => {
  const { csrPem, keyPem } = createCsr({ commonName: 'gw-7', organization: 'Acme', sans: ['gw-7.local', '10.0.0.7'] })
  t.match(csrPem, /^-----BEGIN CERTIFICATE REQUEST-----\n/)
  t.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/)
  const csr = forge.pki.certificationRequestFromPem(csrPem)
  t.ok(csr.verify())
  t.equal(csr.subject.getField('CN')?.value, 'gw-7')
  t.equal(csr.subject.getField('O')?.value, 'Acme')
  const request = csr.getAttribute({ name: 'extensionRequest' }) as { extensions: ForgeExtension[] }
  t.match(request.extensions.find(e => e.name === 'extKeyUsage'), { clientAuth: true })
  t.match(request.extensions.find(e => e.name === 'subjectAltName'), { altNames: [{ type: 2, value: 'gw-7.local' }, { type: 7, ip: '10.0.0.7' }] })
  const publicFromKey = createPrivateKey(keyPem)
  t.equal((csr.publicKey as forge.pki.rsa.PublicKey).n.toString(16), forge.pki.privateKeyFromPem(
    publicFromKey.export({ type: 'pkcs1', format: 'pem' }) as string).n.toString(16), 'the request is for the key returned')

  const server = forge.pki.certificationRequestFromPem(createCsr({ commonName: 'mqtt.example', kind: 'server' }).csrPem)
  const serverRequest = server.getAttribute({ name: 'extensionRequest' }) as { extensions: ForgeExtension[] }
  t.match(serverRequest.extensions.find(e => e.name === 'extKeyUsage'), { serverAuth: true })
  t.match(serverRequest.extensions.find(e => e.name === 'subjectAltName'), { altNames: [{ type: 2, value: 'mqtt.example' }] })
})

t.test('signing a CSR: subject and requested names kept, usage decided by the signer', async t => {
  const { csrPem, keyPem } = createCsr({ commonName: 'gw-8', organization: 'Acme', sans: ['gw-8.local'] })
  const client = new X509Certificate(signCsr(ca, csrPem, { kind: 'client' }))
  t.equal(client.subject, 'CN=gw-8\nO=Acme')
  t.equal(client.subjectAltName, 'DNS:gw-8.local')
  t.same(client.keyUsage, ['1.3.6.1.5.5.7.3.2'])
  t.ok(client.checkPrivateKey(createPrivateKey(keyPem)), 'the certificate is for the CSR\'s key')
  t.ok(chainsToCa(client.toString()))

  const server = new X509Certificate(signCsr(ca, csrPem, { kind: 'server', sans: ['10.1.1.1'], validityDays: 30 }))
  t.same(server.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'a client request signed as a server gets serverAuth only')
  t.equal(server.subjectAltName, 'DNS:gw-8.local, DNS:gw-8, IP Address:10.1.1.1')
  t.equal(Math.round((Date.parse(server.validTo) - Date.parse(server.validFrom)) / DAY_MS), 30)
})

t.test('signing refuses damaged requests and unusable CAs', async t => {
  const { csrPem } = createCsr({ commonName: 'gw-tamper' })
  const der = Buffer.from(csrPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64')
  const at = der.indexOf('gw-tamper')
  der[at] = 'G'.charCodeAt(0)
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`
  rejectsWith(t, () => signCsr(ca, tampered, { kind: 'client' }), 'EDGEFWD_ERR_TLS_PEM_INVALID', /signature does not verify/, 'altered CSR')
  rejectsWith(t, () => signCsr(ca, 'hello', { kind: 'client' }), 'EDGEFWD_ERR_TLS_PEM_INVALID', /not a PEM certificate signing request/, 'not PEM')
  rejectsWith(t, () => signCsr(ca, ca.certPem, { kind: 'client' }), 'EDGEFWD_ERR_TLS_PEM_INVALID', /not a PEM certificate signing request/, 'a certificate')

  const leaf = issueCertificate(ca, { kind: 'client', commonName: 'not-a-ca' })
  const expiredCa = createCa({ commonName: 'Old CA', keyBits: 2048, notBefore: new Date('2020-01-01T00:00:00Z'), validityDays: 30 })
  const cases: Array<[string, PemPair, ErrorCode, RegExp]> = [
    ['an expired CA', expiredCa, 'EDGEFWD_ERR_TLS_CERT_EXPIRED', /^the CA certificate expired on 2020-01-31T00:00:00\.000Z/],
    ['a leaf as CA', leaf, 'EDGEFWD_ERR_TLS_CERT_USAGE', /not a CA/],
    ['another CA\'s key', { certPem: ca.certPem, keyPem: leaf.keyPem }, 'EDGEFWD_ERR_TLS_KEY_MISMATCH', /does not belong/],
    ['an EC key', { certPem: ca.certPem, keyPem: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string },
      'EDGEFWD_ERR_TLS_KEY_UNSUPPORTED', /CA key is EC; .* RSA CA keys only/],
    ['an encrypted key', { certPem: ca.certPem, keyPem: createPrivateKey(ca.keyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }) as string },
      'EDGEFWD_ERR_TLS_KEY_PASSPHRASE', /encrypted/],
    ['a garbage key', { certPem: ca.certPem, keyPem: 'nope' }, 'EDGEFWD_ERR_TLS_PEM_INVALID', /CA key is not a readable PEM private key/],
    ['a garbage certificate', { certPem: 'nope', keyPem: ca.keyPem }, 'EDGEFWD_ERR_TLS_PEM_INVALID', /CA certificate is not an RSA certificate/],
  ]
  for (const [what, badCa, code, message] of cases) {
    rejectsWith(t, () => signCsr(badCa, csrPem, { kind: 'client' }), code, message, what)
    rejectsWith(t, () => issueCertificate(badCa, { kind: 'client', commonName: 'x', keyBits: 2048 }), code, message, `${what} (issue)`)
  }
})
