/**
 * Making certificates with node-forge: a development CA, client and server certificates, and a
 * CSR whose key stays on the gateway. Everything here is pure (PEM strings in, PEM strings out);
 * writing files, with their modes, is pem-files.ts's job, called by src/cli/commands/certs-*.ts.
 *
 * Keys are RSA (node-forge signs with RSA only; it generates the key pair through Node's crypto,
 * so a key takes a fraction of a second, not the seconds of pure JavaScript: measured about 0.2 s
 * for 2048 bits and 0.6 s for 3072 on an x86 dev machine; expect several times that on a Pi). Certificates edgefwd makes are X.509 v3 with
 * SHA-256 signatures, a random 128-bit serial, subject and authority key identifiers, and the
 * usage their role needs: a CA gets `CA:true, pathlen:0` and keyCertSign/cRLSign/digitalSignature; a client gets
 * digitalSignature + keyEncipherment and extKeyUsage clientAuth; a server the same with serverAuth
 * and its names as SANs. A leaf's notAfter is clamped to its CA's (it would stop verifying then
 * anyway). Signing refuses a CA certificate without CA:TRUE or already expired, a CA key that is
 * encrypted, not RSA or not the certificate's, and a CSR that is not RSA (sign those with
 * openssl, certs/README.md).
 * Reading certificates and keys of any kind (EC included) is node:crypto's job (inspect.ts).
 */
import { createPrivateKey, randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import forge from 'node-forge'
import { EdgefwdError } from '../errors.js'
import { CA_VALIDITY_DAYS, LEAF_VALIDITY_DAYS } from './validity.js'

export type CertificateKind = 'client' | 'server'

export interface PemPair {
  certPem: string
  /** PKCS#8 PEM, unencrypted: write it with mode 0600. */
  keyPem: string
}

export interface Validity {
  /** Days from `notBefore`; ignored when notAfter is given. */
  validityDays?: number
  /** Default: now minus one minute (clock skew between gateway and broker). */
  notBefore?: Date
  notAfter?: Date
}

export interface CaOptions extends Validity {
  commonName: string
  organization?: string
  /** Default 3072. */
  keyBits?: number
}

export interface IssueOptions extends Validity {
  kind: CertificateKind
  commonName: string
  organization?: string
  /** DNS names and IP addresses; a server certificate's commonName is added when missing. */
  sans?: readonly string[]
  /** Default 2048. */
  keyBits?: number
}

export interface CsrOptions {
  commonName: string
  organization?: string
  kind?: CertificateKind
  sans?: readonly string[]
  keyBits?: number
}

export { CA_VALIDITY_DAYS, LEAF_VALIDITY_DAYS }

const DAY_MS = 86_400_000

export function createCa (options: CaOptions): PemPair {
  // Every check before the key: generating it is the slow part.
  const subject = subjectAttributes(options.commonName, options.organization)
  const dates = validityDates(options, CA_VALIDITY_DAYS)
  const keys = generateRsa(options.keyBits ?? 3072)
  const cert = forge.pki.createCertificate()
  cert.publicKey = keys.publicKey
  setBasics(cert, dates)
  cert.setSubject(subject)
  cert.setIssuer(subject)
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ])
  cert.sign(keys.privateKey, forge.md.sha256.create())
  return { certPem: lf(forge.pki.certificateToPem(cert)), keyPem: privateKeyPem(keys.privateKey) }
}

export function issueCertificate (ca: PemPair, options: IssueOptions): PemPair {
  const signer = readCa(ca)
  const subject = subjectAttributes(options.commonName, options.organization)
  const dates = validityDates(options, LEAF_VALIDITY_DAYS)
  const keys = generateRsa(options.keyBits ?? 2048)
  const certPem = signPublicKey(signer, keys.publicKey, subject, options.kind, sansFor(options.kind, options.commonName, options.sans), dates)
  return { certPem, keyPem: privateKeyPem(keys.privateKey) }
}

/** A key and a certificate signing request for it; the key never needs to leave the machine. */
export function createCsr (options: CsrOptions): { csrPem: string, keyPem: string } {
  const subject = subjectAttributes(options.commonName, options.organization)
  const keys = generateRsa(options.keyBits ?? 2048)
  const csr = forge.pki.createCertificationRequest()
  csr.publicKey = keys.publicKey
  csr.setSubject(subject)
  const kind = options.kind ?? 'client'
  const sans = sansFor(kind, options.commonName, options.sans)
  const extensions: object[] = [{ name: 'extKeyUsage', [kind === 'client' ? 'clientAuth' : 'serverAuth']: true }]
  if (sans.length > 0) extensions.push({ name: 'subjectAltName', altNames: sans.map(altName) })
  csr.setAttributes([{ name: 'extensionRequest', extensions }])
  csr.sign(keys.privateKey, forge.md.sha256.create())
  return { csrPem: lf(forge.pki.certificationRequestToPem(csr)), keyPem: privateKeyPem(keys.privateKey) }
}

