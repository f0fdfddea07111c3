import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import {
  encodeMessage, generateKeyPair, keyIdOf, loadPrivateKey, loadPublicKeys, MAX_MESSAGE_BYTES, signDocument, verifyMessage,
  type OperatorKey, type SignedMessage,
} from '../../src/control/signing.js'
import { isEdgefwdError } from '../../src/errors.js'

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const docBytes = utf8(JSON.stringify({ version: 7, config: { log: { level: 'debug' } } }, null, 2))

function pems (type: 'rsa' | 'ec', options: object): { publicPem: string, privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync(type as 'rsa', options as { modulusLength: number })
  return {
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  }
}

const ed = generateKeyPair()
const ed2 = generateKeyPair()
const rsa = pems('rsa', { modulusLength: 2048 })
const rsaSmall = pems('rsa', { modulusLength: 1024 })
const ec = pems('ec', { namedCurve: 'P-256' })
const rsaPkcs1Private = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()

const dir = t.testdir({
  'ed.pub': ed.publicPem,
  'ed.key': ed.privatePem,
  'ed2.pub': ed2.publicPem,
  'ed2.key': ed2.privatePem,
  'rsa.pub': rsa.publicPem,
  'rsa.key': rsa.privatePem,
  'rsa1024.pub': rsaSmall.publicPem,
  'ec.pub': ec.publicPem,
  'ec.key': ec.privatePem,
  'rsa-pkcs1.key': rsaPkcs1Private,
  'not-pem.pub': 'hello, I am not a key\n',
  'garbage.pub': '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n',
  'two.pub': ed.publicPem + ed2.publicPem,
})
mkdirSync(join(dir, 'a-directory.pub'))
const p = (name: string): string => join(dir, name)

const [edKey, ed2Key, rsaKey] = await loadPublicKeys([p('ed.pub'), p('ed2.pub'), p('rsa.pub')]) as [OperatorKey, OperatorKey, OperatorKey]
const edPrivate = await loadPrivateKey(p('ed.key'))
const rsaPrivate = await loadPrivateKey(p('rsa.key'))

function messageBytes (m: SignedMessage): Uint8Array {
  return utf8(encodeMessage(m))
}

function flipBit (base64: string, byte: number): string {
  const bytes = Buffer.from(base64, 'base64')
  bytes[byte] = (bytes[byte] as number) ^ 0x01
  return bytes.toString('base64')
}

t.test('loadPublicKeys: key ids, algorithms and paths', async t => {
  t.equal(edKey.algorithm, 'ed25519')
  t.equal(rsaKey.algorithm, 'rsa-pss-sha256')
  t.equal(edKey.path, p('ed.pub'))
  t.match(edKey.keyId, /^[0-9a-f]{16}$/)
  t.not(edKey.keyId, ed2Key.keyId)
  t.equal(edKey.keyId, keyIdOf(edPrivate), 'the private key has the id of its public half')
  t.equal(rsaKey.keyId, keyIdOf(createPublicKey(rsa.privatePem)))
  t.same(await loadPublicKeys([]), [])
})

