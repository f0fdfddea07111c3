/**
 * The gateway's TLS material: the CA bundle that verifies the broker, the client certificate
 * (leaf first, then any intermediates) and its private key, read from files and validated before
 * any connection is tried, so that a wrong file is reported as what it is, naming the file and
 * the config key, instead of as a handshake failure on the broker's side.
 *
 * Checks, in order (the first problem found is thrown as a TlsMaterialError):
 *   1. every file is readable; a key or passphrase file is not open to group or others;
 *   2. each file holds what its role needs (certificates / exactly one private key);
 *   3. an encrypted key decrypts with the configured passphrase;
 *   4. the key is RSA >= 2048 or EC P-256/P-384, and belongs to the leaf certificate;
 *   5. the leaf and its chain are within their validity, the leaf may be used for clientAuth
 *      (no extendedKeyUsage at all means any purpose, RFC 5280 4.2.1.12), chain certificates are CAs;
 *   6. every certificate in the CA bundles is a CA; in a bundle of several, one out of its
 *      validity is left out with a warning (a system bundle may hold a stale root the broker
 *      does not use), while a bundle with no valid certificate left is an error;
 *   7. unless checkClientChain is false, the leaf chains, signature by signature, to a
 *      certificate of clientCa (default: ca).
 *
 * The key comes out decrypted and re-exported as unencrypted PKCS#8 PEM, held in memory only,
 * so the TLS layer needs no passphrase. Nothing here logs; the caller does (reloader.ts).
 */
import { X509Certificate, type KeyObject } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { ConfigError, EdgefwdError, type ConfigIssue, type ErrorCode } from '../errors.js'
import type { Config } from '../config/index.js'
import { describeKey, isEncryptedKey, isKeyProblem, isPrivateKeyLabel, issuedBy, looksLikeDer, parsePrivateKey, pemBlocks, type KeyProblem, type KeyType } from './keys.js'
import { isCertificateProblem, readCertificateBytes } from './x509.js'

export interface TlsMaterialOptions {
  /** CA bundle (PEM) that verifies the broker. */
  ca: string
  /** Client certificate, then any intermediates (PEM). */
  cert: string
  /** The client certificate's private key (PEM, possibly encrypted). */
  key: string
  keyPassphraseFile?: string
  /** The NAME of an environment variable holding the passphrase. */
  keyPassphraseEnv?: string
  /** CA(s) the client certificate must chain to; default `ca`. */
  clientCa?: string
  /** Default true; false skips step 7 (cloud-issued certificates whose issuer is not in the bundle). */
  checkClientChain?: boolean
  /** Config path named in messages; default `tls` (so `tls.key`). */
  configPath?: string
}

export interface LoadContext {
  /** Where keyPassphraseEnv is looked up; usually process.env, passed in by the CLI. */
  env?: Readonly<Record<string, string | undefined>>
  /** The instant validity is checked against; default now. */
  now?: Date
}

export interface TlsMaterialInfo {
  /** The leaf's subject and issuer, one line: `CN=gw-1, O=Acme`. */
  subject: string
  issuer: string
  serial: string
  fingerprint256: string
  notBefore: Date
  notAfter: Date
  keyType: KeyType
  /** `RSA 2048`, `EC P-256`, ... */
  keyDetail: string
  files: { ca: string, cert: string, key: string }
  /** Problems that do not stop the material being used (a stale certificate in a large CA bundle). */
  warnings: readonly string[]
}

export interface TlsMaterial {
  /** The CA bundle, PEM. */
  ca: string
  /** Leaf then chain, PEM. */
  cert: string
  /** Unencrypted PKCS#8 PEM. Never log it. */
  key: string
  info: TlsMaterialInfo
}

/** An EdgefwdError that also says which file and which config key it is about. */
export class TlsMaterialError extends EdgefwdError {
  readonly file: string
  readonly configKey: string

