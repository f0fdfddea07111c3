import { createPrivateKey, X509Certificate } from 'node:crypto'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import * as fsPromises from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { parseConfigText } from '../../src/config/index.js'
import { ConfigError, type ErrorCode } from '../../src/errors.js'
import { readCertificates } from '../../src/pki/inspect.js'
import { daysLeft, loadTlsMaterial, TlsMaterialError, tlsMaterialOptions, type TlsMaterialOptions } from '../../src/pki/material.js'
import { ecKeyArgs, encryptKey, makeCa, makeCertificate, makeClient, makeEcSet, makeRsaSet, makeSelfSigned, writeSet } from '../helpers/test-pki.js'

const DAY = 86_400_000

/** Loads and expects a TlsMaterialError with `code` whose message names `file` and `configKey`. */
async function rejects (t: Test, options: TlsMaterialOptions, code: ErrorCode, file: string, configKey: string,
  context: Parameters<typeof loadTlsMaterial>[1] = {}): Promise<TlsMaterialError | undefined> {
  try {
    await loadTlsMaterial(options, context)
  } catch (err) {
    t.ok(err instanceof TlsMaterialError, 'a TlsMaterialError')
    if (!(err instanceof TlsMaterialError)) throw err
    t.equal(err.code, code, err.message)
    t.ok(err.message.startsWith(`${file} (${configKey}): `), `the message names ${configKey} and its file: ${err.message}`)
    t.equal(err.file, file)
    t.equal(err.configKey, configKey)
    t.type(err.hint, 'string', 'with a hint')
    return err
  }
  t.fail(`expected ${code}`)
  return undefined
}

// One CA and client for the whole file: RSA key generation is the slow part.
const ca = makeCa()
const good = makeRsaSet({ ca })