for (const [name, privateKey, algorithm] of [['Ed25519', () => edPrivate, 'ed25519'], ['RSA-PSS', () => rsaPrivate, 'rsa-pss-sha256']] as const) {
  t.test(`${name}: sign then verify round trip`, async t => {
    const signed = signDocument(docBytes, privateKey())
    t.equal(signed.algorithm, algorithm)
    t.same(Buffer.from(signed.document, 'base64'), Buffer.from(docBytes), 'the document is carried byte for byte')
    const result = verifyMessage(messageBytes(signed), [edKey, ed2Key, rsaKey])
    t.ok(result.ok, JSON.stringify(result))
    if (!result.ok) return
    t.same(Buffer.from(result.document), Buffer.from(docBytes))
    t.equal(result.keyId, algorithm === 'ed25519' ? edKey.keyId : rsaKey.keyId)
  })

  t.test(`${name}: a flipped bit in the document or the signature is bad_signature`, async t => {
    const signed = signDocument(docBytes, privateKey())
    for (const byte of [0, 10, docBytes.length - 1]) {
      const result = verifyMessage(messageBytes({ ...signed, document: flipBit(signed.document, byte) }), [edKey, rsaKey])
      t.match(result, { ok: false, reason: 'bad_signature', detail: /does not verify with key/ }, `document byte ${byte}`)
    }
    for (const byte of [0, 31, 63]) {
      const result = verifyMessage(messageBytes({ ...signed, signature: flipBit(signed.signature, byte) }), [edKey, rsaKey])
      t.match(result, { ok: false, reason: 'bad_signature', detail: /does not verify with key/ }, `signature byte ${byte}`)
    }
    const short = Buffer.from(signed.signature, 'base64').subarray(0, 10).toString('base64')
    t.match(verifyMessage(messageBytes({ ...signed, signature: short }), [edKey, rsaKey]), { ok: false, reason: 'bad_signature' }, 'truncated signature')
  })
}

t.test('a signature by another key, claiming a trusted key id, does not verify', async t => {
  const forged = { ...signDocument(docBytes, await loadPrivateKey(p('ed2.key'))), keyId: edKey.keyId }
  t.match(verifyMessage(messageBytes(forged), [edKey]), { ok: false, reason: 'bad_signature', detail: `the signature does not verify with key ${edKey.keyId} (${p('ed.pub')})` })
})

t.test('an unknown key id is bad_signature naming the key id', async t => {
  const signed = signDocument(docBytes, await loadPrivateKey(p('ed2.key')))
  const result = verifyMessage(messageBytes(signed), [edKey, rsaKey])
  t.match(result, { ok: false, reason: 'bad_signature' })
  if (result.ok) return
  t.match(result.detail, `signed by key ${ed2Key.keyId}, which is not among the operator keys (${edKey.keyId}, ${rsaKey.keyId})`)
  t.match(verifyMessage(messageBytes(signed), []), { ok: false, detail: /none configured/ })
})

t.test('an algorithm that does not match the key type is bad_signature', async t => {
  const edSigned = signDocument(docBytes, edPrivate)
  t.match(verifyMessage(messageBytes({ ...edSigned, algorithm: 'rsa-pss-sha256' }), [edKey]),
    { ok: false, reason: 'bad_signature', detail: `algorithm rsa-pss-sha256 does not match key ${edKey.keyId} (${p('ed.pub')}), an ed25519 key` })
  const rsaSigned = signDocument(docBytes, rsaPrivate)
  t.match(verifyMessage(messageBytes({ ...rsaSigned, algorithm: 'ed25519' }), [rsaKey]),
    { ok: false, reason: 'bad_signature', detail: /algorithm ed25519 does not match key .* an rsa-pss-sha256 key/ })
})

t.test('malformed messages are bad_signature with a specific detail', async t => {
  const good = signDocument(docBytes, edPrivate)
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['not JSON', utf8('{"document": '), /not UTF-8 JSON/],
    ['not UTF-8', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), /not UTF-8 JSON/],
    ['an array', utf8('[]'), /not a JSON object/],
    ['null', utf8('null'), /not a JSON object/],
    ['unknown field', utf8(JSON.stringify({ ...good, extra: 1 })), /unknown fields: extra/],
    ['document not base64', utf8(JSON.stringify({ ...good, document: 'not base64!' })), /"document" is not a non-empty base64 string/],
    ['document missing', utf8(JSON.stringify({ ...good, document: undefined })), /"document" is not/],
    ['document empty', utf8(JSON.stringify({ ...good, document: '' })), /"document" is not/],
    ['signature a number', utf8(JSON.stringify({ ...good, signature: 5 })), /"signature" is not a non-empty base64 string/],
    ['signature bad padding', utf8(JSON.stringify({ ...good, signature: 'abc' })), /"signature" is not/],
    ['algorithm unknown', utf8(JSON.stringify({ ...good, algorithm: 'hmac-sha256' })), /"algorithm" must be one of ed25519, rsa-pss-sha256, got "hmac-sha256"/],
    ['keyId not hex', utf8(JSON.stringify({ ...good, keyId: 'XYZ' })), /"keyId" is not 16 lowercase hex digits/],
    ['too large', utf8(' '.repeat(MAX_MESSAGE_BYTES + 1)), /over the 262144-byte limit; not parsed/],
  ]
  for (const [name, bytes, detail] of cases) {
    t.match(verifyMessage(bytes, [edKey]), { ok: false, reason: 'bad_signature', detail }, name)
  }
  t.ok(verifyMessage(utf8(` ${encodeMessage(good)}\n`), [edKey]).ok, 'surrounding white space is fine')
})

