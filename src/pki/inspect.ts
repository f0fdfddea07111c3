/**
 * What `edgefwd certs inspect` says about a certificate: names, validity, key, usage, and the
 * answers to "does this key belong to it?" and "does it chain to this CA?". Everything is read by
 * node:crypto (`X509Certificate`, `createPrivateKey`), so RSA and EC certificates made by any tool
 * are described alike, unlike generate.ts, which is limited to what node-forge can sign.
 *
 * Pure apart from the clock, which is a parameter: bytes in, a structured report out, and a
 * formatter for people. A private key is only ever used for `checkPrivateKey`; nothing about it
 * but its type and size reaches a report.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto'
import { EdgefwdError, type ErrorCode } from '../errors.js'
import { isEncryptedKey, isPrivateKeyLabel, issuedBy, pemBlocks } from './keys.js'
import { isCertificateProblem, readCertificateBytes } from './x509.js'

export interface KeyDescription {
  /** 'RSA', 'EC', 'Ed25519', … (upper-cased node:crypto type for others). */
  type: string
  bits?: number
  /** NIST name for EC keys: 'P-256', 'P-384', 'P-521'; the OpenSSL name for other curves. */
  curve?: string
  /** 'RSA 2048', 'EC P-256'. */
  label: string
}

export interface Problem {
  code: ErrorCode
  message: string
}

export interface CertificateReport {
  file: string
  /** 1-based position in the file, and how many certificates the file holds (a chain or bundle). */
  position: number
  count: number
  subject: string
  issuer: string
  /** 'DNS:broker.local', 'IP:127.0.0.1', … */
  sans: string[]
  notBefore: string
  notAfter: string
  /** Days until notAfter, rounded; negative once expired. */
  daysLeft: number
  key: KeyDescription
  isCa: boolean
  selfSigned: boolean
  /** Names for well-known OIDs ('clientAuth', 'serverAuth'); absent when the certificate has no extendedKeyUsage. */
  extendedKeyUsage?: string[]
  serialNumber: string
  sha256Fingerprint: string
  /** Set when a key was given: checked against the first certificate of the file only (the leaf of a chain). */
  keyCheck?: { file: string, matches: boolean }
  /** Set when a CA was given. */
  caCheck?: { file: string, chains: boolean }
  problems: Problem[]
}

export interface InspectOptions {
  now: Date
  key?: { file: string, key: KeyObject }
  ca?: { file: string, certificates: readonly X509Certificate[] }
}

/** Certificates older clients cannot renew in time are worth a word before they expire. */
export const RENEW_WARNING_DAYS = 30
const DAY_MS = 86_400_000
const CURVES: Readonly<Record<string, string>> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' }
const CURVE_BITS: Readonly<Record<string, number>> = { 'P-256': 256, 'P-384': 384, 'P-521': 521 }
const EXTENDED_KEY_USAGES: Readonly<Record<string, string>> = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
  '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.4': 'emailProtection',
  '1.3.6.1.5.5.7.3.8': 'timeStamping',
  '1.3.6.1.5.5.7.3.9': 'OCSPSigning',
  '2.5.29.37.0': 'anyExtendedKeyUsage',
}
/**
 * Every certificate in a PEM file (a chain or bundle), by the rules `run` loads them with
 * (x509.ts): a file inspect accepts, run accepts.
 */
export function readCertificates (bytes: Buffer, source: string): X509Certificate[] {
  const read = readCertificateBytes(bytes, source)
  if (!isCertificateProblem(read)) return read
  const hint = read.kind === 'private-key' ? 'give the key with --key KEY' : read.hint
  throw new EdgefwdError('EDGEFWD_ERR_TLS_PEM_INVALID', `${source} ${read.problem}`, { ...(hint === undefined ? {} : { hint }), cause: read.cause })
}

/** An unencrypted private key, for checking that it belongs to a certificate. */
export function readPrivateKey (text: string, source: string): KeyObject {
  const block = pemBlocks(text).find(b => isPrivateKeyLabel(b.label))
  if (block === undefined) {
    const what = text.includes('-----BEGIN CERTIFICATE-----') ? 'a certificate, not a private key' : 'no PEM private key'
    throw new EdgefwdError('EDGEFWD_ERR_TLS_PEM_INVALID', `${source} holds ${what}`)
  }
  if (isEncryptedKey(block)) {
    // Never handed to createPrivateKey without a passphrase: OpenSSL could prompt on the terminal.
    throw new EdgefwdError('EDGEFWD_ERR_TLS_KEY_PASSPHRASE', `${source} is encrypted; certs inspect compares unencrypted keys only`, {
      hint: 'compare the public keys instead: openssl pkey -in KEY -pubout and openssl x509 -in CERT -noout -pubkey',
    })
  }
  try {
    return createPrivateKey(block.pem)
  } catch (err) {
    throw new EdgefwdError('EDGEFWD_ERR_TLS_PEM_INVALID', `${source} holds a damaged or unsupported private key`, { cause: err })
  }
}

