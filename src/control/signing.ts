/**
 * Signatures of remote configuration updates: operator keys, signing (`edgefwd config sign`)
 * and verification on the gateway. The message format is described at the top of update.ts.
 *
 * Two algorithms, chosen by the key's type so a message can never pick a weaker one than its key:
 * - `ed25519`: crypto.sign(null, ...) (Ed25519 hashes internally).
 * - `rsa-pss-sha256`: RSA-PSS, SHA-256, MGF1 with SHA-256 (OpenSSL's default: the signature's
 *   digest), salt length 32. RSA keys under 2048 bits are refused.
 * A key's id is the first 16 hex digits of the SHA-256 of its SPKI DER public key: 64 bits is
 * plenty to pick among the handful of keys a gateway trusts, and it is not a security boundary
 * (the signature is).
 *
 * Key files are PEM with exactly one block: public keys SPKI ("PUBLIC KEY"), private keys
 * PKCS#8 ("PRIVATE KEY", unencrypted). The label is checked before parsing because node's
 * createPublicKey() accepts a private key and silently derives its public half: a private key
 * copied onto a gateway by mistake must be refused loudly, not used.
 */
import {
  constants, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject,
} from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { EdgefwdError } from '../errors.js'

export const SIGNATURE_ALGORITHMS = ['ed25519', 'rsa-pss-sha256'] as const
export type SignatureAlgorithm = typeof SIGNATURE_ALGORITHMS[number]

export const MIN_RSA_BITS = 2048
export const RSA_PSS_SALT_LENGTH = 32
/** The largest message verifyMessage() will parse; update.ts applies the same limit to the document. */
export const MAX_MESSAGE_BYTES = 256 * 1024

export interface OperatorKey {
  keyId: string
  algorithm: SignatureAlgorithm
  /** A public key. */
  key: KeyObject
  /** The file it came from, for messages. */
  path: string
}

/** The message published on the config topic (field meanings: update.ts). */
export interface SignedMessage {
  document: string
  signature: string
  algorithm: SignatureAlgorithm
  keyId: string
}

export type VerifyResult =
  | { ok: true, document: Uint8Array, keyId: string }
  | { ok: false, reason: 'bad_signature', detail: string }

/** @throws EdgefwdError EDGEFWD_ERR_CONTROL_KEY naming the file and what is wrong with it. */
export async function loadPublicKeys (paths: readonly string[]): Promise<OperatorKey[]> {
  const keys: OperatorKey[] = []
  for (const path of paths) {
    const pem = await readKeyFile(path, 'public key')
    const label = pemLabel(pem, path, 'public key')
    if (label.includes('PRIVATE KEY')) {
      throw keyError(path, `is a private key (${label}), where an operator public key belongs`,
        'give the gateway only the .pub file; keep the private key on the operator\'s machine')
    }
    if (label !== 'PUBLIC KEY') throw keyError(path, `holds a "${label}" PEM block, not a "PUBLIC KEY" (SPKI) block`)
    let key: KeyObject
    try {
      key = createPublicKey({ key: pem, format: 'pem' })
    } catch (err) {
      throw keyError(path, `is not a parseable public key: ${errorMessage(err)}`, undefined, err)
    }
    keys.push({ keyId: keyIdOf(key), algorithm: algorithmOf(key, path), key, path })
  }
  return keys
}

/** A PKCS#8 PEM private key for signing. @throws EdgefwdError EDGEFWD_ERR_CONTROL_KEY */
export async function loadPrivateKey (path: string): Promise<KeyObject> {
  const pem = await readKeyFile(path, 'private key')
  const label = pemLabel(pem, path, 'private key')
  if (label === 'PUBLIC KEY') throw keyError(path, 'is a public key; signing needs the private key (operator.key, not operator.pub)')
  if (label === 'ENCRYPTED PRIVATE KEY') {
    throw keyError(path, 'is an encrypted private key; edgefwd signs with unencrypted PKCS#8 keys',
      'decrypt it with: openssl pkcs8 -in KEY -out KEY.plain (and keep that file at mode 0600)')
  }
  if (label !== 'PRIVATE KEY') {
    throw keyError(path, `holds a "${label}" PEM block, not a PKCS#8 "PRIVATE KEY" block`,
      'convert it with: openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8')
  }
  let key: KeyObject
  try {
    key = createPrivateKey({ key: pem, format: 'pem' })
  } catch (err) {
    throw keyError(path, `is not a parseable private key: ${errorMessage(err)}`, undefined, err)
  }
  algorithmOf(key, path)
  return key
}

