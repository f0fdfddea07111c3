/**
 * edgefwd certs against the openssl command line, both ways: openssl signs and verifies what
 * edgefwd makes, and `certs inspect` reads what openssl makes (ECDSA P-256 included). The openssl
 * commands and extension files are the ones certs/README.md gives.
 */
import { execFile } from 'node:child_process'
import { readFileSync, existsSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { join } from 'node:path'
import { connect, createServer, type TLSSocket } from 'node:tls'
import t, { type Test } from 'tap'
import { commands } from '../../src/cli/commands/index.js'
import { main } from '../../src/cli/program.js'

const OPENSSL = '/usr/bin/openssl'

// Extension files exactly as certs/README.md shows them.
const CLIENT_EXT = [
  'basicConstraints = critical, CA:FALSE',
  'keyUsage = critical, digitalSignature, keyEncipherment',
  'extendedKeyUsage = clientAuth',
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid',
  '',
].join('\n')
const CLIENT_EC_EXT = CLIENT_EXT.replace(', keyEncipherment', '')
const INTERMEDIATE_EXT = [
  'basicConstraints = critical, CA:TRUE, pathlen:0',
  'keyUsage = critical, keyCertSign, cRLSign',
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid',
  '',
].join('\n')

interface Run { code: number, stdout: string, stderr: string }

async function edgefwd (...argv: string[]): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const io = { stdout: { write: (s: string) => { stdout += s } }, stderr: { write: (s: string) => { stderr += s } } }
  return { code: await main(argv, {}, io, commands), stdout, stderr }
}

/** The assertion's name: short when it passes, the command's output when it does not. */
function exitZero (result: Run): string {
  return result.code === 0 ? 'exit 0' : `exit ${result.code}: ${result.stdout}${result.stderr}`
}

async function openssl (cwd: string, ...args: string[]): Promise<Run> {
  return await new Promise(resolve => {
    execFile(OPENSSL, args, { cwd, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, stdout, stderr })
    })
  })
}

/** Runs openssl and fails the test, with openssl's own words, when it exits non-zero. */
async function ok (t: Test, cwd: string, ...args: string[]): Promise<string> {
  const result = await openssl(cwd, ...args)
  t.equal(result.code, 0, `openssl ${args.join(' ')}${result.code === 0 ? '' : `: ${result.stderr}`}`)
  return result.stdout
}