t.test('encodeMessage: compact JSON, fixed field order', async t => {
  const m = { keyId: '0123456789abcdef', algorithm: 'ed25519', signature: 'c2ln', document: 'ZG9j' } as const
  t.equal(encodeMessage(m), '{"document":"ZG9j","signature":"c2ln","algorithm":"ed25519","keyId":"0123456789abcdef"}')
})

async function keyError (t: Test, promise: Promise<unknown>, message: RegExp): Promise<void> {
  const err = await promise.then(() => undefined, (e: unknown) => e)
  t.ok(isEdgefwdError(err, 'EDGEFWD_ERR_CONTROL_KEY'), `EDGEFWD_ERR_CONTROL_KEY: ${String(err)}`)
  t.match((err as Error).message, message)
}

t.test('bad public key files: EDGEFWD_ERR_CONTROL_KEY naming the file and the problem', async t => {
  const cases: Array<[string, RegExp]> = [
    ['missing.pub', /missing\.pub cannot be read as the operator public key: no such file/],
    ['a-directory.pub', /a-directory\.pub cannot be read as the operator public key: it is a directory/],
    ['not-pem.pub', /not-pem\.pub is not a PEM file/],
    ['ed.key', /ed\.key is a private key \(PRIVATE KEY\), where an operator public key belongs/],
    ['rsa-pkcs1.key', /rsa-pkcs1\.key is a private key \(RSA PRIVATE KEY\)/],
    ['rsa1024.pub', /rsa1024\.pub is a 1024-bit RSA key; at least 2048 bits are required/],
    ['ec.pub', /ec\.pub is an unsupported key type \(ec\)/],
    ['garbage.pub', /garbage\.pub is not a parseable public key/],
    ['two.pub', /two\.pub holds 2 PEM blocks/],
  ]
  for (const [name, message] of cases) await keyError(t, loadPublicKeys([p('ed.pub'), p(name)]), message)
})

t.test('bad private key files: EDGEFWD_ERR_CONTROL_KEY', async t => {
  const encrypted = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }).toString()
  const more = t.testdir({ 'enc.key': encrypted })
  await keyError(t, loadPrivateKey(p('ed.pub')), /ed\.pub is a public key; signing needs the private key/)
  await keyError(t, loadPrivateKey(join(more, 'enc.key')), /enc\.key is an encrypted private key/)
  await keyError(t, loadPrivateKey(p('rsa-pkcs1.key')), /holds a "RSA PRIVATE KEY" PEM block, not a PKCS#8 "PRIVATE KEY" block/)
  await keyError(t, loadPrivateKey(p('ec.key')), /unsupported key type \(ec\)/)
  await keyError(t, loadPrivateKey(p('nope.key')), /nope\.key cannot be read as the operator private key: no such file/)
  t.throws(() => signDocument(docBytes, edKey.key as KeyObject), { code: 'EDGEFWD_ERR_CONTROL_KEY', message: /is not a private key/ })
})