/**
 * Signs a CSR with the CA. The CSR's signature must verify; its subject is kept; the SANs are
 * those requested in the CSR plus `sans`. The usage comes from `kind`, not from the request.
 */
export function signCsr (ca: PemPair, csrPem: string, options: Validity & { kind: CertificateKind, sans?: readonly string[] }): string {
  let csr: forge.pki.CertificateSigningRequest
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem)
  } catch (err) {
    // forge reads RSA keys only and says so in this message; anything else is not a CSR at all.
    if (csrPem.includes('-----BEGIN CERTIFICATE REQUEST-----') && /OID is not RSA/.test(String(err))) {
      throw new EdgefwdError('EDGEFWD_ERR_TLS_KEY_UNSUPPORTED', 'the signing request\'s key is not RSA; edgefwd certs signs RSA requests only', {
        cause: err, hint: 'sign it with openssl x509 -req (certs/README.md shows the command)'
      })
    }
    throw new EdgefwdError('EDGEFWD_ERR_TLS_PEM_INVALID', 'not a PEM certificate signing request', {
      cause: err, hint: 'edgefwd certs csr makes one (a file starting with -----BEGIN CERTIFICATE REQUEST-----)'
    })
  }
  if (!csr.verify()) throw new EdgefwdError('EDGEFWD_ERR_TLS_PEM_INVALID', 'the signing request\'s signature does not verify: it was altered or is damaged')
  const requested = requestedSans(csr)
  const cn = csr.subject.getField('CN') as { value?: string } | null
  const sans = [...new Set([...requested, ...sansFor(options.kind, typeof cn?.value === 'string' ? cn.value : '', options.sans)])]
  return signPublicKey(readCa(ca), csr.publicKey as forge.pki.rsa.PublicKey, csr.subject.attributes, options.kind, sans,
    validityDates(options, LEAF_VALIDITY_DAYS))
}

interface SigningCa { cert: forge.pki.Certificate, key: forge.pki.rsa.PrivateKey }
interface Dates { notBefore: Date, notAfter: Date }

function signPublicKey ({ cert: caCert, key: caKey }: SigningCa, publicKey: forge.pki.rsa.PublicKey, subject: forge.pki.CertificateField[],
  kind: CertificateKind, sans: readonly string[], dates: Dates): string {
  const cert = forge.pki.createCertificate()
  cert.publicKey = publicKey
  setBasics(cert, dates)
  // A certificate outliving its CA stops verifying the day the CA expires; say so by its date.
  if (cert.validity.notAfter > caCert.validity.notAfter) cert.validity.notAfter = caCert.validity.notAfter
  cert.setSubject(subject)
  cert.setIssuer(caCert.subject.attributes)
  const extensions: object[] = [
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', [kind === 'client' ? 'clientAuth' : 'serverAuth']: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]
  if (sans.length > 0) extensions.push({ name: 'subjectAltName', altNames: sans.map(altName) })
  cert.setExtensions(extensions)
  cert.sign(caKey, forge.md.sha256.create())
  return lf(forge.pki.certificateToPem(cert))
}

/**
 * The CA's certificate and RSA key as forge objects. Refused clearly: an EC (or other) CA, an
 * encrypted CA key, a key of another certificate, and a certificate that is not a CA (openssl and
 * TLS stacks would reject every certificate it signed).
 */
function readCa (ca: PemPair): SigningCa {
  let keyObject
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(ca.keyPem)) {
    throw new EdgefwdError('EDGEFWD_ERR_TLS_KEY_PASSPHRASE', 'the CA key is encrypted; edgefwd certs signs with unencrypted CA keys only', {
      hint: 'sign with openssl x509 -req -CA ca.crt -CAkey ca.key, which asks for the passphrase (certs/README.md)'
    })
  }
  try {
    keyObject = createPrivateKey(ca.keyPem)
  } catch (err) {
    throw new EdgefwdError('EDGEFWD_ERR_TLS_PEM_INVALID', 'the CA key is not a readable PEM private key', { cause: err })
  }
  if (keyObject.asymmetricKeyType !== 'rsa') {
    throw new EdgefwdError('EDGEFWD_ERR_TLS_KEY_UNSUPPORTED', `the CA key is ${String(keyObject.asymmetricKeyType).toUpperCase()}; edgefwd certs signs with RSA CA keys only`, {
      hint: 'sign with openssl x509 -req -CA ca.crt -CAkey ca.key (certs/README.md shows the command)'
    })
  }
  let cert: forge.pki.Certificate
  try {
    cert = forge.pki.certificateFromPem(ca.certPem)
  } catch (err) {
    throw new EdgefwdError('EDGEFWD_ERR_TLS_PEM_INVALID', 'the CA certificate is not an RSA certificate in PEM form', {
      cause: err, hint: 'edgefwd certs signs with RSA CAs only; for an EC CA use openssl x509 -req (certs/README.md)'
    })
  }
  const constraints = cert.getExtension('basicConstraints') as { cA?: boolean } | undefined
  if (constraints?.cA !== true) {
    throw new EdgefwdError('EDGEFWD_ERR_TLS_CERT_USAGE', 'the CA certificate is not a CA (no basicConstraints CA:TRUE)', {
      hint: 'edgefwd certs init-ca makes a CA'
    })
  }
  if (cert.validity.notAfter.getTime() <= Date.now()) {
    throw new EdgefwdError('EDGEFWD_ERR_TLS_CERT_EXPIRED', `the CA certificate expired on ${cert.validity.notAfter.toISOString()}; nothing it signs would verify`, {
      hint: 'make a new CA (edgefwd certs init-ca) and distribute its ca.crt'
    })
  }
  const key = forge.pki.privateKeyFromPem(keyObject.export({ type: 'pkcs1', format: 'pem' }) as string)
  const caPublic = cert.publicKey as forge.pki.rsa.PublicKey
  if (caPublic.n.compareTo(key.n) !== 0) {
    throw new EdgefwdError('EDGEFWD_ERR_TLS_KEY_MISMATCH', 'the CA key does not belong to the CA certificate')
  }
  return { cert, key }
}

