import { createPrivateKey, X509Certificate } from 'node:crypto'
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { commands } from '../../src/cli/commands/index.js'
import { main } from '../../src/cli/program.js'
import { isEdgefwdError } from '../../src/errors.js'
import { issueCertificate } from '../../src/pki/generate.js'
import { writePemFiles } from '../../src/pki/pem-files.js'

interface Run { code: number, stdout: string, stderr: string }

async function run (argv: string[]): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const io = { stdout: { write: (s: string) => { stdout += s } }, stderr: { write: (s: string) => { stderr += s } } }
  const code = await main(argv, {}, io, commands)
  return { code, stdout, stderr }
}

/** The assertion's name: short when it passes, the command's output when it does not. */
function exitZero (result: Run): string {
  return result.code === 0 ? 'exit 0' : `exit ${result.code}: ${result.stdout}${result.stderr}`
}

function mode (path: string): number {
  return statSync(path).mode & 0o777
}

function cert (path: string): X509Certificate {
  return new X509Certificate(readFileSync(path))
}

/** No command may print key material: no PEM key block, no base64 run of a key. */
function assertNoKeyMaterial (t: Test, result: Run, keyPem: string): void {
  const body = keyPem.split('\n').find(line => /^[A-Za-z0-9+/]{64}$/.test(line)) ?? '-'
  t.notMatch(result.stdout + result.stderr, /PRIVATE KEY/, 'no key block printed')
  t.notOk((result.stdout + result.stderr).includes(body), 'no key bytes printed')
}

// One CA for the file, made by the command itself (2048 bits: key generation is the slow part).
const root = t.testdir({})
const caDir = join(root, 'ca')
const made = await run(['certs', 'init-ca', '--out', caDir, '--name', 'CLI Test CA', '--org', 'Acme', '--key-bits', '2048', '--days', '400'])

t.test('init-ca writes ca.crt (0644) and ca.key (0600) in a 0700 directory', async t => {
  t.equal(made.code, 0, exitZero(made))
  t.equal(made.stderr, '')
  t.match(made.stdout, new RegExp(`^wrote ${caDir}/ca\\.crt \\(certificate, CA, valid until \\d{4}-\\d\\d-\\d\\d\\)\n` +
    `wrote ${caDir}/ca\\.key \\(private key, mode 0600, keep it off gateways\\)\nnext: edgefwd certs issue --ca ${caDir} --client NAME\n$`))
  t.equal(mode(join(caDir, 'ca.key')), 0o600)
  t.equal(mode(join(caDir, 'ca.crt')), 0o644)
  t.equal(mode(caDir), 0o700)
  const ca = cert(join(caDir, 'ca.crt'))
  t.equal(ca.subject, 'CN=CLI Test CA\nO=Acme')
  t.ok(ca.ca)
  t.ok(ca.checkPrivateKey(createPrivateKey(readFileSync(join(caDir, 'ca.key')))))
  t.equal(Math.round((Date.parse(ca.validTo) - Date.parse(ca.validFrom)) / 86_400_000), 400)
  assertNoKeyMaterial(t, made, readFileSync(join(caDir, 'ca.key'), 'utf8'))
})