  constructor (code: ErrorCode, file: string, configKey: string, problem: string, options: { hint?: string, cause?: unknown } = {}) {
    super(code, `${file} (${configKey}): ${problem}`, options)
    this.name = 'TlsMaterialError'
    this.file = file
    this.configKey = configKey
  }
}

const DAY_MS = 86_400_000
/** id-kp-clientAuth and anyExtendedKeyUsage (RFC 5280 4.2.1.12). */
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'
const ANY_EKU = '2.5.29.37.0'
const EKU_NAMES: Readonly<Record<string, string>> = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  [CLIENT_AUTH]: 'clientAuth',
  '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.4': 'emailProtection',
  '1.3.6.1.5.5.7.3.8': 'timeStamping',
  '1.3.6.1.5.5.7.3.9': 'OCSPSigning',
}
/** Longer chains than this are not real client chains; it also bounds the walk. */
const MAX_CHAIN = 8

/** A named file: the path as configured and the config key it came from. */
interface Source { file: string, configKey: string }

/** @throws TlsMaterialError with an EDGEFWD_ERR_TLS_* code naming the file and the config key. */
export async function loadTlsMaterial (options: TlsMaterialOptions, context: LoadContext = {}): Promise<TlsMaterial> {
  const now = context.now ?? new Date()
  const prefix = options.configPath ?? 'tls'
  const src = (name: string, file: string): Source => ({ file, configKey: `${prefix}.${name}` })
  const caSrc = src('ca', options.ca)
  const certSrc = src('cert', options.cert)
  const keySrc = src('key', options.key)
  const clientCaSrc = options.clientCa === undefined ? undefined : src('clientCa', options.clientCa)

  const caBytes = await readTlsFile(caSrc, false)
  const certBytes = await readTlsFile(certSrc, false)
  const keyBytes = await readTlsFile(keySrc, true)
  const clientCaBytes = clientCaSrc === undefined ? undefined : await readTlsFile(clientCaSrc, false)

  const caCerts = readCertificates(caBytes, caSrc)
  const [leaf, ...chain] = readCertificates(certBytes, certSrc) as [X509Certificate, ...X509Certificate[]]
  const clientCaCerts = clientCaSrc === undefined || clientCaBytes === undefined ? undefined : readCertificates(clientCaBytes, clientCaSrc)

  const key = await readKey(keyBytes, keySrc, options, prefix, context.env ?? {})
  const described = describeKey(key)
  if (isKeyProblem(described)) throw problem(described, keySrc)
  if (!leaf.checkPrivateKey(key)) {
    throw new TlsMaterialError('EDGEFWD_ERR_TLS_KEY_MISMATCH', keySrc.file, keySrc.configKey,
      `the private key does not belong to the certificate ${name(leaf)} in ${certSrc.file} (${certSrc.configKey})`, {
        hint: 'install the key and certificate that were issued together; the first certificate in the certificate file must be the client\'s own',
      })
  }

  checkValidity(leaf, certSrc, now, 'the client certificate')
  checkClientUsage(leaf, certSrc)
  chain.forEach((cert, i) => {
    const what = `chain certificate ${i + 2}`
    checkValidity(cert, certSrc, now, what)
    if (!cert.ca) {
      throw new TlsMaterialError('EDGEFWD_ERR_TLS_CERT_USAGE', certSrc.file, certSrc.configKey,
        `${what} ${name(cert)} follows the client certificate but is not a CA certificate`, {
          hint: 'the file must hold the client certificate first, then the intermediate CAs that issued it',
        })
    }
  })

  const warnings: string[] = []
  const usableCa = checkBundle(caCerts, caSrc, now, warnings)
  if (clientCaCerts !== undefined && clientCaSrc !== undefined) checkBundle(clientCaCerts, clientCaSrc, now, warnings)
  if (options.checkClientChain ?? true) {
    checkChain(leaf, chain, clientCaCerts ?? caCerts, certSrc, clientCaSrc ?? caSrc, now)
  }

  return {
    ca: usableCa.map(c => c.toString()).join(''),
    cert: [leaf, ...chain].map(c => c.toString()).join(''),
    key: key.export({ type: 'pkcs8', format: 'pem' }) as string,
    info: {
      subject: oneLine(leaf.subject),
      issuer: oneLine(leaf.issuer),
      serial: leaf.serialNumber,
      fingerprint256: leaf.fingerprint256,
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
      ...described,
      files: { ca: caSrc.file, cert: certSrc.file, key: keySrc.file },
      warnings,
    },
  }
}