function generateRsa (bits: number): forge.pki.rsa.KeyPair {
  if (!Number.isInteger(bits) || bits < 2048 || bits > 8192) {
    throw new EdgefwdError('EDGEFWD_ERR_TLS_KEY_UNSUPPORTED', `RSA keys must be 2048 to 8192 bits, got ${bits}`)
  }
  return forge.pki.rsa.generateKeyPair({ bits, e: 0x10001 })
}

function privateKeyPem (key: forge.pki.rsa.PrivateKey): string {
  return lf(forge.pki.privateKeyInfoToPem(forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(key))))
}

/** forge ends PEM lines with CRLF (RFC 7468 allows it); files on a Linux gateway read better with LF, as openssl writes them. */
function lf (pem: string): string {
  return pem.replace(/\r\n/g, '\n')
}

function setBasics (cert: forge.pki.Certificate, dates: Dates): void {
  // 16 random bytes, top bit clear (a positive INTEGER), never zero.
  const serial = randomBytes(16)
  serial[0] = ((serial[0] as number) & 0x7f) | 0x01
  cert.serialNumber = serial.toString('hex')
  cert.validity.notBefore = dates.notBefore
  cert.validity.notAfter = dates.notAfter
}

function validityDates (validity: Validity, defaultDays: number): Dates {
  const notBefore = validity.notBefore ?? new Date(Date.now() - 60_000)
  const days = validity.validityDays ?? defaultDays
  if (validity.notAfter === undefined && (!Number.isFinite(days) || days <= 0)) {
    throw new EdgefwdError('EDGEFWD_ERR_USAGE', `a validity must be a positive number of days, got ${days}`)
  }
  const notAfter = validity.notAfter ?? new Date(notBefore.getTime() + days * DAY_MS)
  if (notAfter <= notBefore) throw new EdgefwdError('EDGEFWD_ERR_USAGE', 'a certificate\'s notAfter must be later than its notBefore')
  return { notBefore, notAfter }
}

function subjectAttributes (commonName: string, organization: string | undefined): forge.pki.CertificateField[] {
  if (commonName === '' || commonName.length > 64) {
    throw new EdgefwdError('EDGEFWD_ERR_USAGE', 'a certificate name (CN) must be 1 to 64 characters')
  }
  const attrs: forge.pki.CertificateField[] = [{ name: 'commonName', value: commonName }]
  if (organization !== undefined) attrs.push({ name: 'organizationName', value: organization })
  return attrs
}

function sansFor (kind: CertificateKind, commonName: string, sans: readonly string[] | undefined): string[] {
  const list = [...(sans ?? [])]
  if (kind === 'server' && commonName !== '' && !list.includes(commonName)) list.unshift(commonName)
  return list
}

function altName (name: string): { type: number, value?: string, ip?: string } {
  return isIP(name) !== 0 ? { type: 7, ip: name } : { type: 2, value: name }
}

function requestedSans (csr: forge.pki.CertificateSigningRequest): string[] {
  const attr = (csr.getAttribute({ name: 'extensionRequest' }) as { extensions?: Array<{ name?: string, altNames?: Array<{ type: number, value?: string, ip?: string }> }> } | null)
  const ext = attr?.extensions?.find(e => e.name === 'subjectAltName')
  return (ext?.altNames ?? []).flatMap(a => a.type === 7 && a.ip !== undefined ? [a.ip] : a.type === 2 && a.value !== undefined ? [a.value] : [])
}