/** The first 16 hex digits of SHA-256 over the SPKI DER public key (of a public or private key). */
export function keyIdOf (key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key
  const der = publicKey.export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(der).digest('hex').slice(0, 16)
}

/** @throws EdgefwdError EDGEFWD_ERR_CONTROL_KEY when `privateKey` is not an Ed25519 or RSA private key. */
export function signDocument (documentBytes: Uint8Array, privateKey: KeyObject): SignedMessage {
  if (privateKey.type !== 'private') throw keyError('(in memory)', 'is not a private key')
  const algorithm = algorithmOf(privateKey, '(in memory)')
  const signature = algorithm === 'ed25519'
    ? sign(null, documentBytes, privateKey)
    : sign('sha256', documentBytes, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: RSA_PSS_SALT_LENGTH })
  return {
    document: Buffer.from(documentBytes).toString('base64'),
    signature: signature.toString('base64'),
    algorithm,
    keyId: keyIdOf(privateKey),
  }
}

/** The message as published: compact JSON, fields in a fixed order. */
export function encodeMessage (m: SignedMessage): string {
  return JSON.stringify({ document: m.document, signature: m.signature, algorithm: m.algorithm, keyId: m.keyId })
}

/**
 * Checks a message as received. Anything malformed is `bad_signature` too: a message that
 * cannot be parsed cannot be trusted, and nothing in it is looked at further.
 */
export function verifyMessage (bytes: Uint8Array, keys: readonly OperatorKey[]): VerifyResult {
  const message = decodeMessage(bytes)
  if (typeof message === 'string') return bad(message)

  const candidates = keys.filter(k => k.keyId === message.keyId)
  if (candidates.length === 0) {
    const known = keys.length === 0 ? 'none configured' : keys.map(k => k.keyId).join(', ')
    return bad(`signed by key ${message.keyId}, which is not among the operator keys (${known})`)
  }
  for (const candidate of candidates) {
    if (candidate.algorithm !== message.algorithm) continue
    if (signatureValid(candidate, message)) return { ok: true, document: new Uint8Array(message.document), keyId: candidate.keyId }
  }
  const key = candidates[0] as OperatorKey
  if (candidates.every(k => k.algorithm !== message.algorithm)) {
    return bad(`algorithm ${message.algorithm} does not match key ${key.keyId} (${key.path}), an ${key.algorithm} key`)
  }
  return bad(`the signature does not verify with key ${key.keyId} (${key.path})`)
}

/** A new operator key pair (Ed25519): PKCS#8 and SPKI PEM. */
export function generateKeyPair (): { publicPem: string, privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  return {
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  }
}

interface DecodedMessage { document: Buffer, signature: Buffer, algorithm: SignatureAlgorithm, keyId: string }

const MESSAGE_FIELDS = ['document', 'signature', 'algorithm', 'keyId']
// Strict base64: Buffer.from(s, 'base64') skips junk characters, so a mangled field would
// otherwise decode to some other bytes and fail later with a less useful message.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const KEY_ID = /^[0-9a-f]{16}$/