/** Whole days until the client certificate expires (negative once it has); for metrics and heartbeats. */
export function daysLeft (material: TlsMaterial, now: Date = new Date()): number {
  return Math.floor((material.info.notAfter.getTime() - now.getTime()) / DAY_MS)
}

/**
 * Loader options from the validated `tls` section. The schema leaves the paths optional (the
 * uplink needs them only for mqtts), so a caller that needs TLS gets every missing one named here.
 */
export function tlsMaterialOptions (tls: Config['tls'], source = 'config'): TlsMaterialOptions {
  const missing: ConfigIssue[] = (['ca', 'cert', 'key'] as const).filter(k => tls[k] === undefined)
    .map(k => ({ source, path: `tls.${k}`, message: 'is required for a TLS connection (a path to a PEM file)' }))
  if (missing.length > 0 || tls.ca === undefined || tls.cert === undefined || tls.key === undefined) {
    throw new ConfigError('EDGEFWD_ERR_CONFIG_INVALID', missing, { hint: 'see docs/config.md "tls"' })
  }
  const options: TlsMaterialOptions = { ca: tls.ca, cert: tls.cert, key: tls.key, checkClientChain: tls.checkClientChain }
  if (tls.keyPassphraseFile !== undefined) options.keyPassphraseFile = tls.keyPassphraseFile
  if (tls.keyPassphraseEnv !== undefined) options.keyPassphraseEnv = tls.keyPassphraseEnv
  if (tls.clientCa !== undefined) options.clientCa = tls.clientCa
  return options
}

