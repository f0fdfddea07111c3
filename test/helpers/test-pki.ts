/**
 * Certificates for tests, made at test time (no PEM is committed). RSA sets come from
 * src/pki/generate.ts, the code the CLI uses; shapes generate.ts will not make (no EKU, a non-CA
 * "CA", intermediates, small keys) from node-forge directly; EC sets from the openssl CLI
 * (OpenSSL 3), which is also what users run.
 */
import { execFileSync } from 'node:child_process'
import { createPrivateKey, generateKeyPairSync } from 'node:crypto'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import forge from 'node-forge'
import { createCa, issueCertificate, type CertificateKind, type PemPair } from '../../src/pki/generate.js'

export type { PemPair }

/** What the gateway is configured with: PEM text of the CA bundle, certificate (+chain) and key. */
export interface TlsSet {
  ca: string
  cert: string
  key: string
}

export interface Dates {
  notBefore?: Date
  notAfter?: Date
}

const DAY_MS = 86_400_000

/** An RSA CA by generate.ts (2048-bit: faster than its 3072 default, as strong as tests need). */
export function makeCa (options: Dates & { commonName?: string } = {}): PemPair {
  return createCa({ commonName: options.commonName ?? 'edgefwd test CA', keyBits: 2048, ...dates(options) })
}

/** An RSA client (or server) certificate issued by `ca` through generate.ts. */
export function makeClient (ca: PemPair, options: Dates & { commonName?: string, kind?: CertificateKind } = {}): PemPair {
  return issueCertificate(ca, { kind: options.kind ?? 'client', commonName: options.commonName ?? 'gw-test', ...dates(options) })
}

/** A CA and a client it issued, as the gateway would be configured. */
export function makeRsaSet (options: { ca?: PemPair } & Dates & { commonName?: string, kind?: CertificateKind } = {}): TlsSet & { caPair: PemPair } {
  const caPair = options.ca ?? makeCa()
  const client = makeClient(caPair, options)
  return { ca: caPair.certPem, cert: client.certPem, key: client.keyPem, caPair }
}

export interface CertSpec extends Dates {
  commonName: string
  /** Default: self-signed. */
  issuer?: PemPair
  /** RSA key of the subject, PEM; default a new RSA key of `keyBits` (default 2048). */
  keyPem?: string
  keyBits?: number
  isCa?: boolean
  /** Extended key usages; absent: no extKeyUsage extension at all. */
  eku?: ReadonlyArray<'clientAuth' | 'serverAuth' | 'codeSigning'>
}