t.test('a good RSA set loads; the key comes out decrypted PKCS#8', async t => {
  const files = writeSet(t.testdir(), good)
  const material = await loadTlsMaterial(files)
  t.equal(material.info.subject, 'CN=gw-test')
  t.equal(material.info.issuer, 'CN=edgefwd test CA')
  t.equal(material.info.keyType, 'rsa')
  t.equal(material.info.keyDetail, 'RSA 2048')
  t.same(material.info.files, files)
  t.same(material.info.warnings, [])
  t.match(material.info.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
  t.equal(material.info.serial, new X509Certificate(good.cert).serialNumber)
  t.ok(material.info.notBefore instanceof Date && material.info.notAfter > material.info.notBefore)
  t.match(material.key, /^-----BEGIN PRIVATE KEY-----\n/)
  t.ok(new X509Certificate(material.cert).checkPrivateKey(createPrivateKey(material.key)))
  t.equal(new X509Certificate(material.ca).subject, 'CN=edgefwd test CA')
  t.equal(daysLeft(material, new Date(material.info.notAfter.getTime() - 10.5 * DAY)), 10, 'whole days left')
  t.equal(daysLeft(material, new Date(material.info.notAfter.getTime() + 1)), -1, 'negative once expired')
})

t.test('a good EC P-256 set made by openssl loads, and a P-384 client', async t => {
  const ec = makeEcSet()
  const material = await loadTlsMaterial(writeSet(t.testdir(), ec))
  t.equal(material.info.keyType, 'ec')
  t.equal(material.info.keyDetail, 'EC P-256')
  t.equal(material.info.subject, 'CN=gw-ec')
  t.match(material.key, /^-----BEGIN PRIVATE KEY-----\n/)

  const ec384 = makeEcSet({ curve: 'P-384' })
  t.equal((await loadTlsMaterial(writeSet(join(t.testdirName, '384'), ec384))).info.keyDetail, 'EC P-384')

  // `openssl ecparam -genkey` writes an EC PARAMETERS block before the key: still one key.
  const withParams = { ...ec, key: `-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n${ec.key}` }
  t.equal((await loadTlsMaterial(writeSet(join(t.testdirName, 'params'), withParams))).info.keyDetail, 'EC P-256')
})

t.test('encrypted keys: passphrase from a file or the environment', async t => {
  const dir = t.testdir()
  const plain = createPrivateKey(good.key).export({ type: 'pkcs8', format: 'pem' })
  const files = writeSet(dir, { ...good, key: encryptKey(good.key, 'correct horse') })
  const passFile = join(dir, 'pass')
  writeFileSync(passFile, 'correct horse\n', { mode: 0o600 })
  chmodSync(passFile, 0o600)

  const fromFile = await loadTlsMaterial({ ...files, keyPassphraseFile: passFile })
  t.equal(fromFile.key, plain, 'decrypted (the trailing newline of the file is not part of the passphrase)')
  const fromEnv = await loadTlsMaterial({ ...files, keyPassphraseEnv: 'GW_KEY_PASS' }, { env: { GW_KEY_PASS: 'correct horse' } })
  t.equal(fromEnv.key, plain)

  const legacy = writeSet(join(dir, 'legacy'), { ...good, key: encryptKey(good.key, 'correct horse', 'pkcs1') })
  t.equal((await loadTlsMaterial({ ...legacy, keyPassphraseFile: passFile })).key, plain, 'legacy PEM encryption (Proc-Type) too')

  const ec = makeEcSet()
  const ecFiles = writeSet(join(dir, 'ec'), { ...ec, key: encryptKey(ec.key, 'p') })
  t.equal((await loadTlsMaterial({ ...ecFiles, keyPassphraseEnv: 'P' }, { env: { P: 'p' } })).info.keyDetail, 'EC P-256')

  t.ok(await loadTlsMaterial({ ...writeSet(join(dir, 'plain'), good), keyPassphraseEnv: 'UNSET' }, { env: {} }),
    'an unencrypted key needs no passphrase, and the variable is not looked at')
})

t.test('EDGEFWD_ERR_TLS_KEY_PASSPHRASE: missing, wrong, or a variable that is not set', async t => {
  const dir = t.testdir()
  const files = writeSet(dir, { ...good, key: encryptKey(good.key, 'right') })
  const err = await rejects(t, files, 'EDGEFWD_ERR_TLS_KEY_PASSPHRASE', files.key, 'tls.key')
  t.match(err?.message, /encrypted and no passphrase is configured/)
  t.match(err?.hint, /tls\.keyPassphraseFile/)

  const passFile = join(dir, 'pass')
  writeFileSync(passFile, 'wrong')
  chmodSync(passFile, 0o600)
  t.match((await rejects(t, { ...files, keyPassphraseFile: passFile }, 'EDGEFWD_ERR_TLS_KEY_PASSPHRASE', files.key, 'tls.key'))?.message,
    `the passphrase from ${passFile} (tls.keyPassphraseFile) does not decrypt the private key`)
  t.match((await rejects(t, { ...files, keyPassphraseEnv: 'GW_PASS' }, 'EDGEFWD_ERR_TLS_KEY_PASSPHRASE', files.key, 'tls.key', { env: {} }))?.message,
    'the environment variable GW_PASS (tls.keyPassphraseEnv) is not set')
  t.match((await rejects(t, { ...files, keyPassphraseEnv: 'GW_PASS' }, 'EDGEFWD_ERR_TLS_KEY_PASSPHRASE', files.key, 'tls.key',
    { env: { GW_PASS: 'nope' } }))?.message, 'the environment variable GW_PASS (tls.keyPassphraseEnv) does not decrypt')

  const missingPass = join(dir, 'missing-pass')
  t.match((await rejects(t, { ...files, keyPassphraseFile: missingPass }, 'EDGEFWD_ERR_TLS_FILE_UNREADABLE', missingPass, 'tls.keyPassphraseFile'))?.message,
    'no such file', 'an unreadable passphrase file is FILE_UNREADABLE, naming it')
})

t.test('EDGEFWD_ERR_TLS_FILE_UNREADABLE: missing file, a directory, permission denied', async t => {
  const dir = t.testdir({ sub: {} })
  const files = writeSet(dir, good)
  const missing = join(dir, 'nope.pem')
  t.match((await rejects(t, { ...files, ca: missing }, 'EDGEFWD_ERR_TLS_FILE_UNREADABLE', missing, 'tls.ca'))?.message, 'cannot read the file: no such file')
  t.match((await rejects(t, { ...files, cert: join(dir, 'sub') }, 'EDGEFWD_ERR_TLS_FILE_UNREADABLE', join(dir, 'sub'), 'tls.cert'))?.message,
    'is a directory, not a file')
  await rejects(t, { ...files, key: missing }, 'EDGEFWD_ERR_TLS_FILE_UNREADABLE', missing, 'tls.key')
  await rejects(t, { ...files, clientCa: missing }, 'EDGEFWD_ERR_TLS_FILE_UNREADABLE', missing, 'tls.clientCa')
  const prefixed = await loadTlsMaterial({ ...files, ca: missing, configPath: 'uplink.tls' }).catch((e: unknown) => e)
  t.match(prefixed, { configKey: 'uplink.tls.ca' }, 'configPath names the key where the section lives')

  // Tests run as root, which reads any file whatever its mode: the EACCES path is reached by mock.
  const mocked = await t.mockImport<typeof import('../../src/pki/material.js')>('../../src/pki/material.js', {
    'node:fs/promises': {
      ...fsPromises,
      readFile: async (path: string) => {
        if (path === files.cert) throw Object.assign(new Error(`EACCES: permission denied, open '${path}'`), { code: 'EACCES' })
        return await fsPromises.readFile(path)
      },
    },
  })
  const denied = await mocked.loadTlsMaterial(files).catch((e: unknown) => e)
  t.match(denied, { code: 'EDGEFWD_ERR_TLS_FILE_UNREADABLE', file: files.cert, message: `${files.cert} (tls.cert): cannot read the file: permission denied` })
})

t.test('EDGEFWD_ERR_TLS_KEY_PERMISSIONS: a key or passphrase file open to group or others', async t => {
  const dir = t.testdir()
  for (const mode of [0o644, 0o640, 0o604, 0o620]) {
    const files = writeSet(join(dir, mode.toString(8)), good, { keyMode: mode })
    const err = await rejects(t, files, 'EDGEFWD_ERR_TLS_KEY_PERMISSIONS', files.key, 'tls.key')
    t.match(err?.message, `mode 0${mode.toString(8)} lets group or others read or write this secret`)
    t.equal(err?.hint, `chmod 600 ${files.key} (and chown it to the user edgefwd runs as)`)
  }
  t.ok(await loadTlsMaterial(writeSet(join(dir, '400'), good, { keyMode: 0o400 })), '0400 is fine')

  const files = writeSet(join(dir, 'enc'), { ...good, key: encryptKey(good.key, 'pw') })
  const passFile = join(dir, 'pass')
  writeFileSync(passFile, 'pw')
  chmodSync(passFile, 0o644)
  await rejects(t, { ...files, keyPassphraseFile: passFile }, 'EDGEFWD_ERR_TLS_KEY_PERMISSIONS', passFile, 'tls.keyPassphraseFile')
})

t.test('EDGEFWD_ERR_TLS_PEM_INVALID: no certificate, a key where a certificate belongs, DER, two keys', async t => {
  const dir = t.testdir()
  const files = writeSet(dir, good)
  const write = (name: string, data: string | Buffer, mode = 0o644): string => {
    const path = join(dir, name)
    writeFileSync(path, data)
    chmodSync(path, mode)
    return path
  }
  const garbage = write('garbage.pem', 'hello\n')
  t.match((await rejects(t, { ...files, ca: garbage }, 'EDGEFWD_ERR_TLS_PEM_INVALID', garbage, 'tls.ca'))?.message, 'holds no PEM certificate')
  const keyAsCert = write('key-as-cert.pem', good.key)
  t.match((await rejects(t, { ...files, cert: keyAsCert }, 'EDGEFWD_ERR_TLS_PEM_INVALID', keyAsCert, 'tls.cert'))?.message,
    'holds a private key where a certificate belongs')
  const certAsKey = write('cert-as-key.pem', good.cert, 0o600)
  t.match((await rejects(t, { ...files, key: certAsKey }, 'EDGEFWD_ERR_TLS_PEM_INVALID', certAsKey, 'tls.key'))?.message,
    'holds a certificate where the private key belongs')
  const der = write('ca.der', new X509Certificate(good.ca).raw)
  t.match((await rejects(t, { ...files, ca: der }, 'EDGEFWD_ERR_TLS_PEM_INVALID', der, 'tls.ca'))?.hint, 'openssl x509 -inform der')
  const damaged = write('damaged.pem', good.cert.replace(/\n[A-Za-z0-9+/]{20}/, '\nAAAAAAAAAAAAAAAAAAAA'))
  t.match((await rejects(t, { ...files, cert: damaged }, 'EDGEFWD_ERR_TLS_PEM_INVALID', damaged, 'tls.cert'))?.message, 'holds a damaged certificate: its certificate')
  const twoKeys = write('two.key', good.key + good.caPair.keyPem, 0o600)
  t.match((await rejects(t, { ...files, key: twoKeys }, 'EDGEFWD_ERR_TLS_PEM_INVALID', twoKeys, 'tls.key'))?.message, 'holds 2 private keys')
  const derKey = write('key.der', createPrivateKey(good.key).export({ type: 'pkcs8', format: 'der' }), 0o600)
  t.match((await rejects(t, { ...files, key: derKey }, 'EDGEFWD_ERR_TLS_PEM_INVALID', derKey, 'tls.key'))?.hint, 'openssl pkey -inform der')
  const brokenKey = write('broken.key', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', 0o600)
  t.match((await rejects(t, { ...files, key: brokenKey }, 'EDGEFWD_ERR_TLS_PEM_INVALID', brokenKey, 'tls.key'))?.message, 'the private key cannot be parsed')
  const noKey = write('empty.key', '', 0o600)
  t.match((await rejects(t, { ...files, key: noKey }, 'EDGEFWD_ERR_TLS_PEM_INVALID', noKey, 'tls.key'))?.message, 'holds no PEM private key')
})

t.test('EDGEFWD_ERR_TLS_KEY_UNSUPPORTED: small RSA, other curves, other key types', async t => {
  const dir = t.testdir()
  const cases = [
    { label: 'rsa1024', pair: makeCertificate({ commonName: 'small', keyBits: 1024, eku: ['clientAuth'] }), text: 'the private key is RSA 1024; edgefwd needs RSA of at least 2048 bits' },
    { label: 'p521', pair: makeSelfSigned(ecKeyArgs('P-521').slice(1)), text: 'the private key is EC on curve secp521r1; edgefwd uses P-256 or P-384' },
    { label: 'ed25519', pair: makeSelfSigned(['ed25519']), text: 'the private key is ED25519' },
  ]
  for (const { label, pair, text } of cases) {
    const files = writeSet(join(dir, label), { ca: good.ca, cert: pair.certPem, key: pair.keyPem })
    t.match((await rejects(t, files, 'EDGEFWD_ERR_TLS_KEY_UNSUPPORTED', files.key, 'tls.key'))?.message, text, label)
  }
})

t.test('EDGEFWD_ERR_TLS_KEY_MISMATCH: the key of another certificate', async t => {
  const other = makeClient(ca)
  const files = writeSet(t.testdir(), { ...good, key: other.keyPem })
  const err = await rejects(t, files, 'EDGEFWD_ERR_TLS_KEY_MISMATCH', files.key, 'tls.key')
  t.match(err?.message, `does not belong to the certificate "CN=gw-test" in ${files.cert} (tls.cert)`)
  const ec = makeEcSet()
  const mixed = writeSet(join(t.testdirName, 'mixed'), { ...ec, key: good.key })
  t.ok(await rejects(t, { ...mixed, checkClientChain: false }, 'EDGEFWD_ERR_TLS_KEY_MISMATCH', mixed.key, 'tls.key'), 'an RSA key for an EC certificate')
})

t.test('EDGEFWD_ERR_TLS_CERT_EXPIRED and _NOT_YET_VALID, with the dates', async t => {
  const dir = t.testdir()
  const notBefore = new Date('2020-01-01T00:00:00Z')
  const notAfter = new Date('2021-01-01T00:00:00Z')
  const longCa = makeCa({ notBefore: new Date('2019-01-01T00:00:00Z'), notAfter: new Date(Date.now() + 1000 * DAY) })
  const expired = writeSet(join(dir, 'expired'), makeRsaSet({ ca: longCa, notBefore, notAfter }))
  const err = await rejects(t, expired, 'EDGEFWD_ERR_TLS_CERT_EXPIRED', expired.cert, 'tls.cert')
  t.match(err?.message, /the client certificate "CN=gw-test" expired on 2021-01-01T00:00:00\.000Z \(now \d{4}-\d\d-\d\dT/)

  const future = writeSet(join(dir, 'future'), makeRsaSet({ ca, notBefore: new Date(Date.now() + 2 * DAY), notAfter: new Date(Date.now() + 400 * DAY) }))
  const early = await rejects(t, future, 'EDGEFWD_ERR_TLS_CERT_NOT_YET_VALID', future.cert, 'tls.cert')
  t.match(early?.message, /is not valid before \d{4}-/)
  t.match(early?.hint, 'clock')

  const files = writeSet(join(dir, 'good'), good)
  await rejects(t, files, 'EDGEFWD_ERR_TLS_CERT_EXPIRED', files.cert, 'tls.cert', { now: new Date(Date.now() + 500 * DAY) })
  const at = new Date('2020-06-01T00:00:00Z')
  t.ok(await loadTlsMaterial(expired, { now: at }), 'validity is checked against the injected clock')
})

t.test('CA bundles: every certificate a CA; out-of-date ones are an error only when none is left', async t => {
  const dir = t.testdir()
  const oldCa = makeCa({ commonName: 'old CA', notBefore: new Date('2015-01-01Z'), notAfter: new Date('2016-01-01Z') })
  const alone = writeSet(join(dir, 'alone'), { ...good, ca: oldCa.certPem })
  const err = await rejects(t, { ...alone, checkClientChain: false }, 'EDGEFWD_ERR_TLS_CERT_EXPIRED', alone.ca, 'tls.ca')
  t.match(err?.message, 'CA certificate "CN=old CA" expired on 2016-01-01T00:00:00.000Z')

  const bundle = writeSet(join(dir, 'bundle'), { ...good, ca: oldCa.certPem + good.ca })
  const material = await loadTlsMaterial(bundle)
  t.equal(material.info.warnings.length, 1)
  t.match(material.info.warnings[0], `${bundle.ca} (tls.ca): CA certificate "CN=old CA" is out of its validity`)
  t.equal(material.ca, new X509Certificate(good.ca).toString(), 'and left out of the bundle used')

  // The anchor the client chains to must itself be valid, whatever else the bundle holds.
  const expiredAnchor = makeCa({ commonName: 'anchor', notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() + 1 * DAY) })
  // makeCertificate, not generate.ts, which clamps a leaf to its CA's notAfter.
  const client = makeCertificate({ commonName: 'gw-test', issuer: expiredAnchor, eku: ['clientAuth'], notAfter: new Date(Date.now() + 30 * DAY) })
  const anchorFiles = writeSet(join(dir, 'anchor'), { ca: good.ca + expiredAnchor.certPem, cert: client.certPem, key: client.keyPem })
  await rejects(t, anchorFiles, 'EDGEFWD_ERR_TLS_CERT_EXPIRED', anchorFiles.ca, 'tls.ca', { now: new Date(Date.now() + 2 * DAY) })
})

t.test('EDGEFWD_ERR_TLS_CERT_USAGE: serverAuth only, a non-CA in a bundle or chain; no EKU at all is fine', async t => {
  const dir = t.testdir()
  const server = writeSet(join(dir, 'server'), makeRsaSet({ ca, kind: 'server', commonName: 'broker.local' }))
  t.match((await rejects(t, server, 'EDGEFWD_ERR_TLS_CERT_USAGE', server.cert, 'tls.cert'))?.message,
    'has extended key usage serverAuth but not clientAuth (1.3.6.1.5.5.7.3.2)')

  const noEku = makeCertificate({ commonName: 'any-purpose', issuer: ca })
  t.equal(new X509Certificate(noEku.certPem).keyUsage, undefined, 'the certificate really has no EKU extension')
  t.ok(await loadTlsMaterial(writeSet(join(dir, 'no-eku'), { ca: good.ca, cert: noEku.certPem, key: noEku.keyPem })),
    'no extKeyUsage extension means any purpose (RFC 5280 4.2.1.12)')

  const ec = makeEcSet({ clientEku: 'serverAuth,codeSigning' })
  const ecFiles = writeSet(join(dir, 'ec'), ec)
  t.match((await rejects(t, ecFiles, 'EDGEFWD_ERR_TLS_CERT_USAGE', ecFiles.cert, 'tls.cert'))?.message, 'serverAuth, codeSigning but not clientAuth')

  const leafAsCa = writeSet(join(dir, 'leaf-as-ca'), { ...good, ca: good.ca + good.cert })
  t.match((await rejects(t, leafAsCa, 'EDGEFWD_ERR_TLS_CERT_USAGE', leafAsCa.ca, 'tls.ca'))?.message,
    'certificate 2 "CN=gw-test" is not a CA certificate')

  const extra = makeClient(ca, { commonName: 'not-an-intermediate' })
  const badChain = writeSet(join(dir, 'bad-chain'), { ...good, cert: good.cert + extra.certPem })
  t.match((await rejects(t, badChain, 'EDGEFWD_ERR_TLS_CERT_USAGE', badChain.cert, 'tls.cert'))?.message,
    'chain certificate 2 "CN=not-an-intermediate" follows the client certificate but is not a CA certificate')
})

t.test('EDGEFWD_ERR_TLS_CERT_UNTRUSTED: the client chain is checked link by link', async t => {
  const dir = t.testdir()
  const otherCa = makeCa({ commonName: 'other CA' })
  const foreign = writeSet(join(dir, 'foreign'), { ...makeRsaSet({ ca: otherCa }), ca: good.ca })
  const err = await rejects(t, foreign, 'EDGEFWD_ERR_TLS_CERT_UNTRUSTED', foreign.cert, 'tls.cert')
  t.match(err?.message, `the client certificate does not chain to ${foreign.ca} (tls.ca): "CN=gw-test" was issued by "CN=other CA", which is neither in`)
  t.match(err?.message, 'it holds "CN=edgefwd test CA"')
  t.match(err?.hint, 'tls.checkClientChain: false')
  t.ok(await loadTlsMaterial({ ...foreign, checkClientChain: false }), 'checkClientChain: false skips it (cloud-issued certificates)')

  // A CA regenerated under the same name: names match, signatures do not.
  const twin = makeCa()
  const twinFiles = writeSet(join(dir, 'twin'), { ...makeRsaSet({ ca: twin }), ca: good.ca })
  t.match((await rejects(t, twinFiles, 'EDGEFWD_ERR_TLS_CERT_UNTRUSTED', twinFiles.cert, 'tls.cert'))?.message, 'was the CA regenerated?')

  // clientCa, when set, is what the client must chain to; ca keeps verifying the broker.
  const clientCaFile = join(dir, 'client-ca.pem')
  writeFileSync(clientCaFile, otherCa.certPem)
  t.ok(await loadTlsMaterial({ ...foreign, clientCa: clientCaFile }))
  const wrongClientCa = writeSet(join(dir, 'good'), good)
  await rejects(t, { ...wrongClientCa, clientCa: clientCaFile }, 'EDGEFWD_ERR_TLS_CERT_UNTRUSTED', wrongClientCa.cert, 'tls.cert')
})

t.test('a chain through an intermediate in the certificate file', async t => {
  const dir = t.testdir()
  const root = makeCertificate({ commonName: 'root', isCa: true, notAfter: new Date(Date.now() + 100 * DAY) })
  const intermediate = makeCertificate({ commonName: 'intermediate', isCa: true, issuer: root })
  const leaf = makeCertificate({ commonName: 'gw-chained', issuer: intermediate, eku: ['clientAuth'] })
  const files = writeSet(join(dir, 'ok'), { ca: root.certPem, cert: leaf.certPem + intermediate.certPem, key: leaf.keyPem })
  const material = await loadTlsMaterial(files)
  t.equal(material.info.subject, 'CN=gw-chained')
  t.equal(material.cert.match(/BEGIN CERTIFICATE/g)?.length, 2, 'the chain is kept for the handshake')

  const missing = writeSet(join(dir, 'missing'), { ca: root.certPem, cert: leaf.certPem, key: leaf.keyPem })
  t.match((await rejects(t, missing, 'EDGEFWD_ERR_TLS_CERT_UNTRUSTED', missing.cert, 'tls.cert'))?.message, 'was issued by "CN=intermediate"')

  const pinned = writeSet(join(dir, 'pinned'), { ca: intermediate.certPem, cert: leaf.certPem, key: leaf.keyPem })
  t.ok(await loadTlsMaterial(pinned), 'an intermediate in the CA file is an anchor too')

  const oldIntermediate = makeCertificate({ commonName: 'old intermediate', isCa: true, issuer: root, notBefore: new Date('2019-01-01Z'), notAfter: new Date('2020-01-01Z') })
  const oldLeaf = makeCertificate({ commonName: 'gw-old', issuer: oldIntermediate, eku: ['clientAuth'] })
  const stale = writeSet(join(dir, 'stale'), { ca: root.certPem, cert: oldLeaf.certPem + oldIntermediate.certPem, key: oldLeaf.keyPem })
  t.match((await rejects(t, stale, 'EDGEFWD_ERR_TLS_CERT_EXPIRED', stale.cert, 'tls.cert'))?.message, 'chain certificate 2 "CN=old intermediate" expired')
})

t.test('tlsMaterialOptions: from the config section; missing paths named', async t => {
  const config = parseConfigText('tls:\n  ca: /etc/edgefwd/ca.pem\n  cert: c.pem\n  key: k.pem\n  keyPassphraseEnv: GW_PASS\n  checkClientChain: false\n', 'c.yaml')
  t.same(tlsMaterialOptions(config.tls), { ca: '/etc/edgefwd/ca.pem', cert: 'c.pem', key: 'k.pem', checkClientChain: false, keyPassphraseEnv: 'GW_PASS' })
  const err = (() => { try { tlsMaterialOptions(parseConfigText('tls: {ca: a.pem}', 'c.yaml').tls, 'c.yaml') } catch (e) { return e } })()
  t.ok(err instanceof ConfigError)
  t.match((err as ConfigError).message, 'c.yaml: tls.cert: is required for a TLS connection')
  t.match((err as ConfigError).message, 'c.yaml: tls.key: is required')
})

t.test('mixed curves: a P-384 CA signing a P-256 client', async t => {
  const material = await loadTlsMaterial(writeSet(t.testdir(), makeEcSet({ curve: 'P-384', clientCurve: 'P-256' })))
  t.equal(material.info.keyDetail, 'EC P-256')
})

t.test('certs inspect reads a certificate file by the same rules as the loader run uses', async t => {
  const dir = t.testdir()
  const files = writeSet(dir, good)
  const cases: Array<[string, string | Buffer]> = [
    ['der.crt', new X509Certificate(good.cert).raw],
    ['key-as-cert.pem', good.key],
    ['csr.pem', '-----BEGIN CERTIFICATE REQUEST-----\nMII=\n-----END CERTIFICATE REQUEST-----\n'],
    ['garbage.pem', 'hello\n'],
    ['damaged.pem', good.cert.replace(/\n[A-Za-z0-9+/]{20}/, '\nAAAAAAAAAAAAAAAAAAAA')],
    ['good.pem', good.cert]
  ]
  for (const [name, data] of cases) {
    const path = join(dir, name)
    writeFileSync(path, data)
    let inspected: string
    try { inspected = `ok ${readCertificates(readFileSync(path), path).length}` } catch (err) { inspected = `refused ${(err as { code?: string }).code ?? '?'}` }
    let loaded: string
    try { loaded = `ok ${(await loadTlsMaterial({ ...files, cert: path })).info.files.cert}` } catch (err) { loaded = `refused ${(err as { code?: string }).code ?? '?'}` }
    // A key where the certificate is, or a CSR, also fails the loader's key check: compare the verdicts.
    t.equal(inspected.split(' ')[0], loaded.split(' ')[0], `${name}: inspect ${inspected}, run ${loaded}`)
  }
})