export function describeKey (key: KeyObject): KeyDescription {
  const details = key.asymmetricKeyDetails ?? {}
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss': {
      const type = key.asymmetricKeyType === 'rsa' ? 'RSA' : 'RSA-PSS'
      const bits = details.modulusLength
      return { type, ...(bits === undefined ? {} : { bits }), label: bits === undefined ? type : `${type} ${bits}` }
    }
    case 'ec': {
      const curve = CURVES[details.namedCurve ?? ''] ?? details.namedCurve ?? 'unknown curve'
      const bits = CURVE_BITS[curve]
      return { type: 'EC', curve, ...(bits === undefined ? {} : { bits }), label: `EC ${curve}` }
    }
    case 'ed25519': return { type: 'Ed25519', bits: 256, label: 'Ed25519' }
    case 'ed448': return { type: 'Ed448', bits: 456, label: 'Ed448' }
    default: {
      const type = String(key.asymmetricKeyType ?? 'unknown').toUpperCase()
      return { type, label: type }
    }
  }
}

/** One report per certificate, in file order. */
export function inspectCertificates (file: string, certificates: readonly X509Certificate[], options: InspectOptions): CertificateReport[] {
  return certificates.map((certificate, index) => {
    const others = certificates.filter((_, i) => i !== index)
    return inspectOne(certificate, { file, position: index + 1, count: certificates.length, others, ...options })
  })
}

function inspectOne (certificate: X509Certificate, context: InspectOptions & { file: string, position: number, count: number,
  others: readonly X509Certificate[] }): CertificateReport {
  const notBefore = new Date(certificate.validFrom)
  const notAfter = new Date(certificate.validTo)
  const now = context.now.getTime()
  // Rounded: a certificate just issued for 397 days (from a minute ago) has 397 days left, not 396.
  const daysLeft = Math.round((notAfter.getTime() - now) / DAY_MS)
  const key = describeKey(certificate.publicKey)
  const problems: Problem[] = []

  if (now > notAfter.getTime()) {
    problems.push({ code: 'EDGEFWD_ERR_TLS_CERT_EXPIRED', message: `expired on ${isoSeconds(notAfter)}` })
  }
  if (now < notBefore.getTime()) {
    problems.push({ code: 'EDGEFWD_ERR_TLS_CERT_NOT_YET_VALID', message: `not valid before ${isoSeconds(notBefore)} (check this machine's clock)` })
  }

  let keyCheck: CertificateReport['keyCheck']
  if (context.key !== undefined && context.position === 1) {
    const matches = certificate.checkPrivateKey(context.key.key)
    keyCheck = { file: context.key.file, matches }
    if (!matches) {
      const given = describeKey(context.key.key).label
      const detail = given === key.label ? '' : ` (the key is ${given}, the certificate's is ${key.label})`
      problems.push({ code: 'EDGEFWD_ERR_TLS_KEY_MISMATCH', message: `the key in ${context.key.file} does not belong to this certificate${detail}` })
    }
  }

  let caCheck: CertificateReport['caCheck']
  if (context.ca !== undefined) {
    const anchors = context.ca.certificates
    const chains = chainsTo(certificate, anchors, context.others, 0)
    caCheck = { file: context.ca.file, chains }
    if (!chains) {
      const sameName = anchors.some(ca => ca.subject === certificate.issuer)
      const why = sameName
        ? 'its issuer has the CA\'s name but the signature does not verify: a different CA of the same name'
        : `its issuer is ${oneLine(certificate.issuer)}`
      problems.push({ code: 'EDGEFWD_ERR_TLS_CERT_UNTRUSTED', message: `not signed by the CA in ${context.ca.file}: ${why}` })
    }
  }

  // Typed string[], but undefined at run time when the certificate has no extendedKeyUsage.
  const usage = certificate.keyUsage as string[] | undefined
  return {
    file: context.file,
    position: context.position,
    count: context.count,
    subject: oneLine(certificate.subject),
    issuer: oneLine(certificate.issuer),
    sans: parseSubjectAltName(certificate.subjectAltName),
    notBefore: isoSeconds(notBefore),
    notAfter: isoSeconds(notAfter),
    daysLeft,
    key,
    isCa: certificate.ca,
    selfSigned: certificate.checkIssued(certificate) && certificate.verify(certificate.publicKey),
    ...(usage === undefined ? {} : { extendedKeyUsage: usage.map(oid => EXTENDED_KEY_USAGES[oid] ?? oid) }),
    serialNumber: certificate.serialNumber,
    sha256Fingerprint: certificate.fingerprint256,
    ...(keyCheck === undefined ? {} : { keyCheck }),
    ...(caCheck === undefined ? {} : { caCheck }),
    problems,
  }
}

