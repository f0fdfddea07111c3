import { generateKeyPairSync } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { configKeygenCommand } from '../../src/cli/commands/config-keygen.js'
import { configSignCommand } from '../../src/cli/commands/config-sign.js'
import { main } from '../../src/cli/program.js'
import { loadPublicKeys, verifyMessage } from '../../src/control/signing.js'

interface Run { code: number, stdout: string, stderr: string }

const registry = [configSignCommand, configKeygenCommand]

async function run (argv: string[]): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const io = { stdout: { write: (s: string) => { stdout += s } }, stderr: { write: (s: string) => { stderr += s } } }
  const code = await main(argv, {}, io, registry)
  return { code, stdout, stderr }
}

const mode = (path: string): number => statSync(path).mode & 0o777
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

const root = t.testdir({
  'update.json': '{"version": 12, "comment": "debug logs", "config": {"log": {"level": "debug"}}}',
  'update.yaml': 'version: 13\nrestart: true\n# a comment YAML allows\nconfig:\n  uplink:\n    window: 16\n',
  'bad-version.json': '{"version": 0, "config": {}}',
  'gateway.yaml': 'version: 2\nconfig:\n  gateway:\n    id: other\n',
  'unknown.json': '{"version": 2, "config": {}, "reboot": true}',
  'broken.yaml': 'version: 2\nconfig: {\n',
  'duplicate.json': '{"version": 2, "version": 3, "config": {}}',
  'inf.yaml': 'version: 2\nconfig:\n  ingest:\n    rateLimit:\n      eventsPerSecond: .inf\n',
  'empty.yaml': '',
  'rsa.key': generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
})
const keyDir = join(root, 'keys')
const keygen = await run(['config', 'keygen', '--out', keyDir])
const privatePath = join(keyDir, 'operator.key')
const publicPath = join(keyDir, 'operator.pub')