async function readTlsFile ({ file, configKey }: Source, secret: boolean): Promise<Buffer> {
  const unreadable = (reason: string, cause?: unknown): TlsMaterialError =>
    new TlsMaterialError('EDGEFWD_ERR_TLS_FILE_UNREADABLE', file, configKey, `cannot read the file: ${reason}`, {
      cause, hint: 'check the path (relative paths are relative to the working directory) and that the edgefwd user may read it',
    })
  try {
    const info = await stat(file)
    if (info.isDirectory()) throw unreadable('is a directory, not a file')
    if (secret && (info.mode & 0o077) !== 0) {
      throw new TlsMaterialError('EDGEFWD_ERR_TLS_KEY_PERMISSIONS', file, configKey,
        `mode ${(info.mode & 0o777).toString(8).padStart(4, '0')} lets group or others read or write this secret`, {
          hint: `chmod 600 ${file} (and chown it to the user edgefwd runs as)`,
        })
    }
    return await readFile(file)
  } catch (err) {
    if (err instanceof TlsMaterialError) throw err
    const code = (err as NodeJS.ErrnoException).code
    throw unreadable(code === 'ENOENT'
      ? 'no such file'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EISDIR' ? 'is a directory, not a file' : (err as Error).message, err)
  }
}

function readCertificates (bytes: Buffer, src: Source): X509Certificate[] {
  const read = readCertificateBytes(bytes, src.file)
  if (!isCertificateProblem(read)) return read
  // "holds a private key" here means: in the place of a certificate (tls.ca, tls.cert).
  const problem = read.kind === 'private-key' ? 'holds a private key where a certificate belongs' : read.problem
  return throwInvalid(src, problem, read.hint, read.cause)
}

function throwInvalid (src: Source, text: string, hint: string | undefined, cause: unknown): never {
  throw new TlsMaterialError('EDGEFWD_ERR_TLS_PEM_INVALID', src.file, src.configKey, text, { ...(hint === undefined ? {} : { hint }), cause })
}

async function readKey (bytes: Buffer, src: Source, options: TlsMaterialOptions, prefix: string,
  env: Readonly<Record<string, string | undefined>>): Promise<KeyObject> {
  const invalid = (text: string, hint: string): TlsMaterialError =>
    new TlsMaterialError('EDGEFWD_ERR_TLS_PEM_INVALID', src.file, src.configKey, text, { hint })
  if (looksLikeDer(bytes)) {
    throw invalid('is DER (binary), not PEM', `convert it: openssl pkey -inform der -in ${src.file} -out ${src.file}.pem`)
  }
  const blocks = pemBlocks(bytes.toString('utf8'))
  const keys = blocks.filter(b => isPrivateKeyLabel(b.label))
  const [block] = keys
  if (block === undefined) {
    if (blocks.some(b => b.label === 'CERTIFICATE')) {
      throw invalid('holds a certificate where the private key belongs', 'point this key at the private key file, and tls.cert at the certificate')
    }
    throw invalid('holds no PEM private key (no "-----BEGIN ... PRIVATE KEY-----" block)', `\`openssl storeutl -noout ${src.file}\` lists what the file holds`)
  }
  if (keys.length > 1) throw invalid(`holds ${keys.length} private keys; it must hold one`, 'keep only the key of the client certificate in this file')

  let passphrase: string | undefined
  let passphraseSource = ''
  if (isEncryptedKey(block)) {
    if (options.keyPassphraseFile !== undefined) {
      const fileSrc = { file: options.keyPassphraseFile, configKey: `${prefix}.keyPassphraseFile` }
      // One trailing newline is what `echo secret > file` adds; it is not part of the passphrase.
      passphrase = (await readTlsFile(fileSrc, true)).toString('utf8').replace(/\r?\n$/, '')
      passphraseSource = `${fileSrc.file} (${fileSrc.configKey})`
    } else if (options.keyPassphraseEnv !== undefined) {
      passphrase = env[options.keyPassphraseEnv]
      passphraseSource = `the environment variable ${options.keyPassphraseEnv} (${prefix}.keyPassphraseEnv)`
      if (passphrase === undefined) {
        throw new TlsMaterialError('EDGEFWD_ERR_TLS_KEY_PASSPHRASE', src.file, src.configKey,
          `the private key is encrypted and ${passphraseSource} is not set`, {
            hint: `set ${options.keyPassphraseEnv} in the service's environment (systemd: EnvironmentFile= or LoadCredential=)`,
          })
      }
    }
  }
  const key = parsePrivateKey(block, passphrase, passphraseSource)
  if (isKeyProblem(key)) throw problem(key, src)
  return key
}

function checkValidity (cert: X509Certificate, src: Source, now: Date, what: string): void {
  const problem = validityProblem(cert, now)
  if (problem === undefined) return
  const expired = problem === 'expired'
  const code: ErrorCode = expired ? 'EDGEFWD_ERR_TLS_CERT_EXPIRED' : 'EDGEFWD_ERR_TLS_CERT_NOT_YET_VALID'
  const text = expired ? `expired on ${iso(cert.validTo)}` : `is not valid before ${iso(cert.validFrom)}`
  const hint = expired
    ? 'renew it (edgefwd certs, or your CA) and install the new certificate and key'
    : 'check the gateway clock (timedatectl): a Raspberry Pi has no battery-backed clock and starts in the past until NTP syncs'
  throw new TlsMaterialError(code, src.file, src.configKey, `${what} ${name(cert)} ${text} (now ${now.toISOString()})`, { hint })
}

function validityProblem (cert: X509Certificate, now: Date): 'expired' | 'early' | undefined {
  if (now.getTime() > new Date(cert.validTo).getTime()) return 'expired'
  if (now.getTime() < new Date(cert.validFrom).getTime()) return 'early'
  return undefined
}

function checkClientUsage (leaf: X509Certificate, src: Source): void {
  const ekus = leaf.keyUsage as string[] | undefined
  if (ekus === undefined || ekus.includes(CLIENT_AUTH) || ekus.includes(ANY_EKU)) return
  const names = ekus.map(oid => EKU_NAMES[oid] ?? oid).join(', ')
  throw new TlsMaterialError('EDGEFWD_ERR_TLS_CERT_USAGE', src.file, src.configKey,
    `the client certificate ${name(leaf)} has extended key usage ${names || '(empty)'} but not clientAuth (${CLIENT_AUTH})`, {
      hint: 'issue a client certificate (extendedKeyUsage = clientAuth); a server certificate cannot log in to the broker',
    })
}

/**
 * Every certificate must be a CA; an out-of-date one is dropped with a warning, and is an error
 * only when no valid one is left. Returns the certificates in date.
 */
function checkBundle (certs: X509Certificate[], src: Source, now: Date, warnings: string[]): X509Certificate[] {
  certs.forEach((cert, i) => {
    if (!cert.ca) {
      throw new TlsMaterialError('EDGEFWD_ERR_TLS_CERT_USAGE', src.file, src.configKey,
        `certificate ${i + 1} ${name(cert)} is not a CA certificate (basicConstraints CA:FALSE or absent)`, {
          hint: 'this file must hold the CA certificate(s), not a client or server certificate',
        })
    }
  })
  const stale = certs.filter(c => validityProblem(c, now) !== undefined)
  const [first] = stale
  if (first !== undefined && stale.length === certs.length) checkValidity(first, src, now, 'CA certificate')
  for (const c of stale) {
    warnings.push(`${src.file} (${src.configKey}): CA certificate ${name(c)} is out of its validity (${iso(c.validFrom)} to ${iso(c.validTo)}); it is left out`)
  }
  return certs.filter(c => !stale.includes(c))
}

/** Walks leaf -> intermediates -> anchor, each link by issuer name and signature. */
function checkChain (leaf: X509Certificate, chain: X509Certificate[], anchors: X509Certificate[], certSrc: Source, anchorSrc: Source, now: Date): void {
  let current = leaf
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    if (anchors.some(a => a.fingerprint256 === current.fingerprint256)) return
    const anchor = anchors.find(a => issuedBy(current, a))
    if (anchor !== undefined) {
      checkValidity(anchor, anchorSrc, now, 'the CA certificate')
      return
    }
    const next = chain.find(c => c !== current && issuedBy(current, c))
    if (next === undefined) break
    current = next
  }
  const sameName = [...anchors, ...chain].find(c => c.subject === current.issuer)
  const where = `${anchorSrc.file} (${anchorSrc.configKey})`
  const text = sameName !== undefined
    ? `${name(current)} names "${oneLine(current.issuer)}" as its issuer, but its signature does not verify with that CA's key: a different CA of the same name (was the CA regenerated?)`
    : `${name(current)} was issued by "${oneLine(current.issuer)}", which is neither in ${where} (it holds ${anchors.map(name).join(', ')}) nor in this file`
  throw new TlsMaterialError('EDGEFWD_ERR_TLS_CERT_UNTRUSTED', certSrc.file, certSrc.configKey, `the client certificate does not chain to ${where}: ${text}`, {
    hint: 'add the issuing CA to tls.clientCa (or the intermediates to tls.cert); for cloud-issued certificates (AWS IoT) set tls.checkClientChain: false',
  })
}

function problem (p: KeyProblem, src: Source): TlsMaterialError {
  return new TlsMaterialError(p.code, src.file, src.configKey, p.message, p.hint === undefined ? {} : { hint: p.hint })
}

function name (cert: X509Certificate): string {
  return `"${oneLine(cert.subject)}"`
}

/** X509Certificate gives names one attribute per line. */
function oneLine (dn: string): string {
  return dn.split('\n').join(', ')
}

function iso (opensslDate: string): string {
  return new Date(opensslDate).toISOString()
}