/** Issued by one of `anchors`, directly or through certificates of the same file (intermediates). */
function chainsTo (certificate: X509Certificate, anchors: readonly X509Certificate[], intermediates: readonly X509Certificate[], depth: number): boolean {
  if (anchors.some(anchor => anchor.fingerprint256 === certificate.fingerprint256 || issuedBy(certificate, anchor))) return true
  if (depth >= 4) return false
  return intermediates.some(next => issuedBy(certificate, next) &&
    chainsTo(next, anchors, intermediates.filter(other => other !== next), depth + 1))
}


/** The human text: one block per certificate, problems last, each with its code. */
export function formatReports (reports: readonly CertificateReport[], now: Date): string {
  return reports.map(report => formatReport(report, now)).join('\n')
}

function formatReport (report: CertificateReport, now: Date): string {
  const title = report.count === 1 ? report.file : `${report.file} (certificate ${report.position} of ${report.count})`
  const rows: Array<[string, string]> = [
    ['subject', report.subject],
    ['issuer', report.selfSigned ? `${report.issuer} (self-signed)` : report.issuer],
    ['SANs', report.sans.length === 0 ? 'none' : report.sans.join(', ')],
    ['valid from', report.notBefore],
    ['valid until', `${report.notAfter} (${timeLeft(Date.parse(report.notAfter) - now.getTime())})`],
    ['key', report.key.label],
    ['CA', report.isCa ? 'yes' : 'no'],
    ['usage', report.extendedKeyUsage === undefined ? 'any (no extendedKeyUsage)' : report.extendedKeyUsage.join(', ')],
    ['serial', report.serialNumber],
    ['SHA-256', report.sha256Fingerprint],
  ]
  if (report.keyCheck !== undefined) rows.push(['key file', `${report.keyCheck.file}: ${report.keyCheck.matches ? 'matches' : 'does NOT match'}`])
  if (report.caCheck !== undefined) rows.push(['chains to', `${report.caCheck.file}: ${report.caCheck.chains ? 'yes' : 'NO'}`])
  for (const problem of report.problems) rows.push(['problem', `${problem.code}: ${problem.message}`])
  if (report.problems.length === 0 && report.daysLeft < RENEW_WARNING_DAYS) rows.push(['note', `expires in ${report.daysLeft} days: renew it now`])
  const width = Math.max(...rows.map(([label]) => label.length))
  return [title, ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)].join('\n') + '\n'
}

function timeLeft (ms: number): string {
  const span = Math.abs(ms)
  const text = span < 2 * DAY_MS ? plural(Math.floor(span / 3_600_000), 'hour') : plural(Math.round(span / DAY_MS), 'day')
  return ms < 0 ? `expired ${text} ago` : `${text} left`
}

function plural (n: number, unit: string): string {
  return n === 1 ? `1 ${unit}` : `${n} ${unit}s`
}

/**
 * Node prints `DNS:a, IP Address:127.0.0.1`, quoting (JSON) any value holding a comma, quote
 * or control character so that one name cannot pose as two.
 */
export function parseSubjectAltName (text: string | undefined): string[] {
  if (text === undefined || text === '') return []
  const names: string[] = []
  let rest = text
  while (rest !== '') {
    const colon = rest.indexOf(':')
    if (colon < 0) break
    const type = rest.slice(0, colon) === 'IP Address' ? 'IP' : rest.slice(0, colon)
    rest = rest.slice(colon + 1)
    let value: string
    const quoted = rest.startsWith('"') ? /^"(?:[^"\\]|\\.)*"/.exec(rest) : null
    if (quoted !== null) {
      value = JSON.parse(quoted[0]) as string
      rest = rest.slice(quoted[0].length)
    } else {
      const end = rest.indexOf(', ')
      value = end < 0 ? rest : rest.slice(0, end)
      rest = end < 0 ? '' : rest.slice(end)
    }
    names.push(`${type}:${value}`)
    if (rest.startsWith(', ')) rest = rest.slice(2)
  }
  return names
}

/** Node separates the parts of a name with newlines; one line reads better and fits JSON. */
function oneLine (name: string): string {
  return name.split('\n').join(', ')
}

function isoSeconds (date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z')
}
