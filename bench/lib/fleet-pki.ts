/**
 * The fleet bench's certificates, made at run time (no PEM is committed): an EC P-256 CA, the
 * brokers' server certificate (CN localhost, SAN 127.0.0.1 and localhost) and one client
 * certificate per gateway and per extra client (the sinks), each with CN = its id: the broker
 * (NATS verify_and_map) takes the subject `CN=<id>` as the user name.
 *
 * Made for a thousand clients or more on a 2-core VM. The keys come from node:crypto; the
 * certificates are signed by the openssl CLI (OpenSSL 3), with the extensions of
 * test/helpers/test-pki.ts makeEcSet(), in one `openssl ca` run for all the clients. Not one
 * openssl per certificate: starting an openssl costs ~20 ms here however many run at once
 * (measured: 1000 `openssl req -x509 -CA …` took 28 s one at a time, 21 s two at a time, 18 s
 * four at a time), while `openssl ca -infiles` signs 1000 requests in 0.7 s. openssl makes one
 * request per run and node:crypto has no request API, so the requests (PKCS#10, RFC 2986) are
 * DER-encoded here, self-signed with each client's key; openssl ca checks every self-signature
 * before it signs.
 */
import { execFile } from 'node:child_process'
import { generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

/** PEM text of a certificate and of its private key (PKCS#8). */
export interface CertificatePem {
  cert: string
  key: string
}

export interface FleetPki {
  /** The CA certificate, PEM: what brokers and clients trust. */
  ca: string
  caKey: string
  /** The brokers' certificate: CN localhost, SAN IP:127.0.0.1 and DNS:localhost, serverAuth. */
  server: CertificatePem
  /** By gateway id and extra client name (the certificate's CN): clientAuth certificates. */
  clients: Map<string, CertificatePem>
}

const DAYS = '30'
/** Bound on one openssl run: signing 1000 requests takes 0.7 s on the 2-core VM. */
const OPENSSL_TIMEOUT_MS = 120_000

/** openssl's configuration: the CA's own request, `openssl ca`'s settings and the three certificate profiles. */
const CONFIG = [
  '[req]', 'distinguished_name = dn', 'prompt = no', '[dn]', 'CN = edgefwd fleet bench CA',
  '[ca]', 'default_ca = fleet',
  '[fleet]', 'database = index.txt', 'serial = serial', 'new_certs_dir = .', 'certificate = ca.crt', 'private_key = ca.key',
  'default_md = sha256', `default_days = ${DAYS}`, 'policy = by_cn', 'unique_subject = no', 'email_in_dn = no',
  '[by_cn]', 'commonName = supplied',
  '[ca_ext]', 'basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign', 'subjectKeyIdentifier = hash',
  '[server_ext]', 'basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = serverAuth',
  'subjectAltName = IP:127.0.0.1,DNS:localhost', 'authorityKeyIdentifier = keyid',
  '[client_ext]', 'basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = clientAuth',
  'authorityKeyIdentifier = keyid', ''
].join('\n')

/**
 * The CA, the server certificate and a client certificate for each of `gatewayIds` and
 * `extraClients` (names must be distinct). Works in a new directory under `dir`, removed before
 * it returns; prints nothing.
 */
export async function makeFleetPki (dir: string, gatewayIds: readonly string[], extraClients: readonly string[]): Promise<FleetPki> {
  const names = [...gatewayIds, ...extraClients]
  if (new Set(names).size !== names.length) throw new RangeError('makeFleetPki: gateway ids and extra clients must all be distinct')
  const work = mkdtempSync(join(dir, 'fleet-pki-'))
  try {
    const caKey = newKey()
    writeFileSync(join(work, 'ca.key'), caKey.pem, { mode: 0o600 })
    writeFileSync(join(work, 'ca.cnf'), CONFIG)
    writeFileSync(join(work, 'index.txt'), '')
    writeFileSync(join(work, 'serial'), '1000\n')
    await openssl(work, ['req', '-new', '-x509', '-key', 'ca.key', '-config', 'ca.cnf', '-extensions', 'ca_ext', '-days', DAYS, '-out', 'ca.crt'])
    const [server] = await issue(work, 'server_ext', ['localhost'])
    const clients = await issue(work, 'client_ext', names)
    return {
      ca: readFileSync(join(work, 'ca.crt'), 'utf8'),
      caKey: caKey.pem,
      server: server as CertificatePem,
      clients: new Map(names.map((name, i) => [name, clients[i] as CertificatePem]))
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

interface NewKey {
  pem: string
  privateKey: KeyObject
  spki: Buffer
}

function newKey (): NewKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, privateKey, spki: publicKey.export({ type: 'spki', format: 'der' }) }
}

/** Certificates of the `extensions` profile for these common names, in their order: one `openssl ca` run. */
async function issue (work: string, extensions: string, commonNames: readonly string[]): Promise<CertificatePem[]> {
  const out = join(work, extensions)
  mkdirSync(join(out, 'requests'), { recursive: true })
  const firstSerial = BigInt(`0x${readFileSync(join(work, 'serial'), 'utf8').trim()}`)
  const keys = commonNames.map((cn, i) => {
    const key = newKey()
    writeFileSync(join(out, 'requests', `${i}.csr`), pem('CERTIFICATE REQUEST', certificationRequest(key, cn)))
    return key.pem
  })
  // -infiles comes last: every argument after it is a request.
  await openssl(work, ['ca', '-batch', '-config', 'ca.cnf', '-extensions', extensions, '-notext', '-outdir', out,
    '-infiles', ...commonNames.map((_, i) => join(out, 'requests', `${i}.csr`))])
  // openssl ca names each certificate by its serial and gives serials in the order of -infiles.
  const certs = new Array<string>(commonNames.length)
  for (const file of readdirSync(out).filter(f => f.endsWith('.pem'))) {
    const cert = readFileSync(join(out, file), 'utf8')
    certs[Number(BigInt(`0x${new X509Certificate(cert).serialNumber}`) - firstSerial)] = cert
  }
  return keys.map((key, i) => {
    const cert = certs[i]
    if (cert === undefined) throw new Error(`openssl ca issued no certificate for ${JSON.stringify(commonNames[i])}`)
    return { cert, key }
  })
}

async function openssl (cwd: string, args: readonly string[]): Promise<void> {
  try {
    // openssl ca writes a line or two per certificate on stderr: room for tens of thousands.
    await promisify(execFile)('openssl', args, { cwd, timeout: OPENSSL_TIMEOUT_MS, maxBuffer: 64 << 20 })
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim().split('\n').slice(-5).join('\n')
    throw new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${(err as Error).message}\n${stderr}`, { cause: err })
  }
}

// PKCS#10 in DER (X.690): a CertificationRequest with subject CN = `commonName`, no attributes.
const OID_COMMON_NAME = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03])
const ECDSA_WITH_SHA256 = der(0x30, Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]))
const VERSION_1 = Buffer.from([0x02, 0x01, 0x00])
const NO_ATTRIBUTES = Buffer.from([0xa0, 0x00])

function certificationRequest (key: NewKey, commonName: string): Buffer {
  const subject = der(0x30, der(0x31, der(0x30, OID_COMMON_NAME, der(0x0c, Buffer.from(commonName, 'utf8')))))
  const info = der(0x30, VERSION_1, subject, key.spki, NO_ATTRIBUTES)
  // node:crypto signs with an EC key as ECDSA-Sig-Value in DER, the form X.509 wants.
  const signature = sign('sha256', info, key.privateKey)
  return der(0x30, info, ECDSA_WITH_SHA256, der(0x03, Buffer.from([0]), signature))
}

/** One TLV, definite length (up to 64 KiB: a request is a few hundred bytes). */
function der (tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents)
  const n = body.length
  if (n > 0xffff) throw new RangeError(`DER value of ${n} bytes`)
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff]
  return Buffer.concat([Buffer.from([tag, ...length]), body])
}

function pem (label: string, bytes: Buffer): string {
  return `-----BEGIN ${label}-----\n${bytes.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`
}
