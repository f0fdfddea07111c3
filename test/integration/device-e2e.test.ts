/**
 * End to end, as in the field: a device program built from the C encoder (firmware-bridge's
 * posix-send) and a script in another language (Python, JSON lines) send events to listeners made
 * from a configuration file; the events land in a durable LevelDB store and both get acks.
 */
import { execFile, execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { parseConfigText } from '../../src/config/index.js'
import { IngestPipeline } from '../../src/ingest/pipeline.js'
import { ingestOptions } from '../../src/ingest/options.js'
import { createTransports, transportContext, within } from '../../src/ingest/transports/index.js'
import { decodeBatch } from '../../src/proto/codec.js'
import { openLevelStore, storeOptions } from '../../src/store/index.js'
import { silentLogger } from '../helpers/logger.js'
import { waitFor } from '../helpers/wait.js'

const run = promisify(execFile)
const bridge = fileURLToPath(new URL('../../firmware-bridge/', import.meta.url))

const PYTHON_SENDER = `
import json, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
for seq in range(1, 21):
    s.sendall((json.dumps({"id": "py-script", "seq": seq, "p": 2, "s": "env", "v": {"t": 20.5 + seq}}) + "\\n").encode())
acked, buf = 0, b""
while acked < 20:
    chunk = s.recv(4096)
    if not chunk: break
    buf += chunk
    while b"\\n" in buf:
        line, buf = buf.split(b"\\n", 1)
        acked = max(acked, json.loads(line)["seq"])
print("acked", acked)
`

t.test('a C device and a Python script get their events into the store, with acks', async t => {
  execFileSync('make', ['-s', '-C', bridge, 'examples'], { stdio: 'pipe', timeout: 120_000 })
  const sender = `${bridge}build/posix-send`
  const config = parseConfigText([
    'store:',
    `  path: ${t.testdir()}/store`,
    'ingest:',
    '  tcp:',
    '    - { address: 127.0.0.1, port: 0, format: frames }',
    '    - { address: 127.0.0.1, port: 0, format: jsonl }',
    '  udp: { address: 127.0.0.1, port: 0 }'
  ].join('\n'), 'e2e.yaml')
  const logger = silentLogger()
  const store = await openLevelStore(config.store.path, storeOptions(config.store), logger)
  t.teardown(async () => { await store.close() })
  const pipeline = new IngestPipeline(store, ingestOptions(config.ingest), logger)
  const transports = createTransports(config.ingest, transportContext(config.ingest, { pipeline, logger }))
  const addresses: string[] = []
  for (const transport of transports) {
    addresses.push((await transport.start()).address)
    t.teardown(async () => { await within(transport.stop(), 10_000) })
  }
  const ports = addresses.map(a => a.slice(a.lastIndexOf(':') + 1))
  const udpPort = ports[transports.findIndex(x => x.name === 'udp')]
  const [framesPort, jsonlPort] = transports.map((x, i) => [x.name, ports[i]] as const).filter(([name]) => name !== 'udp').map(([, port]) => port)

  const c = await run(sender, ['-d', 'c-device', '-n', '50', '-p', '3', '-w', '5000', 'tcp', '127.0.0.1', String(framesPort)], { timeout: 30_000 })
  t.match(c.stdout, /highest acked seq 50/, 'the C device got an ack for its last event')
  const u = await run(sender, ['-d', 'c-udp', '-n', '10', 'udp', '127.0.0.1', String(udpPort)], { timeout: 30_000 })
  t.match(u.stdout, /sent 10 events/)
  const py = await run('python3', ['-c', PYTHON_SENDER, String(jsonlPort)], { timeout: 30_000 })
  t.match(py.stdout, /acked 20/, 'the script got acks as JSON lines')

  // Everything is in the store (UDP has no acks: wait, bounded, for its datagrams to land).
  await waitFor('80 events in the store', () => store.stats().events >= 80, 5000)
  const byDevice = new Map<string, number[]>()
  for (let lease = await store.lease(1000, 1 << 20); lease !== null; lease = await store.lease(1000, 1 << 20)) {
    for (const e of decodeBatch(lease.batch)) byDevice.set(e.deviceId, [...(byDevice.get(e.deviceId) ?? []), e.deviceSeq])
    await store.ack(lease.id)
  }
  const seqs = (id: string): number[] => (byDevice.get(id) ?? []).sort((a, b) => a - b)
  t.same(seqs('c-device'), Array.from({ length: 50 }, (_, i) => i + 1), 'all 50 events of the C device, once each')
  t.same(seqs('c-udp'), Array.from({ length: 10 }, (_, i) => i + 1), 'the UDP device too')
  t.same(seqs('py-script'), Array.from({ length: 20 }, (_, i) => i + 1), 'and the script')
  t.equal(Object.values(pipeline.counters().rejected).reduce((n, c) => n + c, 0), 0, 'nothing rejected')
})