t.test('keygen writes operator.key (0600) and operator.pub (0644) in a 0700 directory and prints the key id', async t => {
  t.equal(keygen.code, 0, keygen.stderr)
  t.equal(keygen.stderr, '')
  t.equal(mode(keyDir), 0o700)
  t.equal(mode(privatePath), 0o600)
  t.equal(mode(publicPath), 0o644)
  t.match(readFileSync(privatePath, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/)
  t.match(readFileSync(publicPath, 'utf8'), /^-----BEGIN PUBLIC KEY-----\n/)
  const [key] = await loadPublicKeys([publicPath])
  t.equal(key?.algorithm, 'ed25519')
  t.equal(keygen.stdout, [
    `wrote ${privatePath} (private key, mode 0600, keep it on the operator's machine)`,
    `wrote ${publicPath} (public key, for control.publicKeys on gateways)`,
    `keyId ${key?.keyId ?? ''}`,
    `next: edgefwd config sign --key ${privatePath} UPDATE.json`,
    '',
  ].join('\n'))
  t.notMatch(keygen.stdout, /PRIVATE KEY-----/, 'no key material printed')
})

t.test('keygen refuses to overwrite without --force, replaces with it', async t => {
  const before = readFileSync(privatePath, 'utf8')
  const again = await run(['config', 'keygen', '--out', keyDir])
  t.equal(again.code, 1)
  t.equal(again.stdout, '')
  t.match(again.stderr, `edgefwd: ${privatePath} already exists; not overwriting it\nhint: pass --force`)
  t.equal(readFileSync(privatePath, 'utf8'), before, 'the key is untouched')

  const other = join(root, 'other-keys')
  t.equal((await run(['config', 'keygen', '--out', other])).code, 0)
  const forced = await run(['config', 'keygen', '--out', other, '--force'])
  t.equal(forced.code, 0, forced.stderr)
  t.equal(mode(join(other, 'operator.key')), 0o600)
  t.equal((await run(['config', 'keygen'])).code, 2, '--out is required')
})

t.test('sign a JSON document to stdout; it verifies with the written public key', async t => {
  const signed = await run(['config', 'sign', '--key', privatePath, join(root, 'update.json')])
  t.equal(signed.code, 0, signed.stderr)
  const keys = await loadPublicKeys([publicPath])
  t.match(signed.stderr, `signed version 12, ed25519, key ${keys[0]?.keyId ?? ''}\n`)
  const result = verifyMessage(utf8(signed.stdout), keys)
  t.ok(result.ok, JSON.stringify(result))
  if (!result.ok) return
  t.equal(new TextDecoder().decode(result.document), JSON.stringify({ version: 12, comment: 'debug logs', config: { log: { level: 'debug' } } }, null, 2),
    'what is signed is JSON with a 2-space indent')
})

t.test('sign a YAML document with --out and an RSA key', async t => {
  const out = join(root, 'update.msg.json')
  const signed = await run(['config', 'sign', '--key', join(root, 'rsa.key'), '--out', out, join(root, 'update.yaml')])
  t.equal(signed.code, 0, signed.stderr)
  t.equal(mode(out), 0o644)
  t.match(signed.stdout, new RegExp(`^wrote ${out} \\(signed version 13 \\(restart: true\\), rsa-pss-sha256, key [0-9a-f]{16}\\)\n$`))
  const message = JSON.parse(readFileSync(out, 'utf8')) as { document: string }
  t.equal(Buffer.from(message.document, 'base64').toString(), '{\n  "version": 13,\n  "restart": true,\n  "config": {\n    "uplink": {\n      "window": 16\n    }\n  }\n}')
  const ed = verifyMessage(readFileSync(out), await loadPublicKeys([publicPath]))
  t.match(ed, { ok: false, detail: /not among the operator keys/ }, 'not trusted by the Ed25519 operator key')
})

t.test('sign refuses a bad document with exit 1, writing nothing', async t => {
  const cases: Array<[string, RegExp]> = [
    ['bad-version.json', /bad-version\.json: "version" must be a positive whole number/],
    ['gateway.yaml', /gateway\.yaml: "config" may not contain "gateway"/],
    ['unknown.json', /unknown\.json: unknown top-level keys: reboot/],
    ['broken.yaml', /broken\.yaml: not valid JSON or YAML: /],
    ['duplicate.json', /duplicate\.json: not valid JSON or YAML: Map keys must be unique/],
    ['inf.yaml', /inf\.yaml: eventsPerSecond: \.inf and \.nan have no JSON form/],
    ['empty.yaml', /empty\.yaml: the document is empty/],
    ['missing.json', /cannot read the document .*missing\.json: no such file/],
  ]
  for (const [file, message] of cases) {
    const out = join(root, `${file}.msg`)
    const result = await run(['config', 'sign', '--key', privatePath, '--out', out, join(root, file)])
    t.equal(result.code, 1, file)
    t.equal(result.stdout, '', `${file}: nothing on stdout`)
    t.match(result.stderr, message, file)
    t.notOk(existsSync(out), `${file}: no message written`)
  }
})

t.test('sign: a missing --key is a usage error, a public key where the private key belongs fails', async t => {
  t.equal((await run(['config', 'sign', join(root, 'update.json')])).code, 2)
  const wrong = await run(['config', 'sign', '--key', publicPath, join(root, 'update.json')])
  t.equal(wrong.code, 1)
  t.equal(wrong.stdout, '')
  t.match(wrong.stderr, /^edgefwd: operator key .*operator\.pub is a public key; signing needs the private key/)
})

t.test('help explains the formats and what sign cannot check', async t => {
  const sign = await run(['config', 'sign', '--help'])
  t.equal(sign.code, 0)
  t.match(sign.stdout, /^Usage: edgefwd config sign/)
  t.match(sign.stdout, /YAML is converted to JSON/)
  t.match(sign.stdout, /decided by each gateway against its own local configuration/)
  const keygenHelp = await run(['config', 'keygen', '--help'])
  t.match(keygenHelp.stdout, /^Usage: edgefwd config keygen/)
})
