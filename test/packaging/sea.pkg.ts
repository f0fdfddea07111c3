/**
 * The linux-x64 single executable made by `npm run build:sea`, run as an operator would: copied
 * into an empty directory outside the repository, with an environment that has no node on PATH
 * and no node_modules anywhere above it. Every command works from it: --version, config check,
 * certs (it makes the PKI for the rest), run and sink against Mosquitto over mutual TLS, mcp
 * against that run, and simulate. SHA256SUMS matches the files, and the .xz copy is the binary.
 *
 * Run by `npm run test:package` after build:sea (not part of npm test: the build takes minutes).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startMosquitto } from '../helpers/mosquitto.js'
import { freePort, waitFor } from '../helpers/wait.js'

const dist = fileURLToPath(new URL('../../dist/', import.meta.url))
const BIN = join(dist, 'edgefwd-linux-x64')
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build:sea first (npm run test:package does)`)

const root = mkdtempSync(join(tmpdir(), 'edgefwd-sea-'))
t.teardown(() => { rmSync(root, { recursive: true, force: true }) })
const exe = join(root, 'edgefwd')
copyFileSync(BIN, exe)
for (const dir of ['bin', 'home', 'tmp']) mkdirSync(join(root, dir))
/** The whole environment of every run: PATH has an empty directory only, so there is no node. */
const env: NodeJS.ProcessEnv = { PATH: join(root, 'bin'), HOME: join(root, 'home'), TMPDIR: join(root, 'tmp'), LANG: 'C.UTF-8' }

interface Result { code: number | null, stdout: string, stderr: string }