/** Any RSA certificate shape, straight from node-forge. */
export function makeCertificate (spec: CertSpec): PemPair {
  const keyPem = spec.keyPem ?? generateKeyPairSync('rsa', { modulusLength: spec.keyBits ?? 2048 }).privateKey
    .export({ type: 'pkcs8', format: 'pem' }) as string
  const subjectKey = forgeKey(keyPem)
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.setRsaPublicKey(subjectKey.n, subjectKey.e)
  cert.serialNumber = `01${forge.util.bytesToHex(forge.random.getBytesSync(15))}`
  const notBefore = spec.notBefore ?? new Date(Date.now() - 60_000)
  cert.validity.notBefore = notBefore
  cert.validity.notAfter = spec.notAfter ?? new Date(notBefore.getTime() + 30 * DAY_MS)
  const subject = [{ name: 'commonName', value: spec.commonName }]
  cert.setSubject(subject)
  const issuerCert = spec.issuer === undefined ? undefined : forge.pki.certificateFromPem(spec.issuer.certPem)
  cert.setIssuer(issuerCert?.subject.attributes ?? subject)
  const extensions: object[] = [
    { name: 'basicConstraints', cA: spec.isCa ?? false, critical: true },
    spec.isCa === true
      ? { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }
      : { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]
  if (spec.eku !== undefined) extensions.push({ name: 'extKeyUsage', ...Object.fromEntries(spec.eku.map(u => [u, true])) })
  if (issuerCert !== undefined) extensions.push({ name: 'authorityKeyIdentifier', keyIdentifier: issuerCert.generateSubjectKeyIdentifier().getBytes() })
  cert.setExtensions(extensions)
  cert.sign(spec.issuer === undefined ? subjectKey : forgeKey(spec.issuer.keyPem), forge.md.sha256.create())
  return { certPem: forge.pki.certificateToPem(cert), keyPem }
}

export type Curve = 'P-256' | 'P-384' | 'P-521'

/** An EC CA and an EC client certificate it signed, made with the openssl CLI. */
export function makeEcSet (options: { curve?: Curve, clientCurve?: Curve, days?: number, clientEku?: string } = {}): TlsSet & { caKey: string } {
  return withTempDir(dir => {
    writeFileSync(join(dir, 'ca.cnf'), [
      '[req]', 'distinguished_name = dn', 'prompt = no', '[dn]', 'CN = edgefwd test EC CA',
      '[ext]', 'basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign', 'subjectKeyIdentifier = hash', '',
    ].join('\n'))
    const days = String(options.days ?? 30)
    openssl(dir, ['req', '-x509', ...ecKeyArgs(options.curve ?? 'P-256'), '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt',
      '-config', 'ca.cnf', '-extensions', 'ext', '-days', days])
    openssl(dir, ['req', '-new', ...ecKeyArgs(options.clientCurve ?? options.curve ?? 'P-256'), '-nodes', '-keyout', 'client.key',
      '-out', 'client.csr', '-subj', '/CN=gw-ec'])
    writeFileSync(join(dir, 'client.ext'), [
      'basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature',
      `extendedKeyUsage = ${options.clientEku ?? 'clientAuth'}`, 'authorityKeyIdentifier = keyid', '',
    ].join('\n'))
    openssl(dir, ['x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', `0x${Date.now().toString(16)}`,
      '-days', days, '-extfile', 'client.ext', '-out', 'client.crt'])
    const read = (name: string): string => readFileSync(join(dir, name), 'utf8')
    return { ca: read('ca.crt'), cert: read('client.crt'), key: read('client.key'), caKey: read('ca.key') }
  })
}

/** A self-signed certificate with a key openssl makes: `['ed25519']`, `['rsa:1024']`, or ecKeyArgs('P-521'). */
export function makeSelfSigned (newkey: readonly string[]): PemPair {
  return withTempDir(dir => {
    openssl(dir, ['req', '-x509', '-newkey', ...newkey, '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-subj', '/CN=odd-key', '-days', '30'])
    return { certPem: readFileSync(join(dir, 'c.pem'), 'utf8'), keyPem: readFileSync(join(dir, 'k.pem'), 'utf8') }
  })
}

export function ecKeyArgs (curve: Curve): string[] {
  return ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${curve}`]
}

/** The key encrypted with a passphrase: PKCS#8 (`ENCRYPTED PRIVATE KEY`) or legacy PKCS#1 (`Proc-Type`, RSA only). */
export function encryptKey (keyPem: string, passphrase: string, type: 'pkcs8' | 'pkcs1' = 'pkcs8'): string {
  return createPrivateKey(keyPem).export({ type, format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string
}

export interface SetFiles {
  ca: string
  cert: string
  key: string
}

export interface WriteOptions {
  /** Mode of the key file; default 0600. */
  keyMode?: number
  /** File names in `dir`; default ca.pem, client.pem, client.key. */
  names?: Partial<SetFiles>
  /** Write each file beside its final name, then rename it over (as cert-manager and certbot do). */
  atomic?: boolean
}

/** Writes the set's three files into `dir` (created if needed) and returns their paths. */
export function writeSet (dir: string, set: TlsSet, options: WriteOptions = {}): SetFiles {
  mkdirSync(dir, { recursive: true })
  const names = { ca: 'ca.pem', cert: 'client.pem', key: 'client.key', ...options.names }
  const paths = { ca: join(dir, names.ca), cert: join(dir, names.cert), key: join(dir, names.key) }
  const write = (path: string, text: string, mode: number): void => {
    const target = options.atomic === true ? `${path}.tmp-${process.pid}` : path
    writeFileSync(target, text)
    chmodSync(target, mode) // after writing: the mode given at creation is cut by the umask
    if (target !== path) renameSync(target, path)
  }
  write(paths.ca, set.ca, 0o644)
  write(paths.cert, set.cert, 0o644)
  write(paths.key, set.key, options.keyMode ?? 0o600)
  return paths
}

function dates (d: Dates): Dates {
  const out: Dates = {}
  if (d.notBefore !== undefined) out.notBefore = d.notBefore
  if (d.notAfter !== undefined) out.notAfter = d.notAfter
  return out
}

function forgeKey (pem: string): forge.pki.rsa.PrivateKey {
  return forge.pki.privateKeyFromPem(createPrivateKey(pem).export({ type: 'pkcs1', format: 'pem' }) as string)
}

function openssl (cwd: string, args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
}

function withTempDir<T> (fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'edgefwd-pki-'))
  try {
    return fn(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
