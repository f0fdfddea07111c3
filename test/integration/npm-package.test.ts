/**
 * edgefwd as a user gets it from npm: `npm pack`, the tarball unpacked into an empty project's
 * node_modules/edgefwd, and a script there that imports from 'edgefwd'. The package's own
 * dependencies are linked beside it from this checkout's node_modules (what `npm install` would
 * put there), so the test needs no registry. The script starts a gateway from a configuration,
 * sends it a device frame made with the package's codec over UDP, reads the event in its metrics,
 * and stops it; a TypeScript file is type-checked against the package's declarations. The
 * package's bin is the full CLI, `simulate` included.
 */
import { execFile } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { assertBuilt } from '../helpers/built.js'
import { makeCa, makeClient, writeSet } from '../helpers/test-pki.js'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** Links every package of this checkout's node_modules (scoped ones one by one) into `target`. */
function linkDependencies (target: string): void {
  const from = join(ROOT, 'node_modules')
  for (const entry of readdirSync(from)) {
    if (entry.startsWith('.') || entry === 'edgefwd') continue
    if (entry.startsWith('@')) {
      mkdirSync(join(target, entry), { recursive: true })
      for (const scoped of readdirSync(join(from, entry))) symlinkSync(join(from, entry, scoped), join(target, entry, scoped))
    } else {
      symlinkSync(join(from, entry), join(target, entry))
    }
  }
}

const SCRIPT = `
import { createSocket } from 'node:dgram'
import { createRequire } from 'node:module'
import { loadConfig, startGateway, createCa, encodeFrame, encodeDeviceFrame, decodeEvent, encodeEvent, SequenceVerifier, BatchDeduper, decodeEnvelopeMessage, PRIORITIES } from 'edgefwd'
// node-forge is CommonJS: what is loaded of it shows in the shared require cache.
const forgeModules = () => Object.keys(createRequire(import.meta.url).cache).filter(k => k.includes('node-forge')).length
const [dir, ca, cert, key] = process.argv.slice(2)
const config = await loadConfig({ env: {}, overrides: [
  'gateway.id=gw-pack', 'store.path=' + dir + '/store', 'log.level=error',
  'tls.ca=' + ca, 'tls.cert=' + cert, 'tls.key=' + key,
  'uplink.url=mqtts://127.0.0.1:9', 'ingest.udp.address=127.0.0.1', 'ingest.udp.port=0', 'observe.metrics.listen=127.0.0.1:0'
] })
const gateway = await startGateway(config)
const healthz = await fetch('http://' + gateway.endpoint + '/healthz')
const udp = gateway.listening.find(l => l.startsWith('udp '))
const port = Number(udp.slice(udp.lastIndexOf(':') + 1))
const socket = createSocket('udp4')
const frame = encodeFrame({ type: 'event', body: encodeDeviceFrame({ deviceId: 'dev-1', seq: 1, priority: 2, stream: 's', value: { kind: 'number', number: 21.5 } }) })
await new Promise((resolve, reject) => socket.send(frame, port, '127.0.0.1', err => err ? reject(err) : resolve()))
socket.close()
let accepted = 0
for (let i = 0; i < 200 && accepted < 1; i++) {
  await new Promise(resolve => setTimeout(resolve, 25))
  const m = /^edgefwd_events_accepted_total (\\d+)$/m.exec(await gateway.metrics())
  accepted = m === null ? 0 : Number(m[1])
}
const health = gateway.health()
await gateway.stop()
const forgeWhileRunning = forgeModules()
const devCa = await createCa({ commonName: 'pack CA', keyBits: 2048 })
const event = decodeEvent(encodeEvent({ deviceId: 'd', deviceSeq: 7, gatewayTimeMs: 1, priority: 1, stream: 's' }, 1))
console.log(JSON.stringify({
  listening: gateway.listening.length > 0 || udp !== undefined, accepted, store: health.checks.store?.ok, endpoint: healthz.status,
  decoded: event.deviceSeq, verifier: typeof new SequenceVerifier().summary, deduper: typeof BatchDeduper,
  decodeEnvelope: typeof decodeEnvelopeMessage, priorities: PRIORITIES.join(','),
  forgeWhileRunning, forgeAfterCreateCa: forgeModules() > 0, caPem: devCa.certPem.startsWith('-----BEGIN CERTIFICATE-----')
}))
`

const TYPES = `
import { startGateway, loadConfig, type Gateway, type EventRecord, type Config, type Lease } from 'edgefwd'
const record: EventRecord = { deviceId: 'd', deviceSeq: 1, gatewayTimeMs: 1, priority: 3, stream: 's' }
async function start (config: Config): Promise<Gateway> { return await startGateway(config, { version: 'app 1.0' }) }
export const used: Array<unknown> = [record, start, loadConfig, (l: Lease) => l.batch.byteLength]
`

t.test('npm pack, unpacked into an empty project: import from "edgefwd" starts a gateway, and the types resolve', async t => {
  assertBuilt()
  const dir = t.testdir()
  const { stdout: packed } = await run('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, timeout: 120_000 })
  const tarball = join(dir, packed.trim().split('\n').pop() ?? '')
  const app = join(dir, 'app')
  mkdirSync(join(app, 'node_modules', 'edgefwd'), { recursive: true })
  await run('tar', ['-xzf', tarball, '-C', join(app, 'node_modules', 'edgefwd'), '--strip-components=1'])
  linkDependencies(join(app, 'node_modules'))
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  writeFileSync(join(app, 'check.mjs'), SCRIPT)
  const ca = makeCa()
  const client = makeClient(ca, { commonName: 'gw-pack' })
  const tls = writeSet(join(dir, 'tls'), { ca: ca.certPem, cert: client.certPem, key: client.keyPem })

  const { stdout } = await run(process.execPath, ['check.mjs', join(dir, 'data'), tls.ca, tls.cert, tls.key], { cwd: app, timeout: 60_000 })
  const result = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>
  t.match(result, { listening: true, accepted: 1, store: true, endpoint: 200, decoded: 7, verifier: 'function', deduper: 'function', decodeEnvelope: 'function', priorities: 'low,normal,high,critical' },
    'the gateway took a device frame made with the package\'s codec')
  t.match(result, { forgeWhileRunning: 0, forgeAfterCreateCa: true, caPem: true },
    'importing edgefwd and running a gateway does not load node-forge; createCa() loads it when called')

  const manifest = JSON.parse(readFileSync(join(app, 'node_modules', 'edgefwd', 'package.json'), 'utf8')) as { bin: { edgefwd: string } }
  const { stdout: help } = await run(process.execPath, [join(app, 'node_modules', 'edgefwd', manifest.bin.edgefwd), '--help'], { cwd: app, timeout: 30_000 })
  t.match(help, /^ {2}simulate +Show the forwarder surviving outages/m, 'the package\'s bin lists simulate')
  t.match(help, /^ {2}run \[FILE\] +Run the forwarder/m, 'and src\'s commands')

  writeFileSync(join(app, 'types.ts'), TYPES)
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['types.ts'] }))
  await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], { cwd: app, timeout: 120_000 })
    .catch((err: { stdout?: string }) => { t.fail(`the package's types do not check: ${err.stdout ?? String(err)}`) })
  t.pass('a TypeScript file using the package\'s types checks')
})