function edgefwd (args: string[], timeoutMs = 60_000): Result {
  const r = spawnSync(exe, args, { cwd: root, env, encoding: 'utf8', timeout: timeoutMs })
  if (r.error !== undefined) throw r.error
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

function sha256 (bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex')
}

interface Running { child: ChildProcess, out: () => string, err: () => string, exited: Promise<number | null> }

function start (args: string[]): Running {
  const child = spawn(exe, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout?.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { err += chunk.toString() })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
  return { child, out: () => out, err: () => err, exited }
}

t.test('SHA256SUMS names every binary and .xz copy with its hash, and the x64 .xz is the binary', async t => {
  const lines = readFileSync(join(dist, 'SHA256SUMS'), 'utf8').trim().split('\n')
  const listed = new Map(lines.map(line => { const [hash, file] = line.split(/ {2}/); return [file, hash] }))
  const present = readdirSync(dist).filter(f => /^edgefwd-linux-[a-z0-9]+(\.xz)?$/.test(f)).sort()
  t.same([...listed.keys()].sort(), present, 'exactly the binaries and their .xz copies')
  t.ok(present.includes('edgefwd-linux-x64.xz'))
  for (const [file, hash] of listed) t.equal(sha256(readFileSync(join(dist, file ?? ''))), hash, `${file ?? ''} matches`)
  const unpacked = spawnSync('xz', ['-dc', `${BIN}.xz`], { maxBuffer: 512 << 20 })
  t.equal(unpacked.status, 0)
  t.equal(sha256(unpacked.stdout), sha256(readFileSync(BIN)))
})

t.test('it runs with no node on PATH and no node_modules: --version, help, config check', async t => {
  t.not(spawnSync('/bin/sh', ['-c', 'command -v node'], { env }).status, 0, 'the environment has no node')
  const version = edgefwd(['--version'])
  t.same(version, { code: 0, stdout: `${VERSION}\n`, stderr: '' })
  const help = edgefwd(['--help'])
  t.equal(help.code, 0)
  for (const command of ['run', 'sink', 'simulate', 'certs', 'config']) t.match(help.stdout, new RegExp(`\\n\\s+${command}\\b`), `help lists ${command}`)

  writeFileSync(join(root, 'good.yaml'), 'gateway: { id: gw-sea }\nstore: { path: ./store, capacity: 8MiB }\nuplink: { url: "mqtts://broker.example:8883" }\ntls: { ca: ca.pem, cert: gw.pem, key: gw-key.pem }\n')
  t.same(edgefwd(['config', 'check', 'good.yaml']), { code: 0, stdout: 'ok\n', stderr: '' })
  writeFileSync(join(root, 'bad.yaml'), 'store: { capacity: lots }\n')
  const bad = edgefwd(['config', 'check', 'bad.yaml'])
  t.equal(bad.code, 1)
  t.match(bad.stdout + bad.stderr, /store\.capacity/, 'names the key')
})

t.test('certs, run and sink from the binary against Mosquitto over mutual TLS', async t => {
  const pki = join(root, 'pki')
  t.equal(edgefwd(['certs', 'init-ca', '--out', pki]).code, 0)
  t.equal(edgefwd(['certs', 'issue', '--ca', pki, '--server', 'localhost', '--san', '127.0.0.1']).code, 0)
  t.equal(edgefwd(['certs', 'issue', '--ca', pki, '--client', 'gw-sea']).code, 0)
  t.equal(edgefwd(['certs', 'issue', '--ca', pki, '--client', 'sink-sea']).code, 0)
  const pem = (name: string): string => readFileSync(join(pki, name), 'utf8')
  const brokerDir = join(root, 'broker')
  mkdirSync(brokerDir)
  const broker = await startMosquitto({ dir: brokerDir, ca: pem('ca.crt'), cert: pem('localhost.crt'), key: pem('localhost.key') })
  t.teardown(() => broker.stop())

  const port = await freePort()
  writeFileSync(join(root, 'gw.yaml'), [
    'gateway: { id: gw-sea }',
    'store: { path: ./gw-store, capacity: 8MiB }',
    'observe: { metrics: { listen: "127.0.0.1:0" } }',
    `tls: { ca: ${join(pki, 'ca.crt')}, cert: ${join(pki, 'gw-sea.crt')}, key: ${join(pki, 'gw-sea.key')} }`,
    `uplink: { url: "${broker.url}", stopTimeout: 3s }`,
    `ingest: { tcp: [{ address: 127.0.0.1, port: ${port}, format: jsonl }] }`,
  ].join('\n'))
  writeFileSync(join(root, 'sink.yaml'), [
    `tls: { ca: ${join(pki, 'ca.crt')}, cert: ${join(pki, 'sink-sea.crt')}, key: ${join(pki, 'sink-sea.key')} }`,
    `uplink: { url: "${broker.url}" }`,
    'sink: { clientId: sink-sea }',
  ].join('\n'))

  const events = join(root, 'events.jsonl')
  const sink = start(['sink', 'sink.yaml', '--verify', '--out', events, '--until-idle', '4s'])
  t.teardown(() => { sink.child.kill('SIGKILL') })
  await waitFor('the sink to subscribe', () => sink.err().includes('subscribed to'))
  const forwarder = start(['run', '--config', 'gw.yaml'])
  t.teardown(() => { forwarder.child.kill('SIGKILL') })
  await waitFor('the forwarder to run', () => forwarder.out().includes('running: listening on'))
  // Started without the budget's Node options (no systemd unit here), it re-executed itself in
  // place with them: the same PID, now with NODE_OPTIONS, and the heap limit in force (Node 24
  // has process.execve; the warning that says otherwise never came).
  const environ = readFileSync(`/proc/${forwarder.child.pid ?? 0}/environ`, 'utf8').split('\0')
  // (tap puts options of its own in the NODE_OPTIONS of what a test spawns; ours come after them.)
  t.ok(environ.some(e => e.startsWith('NODE_OPTIONS=') && e.endsWith(' --max-old-space-size=30 --max-semi-space-size=1')) && environ.includes('EDGEFWD_HEAP_REEXEC=1'),
    `run re-executed itself in place with the memory budget's heap limits (${environ.filter(e => /^(NODE_OPTIONS|EDGEFWD_)/.test(e)).join('; ')})`)
  t.match(forwarder.out(), 'memory budget 96 MiB: V8 heap 30 MiB old')
  t.notMatch(forwarder.out(), 'is not the budget', 'the heap limit is in force')

  const device = createConnection({ host: '127.0.0.1', port })
  await new Promise<void>((resolve, reject) => { device.once('connect', resolve); device.once('error', reject) })
  const COUNT = 50
  for (let seq = 1; seq <= COUNT; seq++) device.write(`${JSON.stringify({ id: 'dev-sea', seq, s: 'temp', v: 20 + seq / 10 })}\n`)
  device.end()
  const written = (): number => existsSync(events) ? readFileSync(events, 'utf8').split('\n').filter(l => l !== '').length : 0
  await waitFor(`${COUNT} events at the sink`, () => written() >= COUNT)

  // edgefwd mcp from the binary (its MCP server is an asset of it, compiled on demand), talking
  // to the running forwarder through its agent socket.
  const mcp = spawnSync(exe, ['mcp', 'gw.yaml'], {
    cwd: root, env, encoding: 'utf8', timeout: 30_000,
    input: [
      { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'sea-test', version: '1' } } },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'get_buffer_report', arguments: {} } },
    ].map(m => JSON.stringify(m)).join('\n') + '\n',
  })
  t.equal(mcp.status, 0, `mcp exits 0 when its input ends (${mcp.stderr.slice(0, 300)})`)
  const answers = mcp.stdout.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as { id: number, result?: { structuredContent?: { capacityBytes?: number } } })
  t.equal(answers.find(a => a.id === 2)?.result?.structuredContent?.capacityBytes, 8 * 1024 * 1024, 'get_buffer_report answers with the gateway\'s figures')

  forwarder.child.kill('SIGTERM')
  t.equal(await forwarder.exited, 0, 'run stops cleanly on SIGTERM')
  t.equal(await sink.exited, 0, 'the sink stops after --until-idle')
  t.match(sink.err(), `delivered ${COUNT}, duplicates 0`)
  t.match(sink.err(), 'unexplained missing 0')
  const first = JSON.parse(readFileSync(events, 'utf8').split('\n')[0] ?? '') as Record<string, unknown>
  t.match(first, { gateway: 'gw-sea', deviceId: 'dev-sea', deviceSeq: 1, stream: 'temp' })
  t.ok(readdirSync(join(root, 'home', '.cache', 'edgefwd')).some(f => /^leveldb-[0-9a-f]{16}\.node$/.test(f)), 'the addon was extracted to ~/.cache/edgefwd')
})

t.test('simulate, the default scenario shortened, passes from the binary', async t => {
  const r = edgefwd(['simulate', '--scenario', 'default', '--duration', '10s', '--json'], 120_000)
  const summary = JSON.parse(r.stdout) as { verdict: { ok: boolean, reasons: string[] }, scenario: { source: string } }
  t.same(summary.verdict, { ok: true, reasons: [] })
  t.equal(summary.scenario.source, 'default (built in)', 'the scenario embedded in the binary')
  t.equal(r.code, 0, r.code === 0 ? 'exit 0' : r.stderr.slice(-2000))
})