t.test('init-ca refuses to overwrite without --force, and --force makes a new 0600 key', async t => {
  const before = readFileSync(join(caDir, 'ca.key'), 'utf8')
  t.same(await run(['certs', 'init-ca', '--out', caDir]), {
    code: 1,
    stdout: '',
    stderr: `edgefwd: ${caDir}/ca.crt already exists; not overwriting it\nhint: pass --force to replace it, or choose another name or directory\n`,
  })
  t.equal(readFileSync(join(caDir, 'ca.key'), 'utf8'), before, 'untouched')

  const dir = t.testdir({ 'ca.key': 'old, world-readable\n' })
  chmodSync(join(dir, 'ca.key'), 0o644)
  const refused = await run(['certs', 'init-ca', '--out', dir, '--key-bits', '2048'])
  t.equal(refused.code, 1)
  t.match(refused.stderr, `edgefwd: ${dir}/ca.key already exists; not overwriting it`)
  t.notOk(existsSync(join(dir, 'ca.crt')), 'nothing written when one of the files exists')

  const forced = await run(['certs', 'init-ca', '--out', dir, '--key-bits', '2048', '--force'])
  t.equal(forced.code, 0, exitZero(forced))
  t.equal(mode(join(dir, 'ca.key')), 0o600, 'the replaced key is 0600, not the old file\'s 0644')
  t.match(readFileSync(join(dir, 'ca.key'), 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/)
})

t.test('issue --client: NAME.crt and NAME.key in the CA directory, clientAuth', async t => {
  const result = await run(['certs', 'issue', '--ca', caDir, '--client', 'gw-1'])
  t.equal(result.code, 0, exitZero(result))
  t.match(result.stdout, new RegExp(`^wrote ${caDir}/gw-1\\.crt \\(certificate, client, valid until [\\d-]+\\)\nwrote ${caDir}/gw-1\\.key \\(private key, mode 0600\\)\n$`))
  const leaf = cert(join(caDir, 'gw-1.crt'))
  t.equal(leaf.subject, 'CN=gw-1')
  t.same(leaf.keyUsage, ['1.3.6.1.5.5.7.3.2'])
  t.ok(leaf.verify(cert(join(caDir, 'ca.crt')).publicKey))
  t.ok(leaf.checkPrivateKey(createPrivateKey(readFileSync(join(caDir, 'gw-1.key')))))
  t.equal(mode(join(caDir, 'gw-1.key')), 0o600)
  t.equal(mode(join(caDir, 'gw-1.crt')), 0o644)
  assertNoKeyMaterial(t, result, readFileSync(join(caDir, 'gw-1.key'), 'utf8'))

  const again = await run(['certs', 'issue', '--ca', caDir, '--client', 'gw-1'])
  t.equal(again.code, 1)
  t.match(again.stderr, /^edgefwd: .*gw-1\.crt already exists; not overwriting it\nhint: pass --force/)
})

t.test('issue --server with --san and --out: serverAuth, NAME and the SANs', async t => {
  const out = join(t.testdir({}), 'broker')
  const result = await run(['certs', 'issue', '--ca', caDir, '--server', 'broker.local', '--san', '127.0.0.1', '--san', '*.broker.local',
    '--out', out, '--days', '30', '--org', 'Acme'])
  t.equal(result.code, 0, exitZero(result))
  const leaf = cert(join(out, 'broker.local.crt'))
  t.same(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1'])
  t.equal(leaf.subjectAltName, 'DNS:broker.local, IP Address:127.0.0.1, DNS:*.broker.local')
  t.equal(leaf.checkHost('mqtt.broker.local'), '*.broker.local', 'the wildcard SAN matches')
  t.equal(mode(join(out, 'broker.local.key')), 0o600)
  t.equal(mode(out), 0o700)
  t.notOk(existsSync(join(caDir, 'broker.local.crt')))
})

t.test('issue: a key in the way means no certificate either', async t => {
  writeFileSync(join(caDir, 'gw-2.key'), 'someone else\'s key\n', { mode: 0o600 })
  const result = await run(['certs', 'issue', '--ca', caDir, '--client', 'gw-2'])
  t.equal(result.code, 1)
  t.match(result.stderr, `${caDir}/gw-2.key already exists`)
  t.notOk(existsSync(join(caDir, 'gw-2.crt')))
  t.equal(readFileSync(join(caDir, 'gw-2.key'), 'utf8'), 'someone else\'s key\n')
})

t.test('issue and init-ca usage errors exit 2', async t => {
  const cases: Array<[string[], string]> = [
    [['certs', 'init-ca'], '"certs init-ca" needs --out DIR (see edgefwd certs init-ca --help)'],
    [['certs', 'issue', '--client', 'x'], '"certs issue" needs --ca DIR (see edgefwd certs issue --help)'],
    [['certs', 'issue', '--ca', caDir], '"certs issue" needs --client NAME or --server NAME (see edgefwd certs issue --help)'],
    [['certs', 'issue', '--ca', caDir, '--client', 'a', '--server', 'b'], 'give --client NAME or --server NAME, not both (see edgefwd certs issue --help)'],
    [['certs', 'issue', '--ca', caDir, '--client', '../evil'], 'NAME "../evil" must be 1 to 64 letters, digits, ".", "-" or "_" (it is also the file name; put wildcards in --san) (see edgefwd certs issue --help)'],
    [['certs', 'issue', '--ca', caDir, '--client', 'a', '--days', '0'], 'option --days must be a whole number from 1 to 36500, got "0" (see edgefwd certs issue --help)'],
    [['certs', 'issue', '--ca', caDir, '--client', 'a', '--days', '1e3'], 'option --days must be a whole number from 1 to 36500, got "1e3" (see edgefwd certs issue --help)'],
    [['certs', 'init-ca', '--out', 'x', '--key-bits', '1024'], 'option --key-bits must be a whole number from 2048 to 8192, got "1024" (see edgefwd certs init-ca --help)'],
    [['certs', 'sign', 'x.csr'], '"certs sign" needs --ca DIR (see edgefwd certs sign --help)'],
    [['certs', 'sign', '--ca', caDir], '"certs sign" needs CSR (see edgefwd certs sign --help)'],
    [['certs', 'csr', '--key-out', 'a.key'], '"certs csr" needs --csr-out FILE (see edgefwd certs csr --help)'],
    [['certs', 'csr', '--key-out', 'a', '--csr-out', 'a'], '--key-out and --csr-out must be different files (see edgefwd certs csr --help)'],
    [['certs', 'inspect'], '"certs inspect" needs FILE (see edgefwd certs inspect --help)'],
  ]
  for (const [argv, line] of cases) {
    t.same(await run(argv), { code: 2, stdout: '', stderr: `edgefwd: ${line}\n` }, argv.join(' '))
  }
})

t.test('a missing CA directory is named', async t => {
  const dir = t.testdir({})
  t.same(await run(['certs', 'issue', '--ca', join(dir, 'nope'), '--client', 'x']), {
    code: 1, stdout: '', stderr: `edgefwd: cannot read the CA certificate ${join(dir, 'nope', 'ca.crt')}: no such file or directory\n`,
  })
})

t.test('csr on the gateway, sign at the operator: the key never leaves', async t => {
  const gateway = t.testdir({})
  const keyPath = join(gateway, 'tls', 'gw-9.key')
  const csrPath = join(gateway, 'tls', 'gw-9.csr')
  const csr = await run(['certs', 'csr', '--key-out', keyPath, '--csr-out', csrPath, '--client', 'gw-9', '--san', 'gw-9.local'])
  t.equal(csr.code, 0, exitZero(csr))
  t.equal(csr.stdout, [
    `wrote ${keyPath} (private key, mode 0600, keep it here)`,
    `wrote ${csrPath} (certificate signing request, client, CN=gw-9)`,
    `next: send ${csrPath} to your CA operator (edgefwd certs sign --ca DIR ${csrPath}, or openssl: certs/README.md)`,
    '',
  ].join('\n'))
  t.equal(mode(keyPath), 0o600)
  t.equal(mode(csrPath), 0o644)
  t.match(readFileSync(csrPath, 'utf8'), /^-----BEGIN CERTIFICATE REQUEST-----\n[^]*-----END CERTIFICATE REQUEST-----\n$/)
  t.notMatch(readFileSync(csrPath, 'utf8'), /PRIVATE/)
  assertNoKeyMaterial(t, csr, readFileSync(keyPath, 'utf8'))
  t.equal((await run(['certs', 'csr', '--key-out', keyPath, '--csr-out', join(gateway, 'other.csr')])).code, 1, 'an existing key is refused')
  t.notOk(existsSync(join(gateway, 'other.csr')))

  const signed = await run(['certs', 'sign', '--ca', caDir, csrPath])
  t.equal(signed.code, 0, exitZero(signed))
  const crtPath = join(gateway, 'tls', 'gw-9.crt')
  t.match(signed.stdout, `wrote ${crtPath} (certificate, client, CN=gw-9, valid until `)
  const leaf = cert(crtPath)
  t.equal(leaf.subjectAltName, 'DNS:gw-9.local')
  t.same(leaf.keyUsage, ['1.3.6.1.5.5.7.3.2'])
  t.equal(mode(crtPath), 0o644)
  t.ok(leaf.checkPrivateKey(createPrivateKey(readFileSync(keyPath))), 'the signed certificate belongs to the gateway\'s key')

  t.equal((await run(['certs', 'sign', '--ca', caDir, csrPath])).code, 1, 'an existing certificate is refused')
  const server = await run(['certs', 'sign', '--ca', caDir, csrPath, '--server', '--out', join(gateway, 'as-server.pem'), '--days', '10'])
  t.equal(server.code, 0, exitZero(server))
  t.same(cert(join(gateway, 'as-server.pem')).keyUsage, ['1.3.6.1.5.5.7.3.1'], '--server decides, whatever the request asked')

  const notCsr = await run(['certs', 'sign', '--ca', caDir, join(caDir, 'ca.crt'), '--out', join(gateway, 'x.crt')])
  t.same(notCsr, { code: 1, stdout: '', stderr: 'edgefwd: not a PEM certificate signing request\nhint: edgefwd certs csr makes one (a file starting with -----BEGIN CERTIFICATE REQUEST-----)\n' })
})

t.test('inspect: text by default, exit 0 when the key matches and the chain holds', async t => {
  const result = await run(['certs', 'inspect', join(caDir, 'gw-1.crt'), '--key', join(caDir, 'gw-1.key'), '--ca', caDir])
  t.equal(result.code, 0, exitZero(result))
  t.equal(result.stderr, '')
  t.match(result.stdout, new RegExp(`^${caDir}/gw-1\\.crt\n {2}subject +CN=gw-1\n {2}issuer +CN=CLI Test CA, O=Acme\n`))
  t.match(result.stdout, /^ {2}valid until +\S+ \(397 days left\)$/m)
  t.match(result.stdout, /^ {2}key +RSA 2048$/m)
  t.match(result.stdout, new RegExp(`^ {2}key file +${caDir}/gw-1\\.key: matches$`, 'm'))
  t.match(result.stdout, new RegExp(`^ {2}chains to +${caDir}/ca\\.crt: yes$`, 'm'))
  t.notMatch(result.stdout, /problem/)
  assertNoKeyMaterial(t, result, readFileSync(join(caDir, 'gw-1.key'), 'utf8'))
})

t.test('inspect: a wrong key, a foreign CA, an expired certificate each exit 1 with the problem and its code', async t => {
  const mismatch = await run(['certs', 'inspect', join(caDir, 'gw-1.crt'), '--key', join(caDir, 'ca.key')])
  t.equal(mismatch.code, 1)
  t.match(mismatch.stdout, new RegExp(`^ {2}problem +EDGEFWD_ERR_TLS_KEY_MISMATCH: the key in ${caDir}/ca\\.key does not belong to this certificate$`, 'm'))

  const other = join(t.testdir({}), 'other')
  t.equal((await run(['certs', 'init-ca', '--out', other, '--key-bits', '2048'])).code, 0)
  const foreign = await run(['certs', 'inspect', join(caDir, 'gw-1.crt'), '--ca', join(other, 'ca.crt')])
  t.equal(foreign.code, 1)
  t.match(foreign.stdout, /^ {2}problem +EDGEFWD_ERR_TLS_CERT_UNTRUSTED: not signed by the CA in .*: its issuer is CN=CLI Test CA, O=Acme$/m)

  const ca = { certPem: readFileSync(join(caDir, 'ca.crt'), 'utf8'), keyPem: readFileSync(join(caDir, 'ca.key'), 'utf8') }
  const old = issueCertificate(ca, { kind: 'client', commonName: 'old', notBefore: new Date(Date.now() - 30 * 86_400_000), validityDays: 10 })
  const dir = t.testdir({ 'old.crt': old.certPem })
  const expired = await run(['certs', 'inspect', join(dir, 'old.crt'), '--ca', caDir])
  t.equal(expired.code, 1)
  t.match(expired.stdout, /^ {2}valid until +\S+ \(expired 20 days ago\)$/m)
  t.match(expired.stdout, /^ {2}problem +EDGEFWD_ERR_TLS_CERT_EXPIRED: expired on \S+$/m)
  t.match(expired.stdout, /^ {2}chains to +.*: yes$/m)
})

t.test('inspect --json: one object per certificate, ok for scripts', async t => {
  const result = await run(['certs', 'inspect', join(caDir, 'gw-1.crt'), join(caDir, 'ca.crt'), '--key', join(caDir, 'gw-1.key'), '--ca', join(caDir, 'ca.crt'), '--json'])
  t.equal(result.code, 0, exitZero(result))
  const parsed = JSON.parse(result.stdout) as { ok: boolean, certificates: Array<Record<string, unknown>> }
  t.equal(parsed.ok, true)
  t.match(parsed.certificates, [
    { file: join(caDir, 'gw-1.crt'), subject: 'CN=gw-1', key: { type: 'RSA', bits: 2048 }, daysLeft: 397, extendedKeyUsage: ['clientAuth'],
      keyCheck: { matches: true }, caCheck: { chains: true }, problems: [] },
    { file: join(caDir, 'ca.crt'), isCa: true, selfSigned: true, caCheck: { chains: true }, problems: [] },
  ])
  t.notOk('keyCheck' in (parsed.certificates[1] ?? {}), 'the key is checked against the first FILE only')

  const bad = await run(['certs', 'inspect', join(caDir, 'gw-1.crt'), '--key', join(caDir, 'ca.key'), '--json'])
  t.equal(bad.code, 1)
  t.match(JSON.parse(bad.stdout), { ok: false, certificates: [{ problems: [{ code: 'EDGEFWD_ERR_TLS_KEY_MISMATCH' }] }] })
})

t.test('inspect: unreadable and wrong files are named', async t => {
  const dir = t.testdir({})
  t.same(await run(['certs', 'inspect', join(dir, 'nope.crt')]),
    { code: 1, stdout: '', stderr: `edgefwd: cannot read the certificate ${join(dir, 'nope.crt')}: no such file or directory\n` })
  const asCert = await run(['certs', 'inspect', join(caDir, 'gw-1.key')])
  t.same(asCert, { code: 1, stdout: '', stderr: `edgefwd: ${caDir}/gw-1.key holds a private key, not a certificate\nhint: give the key with --key KEY\n` })
  t.same(await run(['certs', 'inspect', join(caDir, 'gw-1.crt'), '--key', join(caDir, 'gw-1.crt')]),
    { code: 1, stdout: '', stderr: `edgefwd: ${caDir}/gw-1.crt holds a certificate, not a private key\n` })
})

t.test('the certs group lists its commands', async t => {
  const { code, stdout } = await run(['certs', '--help'])
  t.equal(code, 0)
  for (const name of ['init-ca', 'issue', 'csr', 'sign CSR', 'inspect FILE...']) t.match(stdout, new RegExp(`^ {2}certs ${name} `, 'm'))
})

t.test('pem files: all or none, never through a symlink, write failures named', async t => {
  const dir = t.testdir({ 'not-a-dir': 'x' })
  const key = { path: join(dir, 'a.key'), pem: 'KEY\n', kind: 'private key' as const }
  const blocked = { path: join(dir, 'not-a-dir', 'a.crt'), pem: 'CERT\n', kind: 'certificate' as const }
  await t.rejects(writePemFiles([key, blocked], { force: false }), { code: 'EDGEFWD_ERR_CERTS_WRITE', message: `cannot write ${blocked.path}: a part of the path is not a directory` })
  t.notOk(existsSync(key.path), 'the key written first was removed again')

  symlinkSync(join(dir, 'elsewhere.key'), join(dir, 'link.key'))
  const viaLink = { path: join(dir, 'link.key'), pem: 'KEY\n', kind: 'private key' as const }
  const refused = await writePemFiles([viaLink], { force: false }).then(() => undefined, (err: unknown) => err)
  t.ok(isEdgefwdError(refused, 'EDGEFWD_ERR_CERTS_EXISTS'), 'a dangling symlink counts as an existing file')
  await writePemFiles([viaLink], { force: true })
  t.notOk(existsSync(join(dir, 'elsewhere.key')), '--force replaces the link itself, never writes where it points')
  t.equal(readFileSync(viaLink.path, 'utf8'), 'KEY\n')
  t.equal(mode(viaLink.path), 0o600)

  // --force replaces a file only once the new one is written: a failure leaves the old one.
  const old = { path: join(dir, 'old.key'), pem: 'OLD\n', kind: 'private key' as const }
  await writePemFiles([old], { force: false })
  chmodSync(old.path, 0o644)
  await writePemFiles([{ ...old, pem: 'NEW\n' }], { force: true })
  t.same([readFileSync(old.path, 'utf8'), mode(old.path)], ['NEW\n', 0o600], 'replaced, and the key is 0600 again')
  const unwritable = { path: join(dir, 'not-a-dir', 'x.key'), pem: 'X\n', kind: 'private key' as const }
  await t.rejects(writePemFiles([unwritable], { force: true }), { code: 'EDGEFWD_ERR_CERTS_WRITE' })
  t.same(readdirSync(dir).filter(f => f.endsWith('.tmp')), [], 'no temporary file left behind')

  const result = await run(['certs', 'sign', '--ca', caDir, join(root, 'nowhere.csr')])
  t.same(result, { code: 1, stdout: '', stderr: `edgefwd: cannot read the certificate signing request ${join(root, 'nowhere.csr')}: no such file or directory\n` })
})