/** The decoded message, or why it is malformed. */
function decodeMessage (bytes: Uint8Array): DecodedMessage | string {
  if (bytes.byteLength > MAX_MESSAGE_BYTES) return `the message is ${bytes.byteLength} bytes, over the ${MAX_MESSAGE_BYTES}-byte limit; not parsed`
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    return `the message is not UTF-8 JSON: ${errorMessage(err)}`
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'the message is not a JSON object'
  const fields = value as Record<string, unknown>
  const unknown = Object.keys(fields).filter(k => !MESSAGE_FIELDS.includes(k))
  if (unknown.length > 0) return `the message has unknown fields: ${unknown.join(', ')}`
  const { document, signature, algorithm, keyId } = fields
  if (typeof document !== 'string' || document === '' || !BASE64.test(document)) return 'the message\'s "document" is not a non-empty base64 string'
  if (typeof signature !== 'string' || signature === '' || !BASE64.test(signature)) return 'the message\'s "signature" is not a non-empty base64 string'
  if (typeof algorithm !== 'string' || !(SIGNATURE_ALGORITHMS as readonly string[]).includes(algorithm)) {
    return `the message's "algorithm" must be one of ${SIGNATURE_ALGORITHMS.join(', ')}, got ${JSON.stringify(algorithm)}`
  }
  if (typeof keyId !== 'string' || !KEY_ID.test(keyId)) return 'the message\'s "keyId" is not 16 lowercase hex digits'
  return {
    document: Buffer.from(document, 'base64'),
    signature: Buffer.from(signature, 'base64'),
    algorithm: algorithm as SignatureAlgorithm,
    keyId,
  }
}

function signatureValid (key: OperatorKey, message: DecodedMessage): boolean {
  try {
    return key.algorithm === 'ed25519'
      ? verify(null, message.document, key.key, message.signature)
      : verify('sha256', message.document, { key: key.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: RSA_PSS_SALT_LENGTH }, message.signature)
  } catch {
    // OpenSSL throws rather than answering false for some malformed signatures (wrong length
    // for the RSA modulus); to the caller that is the same thing: it does not verify.
    return false
  }
}

function algorithmOf (key: KeyObject, path: string): SignatureAlgorithm {
  const type = key.asymmetricKeyType
  if (type === 'ed25519') return 'ed25519'
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0
    if (bits < MIN_RSA_BITS) throw keyError(path, `is a ${bits}-bit RSA key; at least ${MIN_RSA_BITS} bits are required`)
    return 'rsa-pss-sha256'
  }
  throw keyError(path, `is an unsupported key type (${type ?? 'unknown'}); operator keys are Ed25519 or RSA`,
    'make an Ed25519 pair with: edgefwd config keygen --out DIR')
}

async function readKeyFile (path: string, role: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    throw keyError(path, `cannot be read as the operator ${role}: ${fileReason(err)}`, 'check the path and its permissions', err)
  }
}

/** The label of the file's single PEM block (`PUBLIC KEY`, `PRIVATE KEY`, ...). */
function pemLabel (pem: string, path: string, role: string): string {
  const labels = [...pem.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map(m => m[1] as string)
  if (labels.length === 0) throw keyError(path, `is not a PEM file (no "-----BEGIN" line); expected the operator ${role}`)
  if (labels.length > 1) throw keyError(path, `holds ${labels.length} PEM blocks (${labels.join(', ')}); expected exactly one ${role}`)
  return labels[0] as string
}

function keyError (path: string, what: string, hint?: string, cause?: unknown): EdgefwdError {
  return new EdgefwdError('EDGEFWD_ERR_CONTROL_KEY', `operator key ${path} ${what}`, {
    ...(hint === undefined ? {} : { hint }),
    ...(cause === undefined ? {} : { cause }),
  })
}

function bad (detail: string): VerifyResult {
  return { ok: false, reason: 'bad_signature', detail }
}

function fileReason (err: unknown): string {
  switch ((err as NodeJS.ErrnoException | undefined)?.code) {
    case 'ENOENT': return 'no such file'
    case 'EACCES': case 'EPERM': return 'permission denied'
    case 'EISDIR': return 'it is a directory'
    default: return errorMessage(err)
  }
}

function errorMessage (err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? ''
}
