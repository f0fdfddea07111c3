/**
 * Reading the gateway's private key: one PEM key (PKCS#8, PKCS#1 or SEC1, encrypted or not),
 * decrypted with its passphrase and checked to be of a kind edgefwd uses. Pure: PEM text and the
 * passphrase in, a KeyObject out; reading files and naming them is material.ts's job, so the
 * problems here are returned as a code and a sentence for the caller to turn into an error.
 */
import { createPrivateKey, type KeyObject, type X509Certificate } from 'node:crypto'
import type { ErrorCode } from '../errors.js'

export type KeyType = 'rsa' | 'ec'

/** One `-----BEGIN X-----` ... `-----END X-----` block of a PEM file. */
export interface PemBlock {
  label: string
  pem: string
}

export interface KeyProblem {
  code: ErrorCode
  message: string
  hint?: string
}

/** The smallest RSA modulus accepted: NIST SP 800-57 retires 1024-bit RSA; brokers reject it. */
export const MIN_RSA_BITS = 2048

/** Node reports curves by their OpenSSL names; TLS 1.2/1.3 brokers all take these two. */
const CURVES: Readonly<Record<string, string>> = { prime256v1: 'P-256', secp384r1: 'P-384' }

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g

export function pemBlocks (text: string): PemBlock[] {
  return [...text.matchAll(PEM_BLOCK)].map(m => ({ label: m[1] ?? '', pem: m[0] }))
}

/**
 * A DER certificate or key is an ASN.1 SEQUENCE longer than 127 bytes: 0x30, then a long-form
 * length (0x81-0x83). Said so, since "no PEM found" alone puzzles people.
 */
export function looksLikeDer (bytes: Uint8Array): boolean {
  return bytes[0] === 0x30 && bytes[1] !== undefined && bytes[1] >= 0x81 && bytes[1] <= 0x83
}

export function isPrivateKeyLabel (label: string): boolean {
  return label.endsWith('PRIVATE KEY')
}

/** PKCS#8 `ENCRYPTED PRIVATE KEY`, or an OpenSSL legacy PEM with `Proc-Type: 4,ENCRYPTED`. */
export function isEncryptedKey (block: PemBlock): boolean {
  return block.label === 'ENCRYPTED PRIVATE KEY' || /^Proc-Type:\s*4,ENCRYPTED/m.test(block.pem)
}

/**
 * Parses (and, given the passphrase, decrypts) one private key block. `passphrase` is only
 * consulted for an encrypted key; the caller decides where it came from and says so in `source`.
 */
export function parsePrivateKey (block: PemBlock, passphrase: string | undefined, source: string): KeyObject | KeyProblem {
  const encrypted = isEncryptedKey(block)
  if (encrypted && passphrase === undefined) {
    return {
      code: 'EDGEFWD_ERR_TLS_KEY_PASSPHRASE',
      message: 'the private key is encrypted and no passphrase is configured',
      hint: 'set tls.keyPassphraseFile (a file holding the passphrase, mode 600) or tls.keyPassphraseEnv (the name of a variable holding it)',
    }
  }
  try {
    return encrypted
      ? createPrivateKey({ key: block.pem, format: 'pem', passphrase: passphrase ?? '' })
      : createPrivateKey({ key: block.pem, format: 'pem' })
  } catch (err) {
    if (encrypted) {
      return {
        code: 'EDGEFWD_ERR_TLS_KEY_PASSPHRASE',
        message: `the passphrase from ${source} does not decrypt the private key`,
        hint: 'check the passphrase; `openssl pkey -in KEYFILE -noout` asks for it and says whether it is right',
      }
    }
    return {
      code: 'EDGEFWD_ERR_TLS_PEM_INVALID',
      message: `the private key cannot be parsed (${(err as Error).message})`,
      hint: 'the file was cut short or altered: copy it again from where it was made',
    }
  }
}

/** 'RSA 2048', 'EC P-256', or why the key is refused. */
export function describeKey (key: KeyObject): { keyType: KeyType, keyDetail: string } | KeyProblem {
  const details = key.asymmetricKeyDetails ?? {}
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0
    if (bits >= MIN_RSA_BITS) return { keyType: 'rsa', keyDetail: `RSA ${bits}` }
    return unsupported(`the private key is RSA ${bits}; edgefwd needs RSA of at least ${MIN_RSA_BITS} bits`)
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = CURVES[details.namedCurve ?? '']
    if (curve !== undefined) return { keyType: 'ec', keyDetail: `EC ${curve}` }
    return unsupported(`the private key is EC on curve ${details.namedCurve ?? 'unknown'}; edgefwd uses P-256 or P-384`)
  }
  return unsupported(`the private key is ${String(key.asymmetricKeyType).toUpperCase()}; edgefwd uses RSA (2048 bits or more) or EC P-256/P-384`)
}

function unsupported (message: string): KeyProblem {
  return {
    code: 'EDGEFWD_ERR_TLS_KEY_UNSUPPORTED',
    message,
    hint: 'issue a new key and certificate: `openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 ...` or `edgefwd certs csr`',
  }
}

export function isKeyProblem (value: unknown): value is KeyProblem {
  return typeof value === 'object' && value !== null && 'code' in value && 'message' in value
}

/**
 * Whether `issuer` issued `certificate`: checkIssued compares names, key identifiers and the
 * issuer's key usage; the signature is then verified, so a different CA of the same name fails.
 */
export function issuedBy (certificate: X509Certificate, issuer: X509Certificate): boolean {
  return certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey)
}