/** The EC P-256 CA of certs/README.md ("An EC P-256 CA with openssl"). */
async function opensslEcCa (t: Test, dir: string, name = 'Operator EC CA'): Promise<void> {
  await ok(t, dir, 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca.key')
  await ok(t, dir, 'req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '3650', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.crt')
}

interface Inspected { ok: boolean, certificates: Array<Record<string, unknown>> }

async function inspectJson (t: Test, ...argv: string[]): Promise<Inspected> {
  const result = await edgefwd('certs', 'inspect', '--json', ...argv)
  t.equal(result.stderr, '')
  return JSON.parse(result.stdout) as Inspected
}

if (!existsSync(OPENSSL)) {
  // Not a pass with no assertion: the cross-checks are the point of this file (.ci/run installs openssl).
  t.fail(`${OPENSSL} is not installed: these tests check edgefwd's certificates with it (apt install openssl)`)
} else {
  const version = (await openssl('/', 'version')).stdout
  t.comment(version.trim())

  // The edgefwd CA used by several tests.
  const root = t.testdir({})
  const edgeCa = join(root, 'edge-ca')
  t.equal((await edgefwd('certs', 'init-ca', '--out', edgeCa, '--key-bits', '2048')).code, 0)

  t.test('openssl verifies what edgefwd certs makes', async t => {
    t.equal((await edgefwd('certs', 'issue', '--ca', edgeCa, '--client', 'gw-1')).code, 0)
    t.equal((await edgefwd('certs', 'issue', '--ca', edgeCa, '--server', 'broker.local', '--san', '127.0.0.1')).code, 0)
    t.equal((await ok(t, edgeCa, 'verify', '-CAfile', 'ca.crt', '-purpose', 'sslclient', 'gw-1.crt')).trim(), 'gw-1.crt: OK')
    t.equal((await ok(t, edgeCa, 'verify', '-CAfile', 'ca.crt', '-purpose', 'sslserver', 'broker.local.crt')).trim(), 'broker.local.crt: OK')
    t.not((await openssl(edgeCa, 'verify', '-CAfile', 'ca.crt', '-purpose', 'sslserver', 'gw-1.crt')).code, 0, 'a client certificate is no server certificate')
    t.not((await openssl(edgeCa, 'verify', '-CAfile', 'ca.crt', '-purpose', 'sslclient', 'broker.local.crt')).code, 0, 'and the other way round')
    t.match(await ok(t, edgeCa, 'verify', '-CAfile', 'ca.crt', '-verify_hostname', 'broker.local', '-verify_ip', '127.0.0.1', 'broker.local.crt'), /OK/)

    const caText = await ok(t, edgeCa, 'x509', '-in', 'ca.crt', '-noout', '-ext', 'basicConstraints,keyUsage')
    t.match(caText, /Basic Constraints: critical\n\s+CA:TRUE, pathlen:0/)
    t.match(caText, /Key Usage: critical\n\s+Digital Signature, Certificate Sign, CRL Sign/)
    const leafText = await ok(t, edgeCa, 'x509', '-in', 'gw-1.crt', '-noout', '-ext', 'basicConstraints,keyUsage,extendedKeyUsage,authorityKeyIdentifier')
    t.match(leafText, /CA:FALSE/)
    t.match(leafText, /Digital Signature, Key Encipherment/)
    t.match(leafText, /TLS Web Client Authentication/)
    for (const key of ['ca.key', 'gw-1.key']) t.match(await ok(t, edgeCa, 'pkey', '-in', key, '-check', '-noout'), /Key is valid/)

    const gw = join(root, 'gateway-2')
    t.equal((await edgefwd('certs', 'csr', '--key-out', join(gw, 'gw.key'), '--csr-out', join(gw, 'gw.csr'), '--client', 'gw-2', '--san', '10.0.0.2')).code, 0)
    const csrText = await openssl(gw, 'req', '-in', 'gw.csr', '-noout', '-verify', '-text')
    t.equal(csrText.code, 0)
    t.match(csrText.stderr + csrText.stdout, /verify OK|self-signature ok/i)
    t.match(csrText.stdout, /Subject: CN ?= ?gw-2/)
    t.match(csrText.stdout, /TLS Web Client Authentication/)
    t.match(csrText.stdout, /IP Address:10\.0\.0\.2/)
  })

  t.test('an edgefwd CSR signed by openssl x509 -req with an EC P-256 CA inspects fine and chains', async t => {
    // One testdir per test (a second call would replace the first): the operator's and the gateway's side in it.
    const dir = t.testdir({ operator: { 'client.ext': CLIENT_EXT }, gateway: {} })
    const operator = join(dir, 'operator')
    const gw = join(dir, 'gateway')
    await opensslEcCa(t, operator)
    t.equal((await edgefwd('certs', 'csr', '--key-out', join(gw, 'gw-5.key'), '--csr-out', join(operator, 'gw-5.csr'), '--client', 'gw-5', '--san', 'gw-5.local')).code, 0)

    await ok(t, operator, 'x509', '-req', '-in', 'gw-5.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-days', '397', '-sha256',
      '-copy_extensions', 'copy', '-extfile', 'client.ext', '-out', 'gw-5.crt')
    t.equal((await ok(t, operator, 'verify', '-CAfile', 'ca.crt', '-purpose', 'sslclient', 'gw-5.crt')).trim(), 'gw-5.crt: OK')

    const text = await edgefwd('certs', 'inspect', join(operator, 'gw-5.crt'), '--key', join(gw, 'gw-5.key'), '--ca', join(operator, 'ca.crt'))
    t.equal(text.code, 0, exitZero(text))
    t.match(text.stdout, /^ {2}issuer +CN=Operator EC CA$/m)
    t.match(text.stdout, /^ {2}key +RSA 2048$/m)
    t.match(text.stdout, /^ {2}SANs +DNS:gw-5\.local$/m)
    t.match(text.stdout, /^ {2}key file +.*: matches$/m)
    t.match(text.stdout, /^ {2}chains to +.*: yes$/m)
    t.match(text.stdout, /\(397 days left\)/)

    const json = await inspectJson(t, join(operator, 'gw-5.crt'), '--key', join(gw, 'gw-5.key'), '--ca', join(operator, 'ca.crt'))
    t.match(json, { ok: true, certificates: [{ subject: 'CN=gw-5', extendedKeyUsage: ['clientAuth'], keyCheck: { matches: true }, caCheck: { chains: true } }] })
    const caJson = await inspectJson(t, join(operator, 'ca.crt'))
    t.match(caJson.certificates, [{ key: { type: 'EC', curve: 'P-256', bits: 256, label: 'EC P-256' }, isCa: true, selfSigned: true }])

    t.match(await edgefwd('certs', 'sign', '--ca', operator, join(operator, 'gw-5.csr'), '--out', join(operator, 'x.crt')), {
      code: 1, stderr: /^edgefwd: the CA key is EC; edgefwd certs signs with RSA CA keys only\nhint: sign with openssl x509 -req/,
    }, 'edgefwd itself refuses an EC CA and points to openssl')
  })

  t.test('an edgefwd CSR signed by openssl x509 -req with an edgefwd CA inspects fine and chains', async t => {
    const gw = t.testdir({ 'client.ext': CLIENT_EXT })
    t.equal((await edgefwd('certs', 'csr', '--key-out', join(gw, 'gw-6.key'), '--csr-out', join(gw, 'gw-6.csr'), '--client', 'gw-6')).code, 0)
    await ok(t, gw, 'x509', '-req', '-in', 'gw-6.csr', '-CA', join(edgeCa, 'ca.crt'), '-CAkey', join(edgeCa, 'ca.key'), '-days', '397', '-sha256',
      '-copy_extensions', 'copy', '-extfile', 'client.ext', '-out', 'gw-6.crt')
    t.equal((await ok(t, gw, 'verify', '-CAfile', join(edgeCa, 'ca.crt'), '-purpose', 'sslclient', 'gw-6.crt')).trim(), 'gw-6.crt: OK')
    const result = await edgefwd('certs', 'inspect', join(gw, 'gw-6.crt'), '--key', join(gw, 'gw-6.key'), '--ca', edgeCa)
    t.equal(result.code, 0, exitZero(result))
    t.match(result.stdout, /^ {2}chains to +.*ca\.crt: yes$/m)
    t.match(result.stdout, /^ {2}key file +.*gw-6\.key: matches$/m)
  })

  t.test('an openssl EC P-256 CA and client are inspected correctly', async t => {
    const dir = t.testdir({ 'client-ec.ext': CLIENT_EC_EXT })
    await opensslEcCa(t, dir)
    await ok(t, dir, 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'gw-7.key')
    await ok(t, dir, 'req', '-new', '-key', 'gw-7.key', '-subj', '/CN=gw-7', '-out', 'gw-7.csr')
    await ok(t, dir, 'x509', '-req', '-in', 'gw-7.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-days', '397', '-sha256',
      '-extfile', 'client-ec.ext', '-out', 'gw-7.crt')
    await ok(t, dir, 'pkey', '-in', 'gw-7.key', '-traditional', '-out', 'gw-7-sec1.key')
    t.match(readFileSync(join(dir, 'gw-7-sec1.key'), 'utf8'), /^-----BEGIN EC PRIVATE KEY-----/)

    const result = await edgefwd('certs', 'inspect', join(dir, 'gw-7.crt'), '--key', join(dir, 'gw-7.key'), '--ca', join(dir, 'ca.crt'))
    t.equal(result.code, 0, exitZero(result))
    t.match(result.stdout, /^ {2}key +EC P-256$/m)
    t.match(result.stdout, /^ {2}usage +clientAuth$/m)
    t.match(result.stdout, /^ {2}key file +.*gw-7\.key: matches$/m)
    t.match(result.stdout, /^ {2}chains to +.*ca\.crt: yes$/m)

    const json = await inspectJson(t, join(dir, 'gw-7.crt'), '--key', join(dir, 'gw-7-sec1.key'), '--ca', dir)
    t.match(json, { ok: true, certificates: [{ key: { type: 'EC', curve: 'P-256', bits: 256 }, keyCheck: { matches: true }, caCheck: { chains: true } }] },
      'a SEC1 (BEGIN EC PRIVATE KEY) key and a CA directory work too')

    const wrong = await edgefwd('certs', 'inspect', join(dir, 'gw-7.crt'), '--key', join(dir, 'ca.key'), '--ca', join(edgeCa, 'ca.crt'))
    t.equal(wrong.code, 1)
    t.match(wrong.stdout, /^ {2}problem +EDGEFWD_ERR_TLS_KEY_MISMATCH: /m)
    t.match(wrong.stdout, /^ {2}problem +EDGEFWD_ERR_TLS_CERT_UNTRUSTED: /m)

    const ecCsr = await edgefwd('certs', 'sign', '--ca', edgeCa, join(dir, 'gw-7.csr'), '--out', join(dir, 'no.crt'))
    t.match(ecCsr, { code: 1, stderr: /^edgefwd: the signing request's key is not RSA; edgefwd certs signs RSA requests only\nhint: sign it with openssl x509 -req/ })
  })

  t.test('a chain through an intermediate: the file\'s own certificates complete the path', async t => {
    const dir = t.testdir({ 'intermediate.ext': INTERMEDIATE_EXT, 'client-ec.ext': CLIENT_EC_EXT })
    await opensslEcCa(t, dir, 'Root EC CA')
    // The README's CA has pathlen:0; a root for an intermediate needs pathlen:1.
    await ok(t, dir, 'req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '3650', '-subj', '/CN=Root EC CA',
      '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:1', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'root.crt')
    await ok(t, dir, 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'int.key')
    await ok(t, dir, 'req', '-new', '-key', 'int.key', '-subj', '/CN=Issuing EC CA', '-out', 'int.csr')
    await ok(t, dir, 'x509', '-req', '-in', 'int.csr', '-CA', 'root.crt', '-CAkey', 'ca.key', '-days', '1000', '-sha256', '-extfile', 'intermediate.ext', '-out', 'int.crt')
    await ok(t, dir, 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'leaf.key')
    await ok(t, dir, 'req', '-new', '-key', 'leaf.key', '-subj', '/CN=gw-8', '-out', 'leaf.csr')
    await ok(t, dir, 'x509', '-req', '-in', 'leaf.csr', '-CA', 'int.crt', '-CAkey', 'int.key', '-days', '100', '-sha256', '-extfile', 'client-ec.ext', '-out', 'leaf.crt')
    writeFileSync(join(dir, 'chain.pem'), readFileSync(join(dir, 'leaf.crt'), 'utf8') + readFileSync(join(dir, 'int.crt'), 'utf8'))
    await ok(t, dir, 'verify', '-CAfile', 'root.crt', '-untrusted', 'int.crt', '-purpose', 'sslclient', 'leaf.crt')

    const chain = await inspectJson(t, join(dir, 'chain.pem'), '--key', join(dir, 'leaf.key'), '--ca', join(dir, 'root.crt'))
    t.match(chain, { ok: true, certificates: [
      { position: 1, count: 2, subject: 'CN=gw-8', keyCheck: { matches: true }, caCheck: { chains: true } },
      { position: 2, count: 2, subject: 'CN=Issuing EC CA', isCa: true, caCheck: { chains: true } },
    ] })
    const alone = await inspectJson(t, join(dir, 'leaf.crt'), '--ca', join(dir, 'root.crt'))
    t.match(alone, { ok: false, certificates: [{ caCheck: { chains: false }, problems: [{ code: 'EDGEFWD_ERR_TLS_CERT_UNTRUSTED' }] }] },
      'without the intermediate there is no path')
  })

  t.test('edgefwd certificates carry a mutual TLS handshake on loopback', async t => {
    t.equal((await edgefwd('certs', 'issue', '--ca', edgeCa, '--server', 'localhost', '--san', '127.0.0.1')).code, 0)
    t.equal((await edgefwd('certs', 'issue', '--ca', edgeCa, '--client', 'gw-tls')).code, 0)
    const file = (name: string): Buffer => readFileSync(join(edgeCa, name))
    const server = createServer({ key: file('localhost.key'), cert: file('localhost.crt'), ca: file('ca.crt'), requestCert: true, rejectUnauthorized: true },
      socket => { socket.end(`hello ${socket.getPeerCertificate().subject.CN}`) })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    t.teardown(() => { server.close() })
    const { port } = server.address() as { port: number }
    const client: TLSSocket = connect({ host: '127.0.0.1', port, servername: 'localhost', key: file('gw-tls.key'), cert: file('gw-tls.crt'), ca: file('ca.crt') })
    t.teardown(() => { client.destroy() })
    let received = ''
    client.setEncoding('utf8').on('data', (chunk: string) => { received += chunk })
    await once(client, 'end', { signal: AbortSignal.timeout(5_000) })
    t.ok(client.authorized, `the server certificate verified: ${String(client.authorizationError ?? '')}`)
    t.equal(received, 'hello gw-tls')
  })
}
