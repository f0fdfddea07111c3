/**
 * mqtt-packet's writer caches the encoding of every packet length below 16384 it writes. Made by
 * mqtt-packet itself, each entry is a slice of Node's shared Buffer pool and keeps a whole pool
 * block (8 KiB on Node 20, 64 KiB on Node 24) alive: the single executable grew ~7 MB a minute
 * under the footprint soak from it. src/mqtt-length-cache.ts replaces the function the
 * writer makes them with; these tests load the uplink the way the forwarder does and check the
 * writer mqtt.js uses got it.
 */
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
// The forwarder's import path to mqtt (connect.ts loads the cache fix, then mqtt); first here too.
import '../../src/uplink/connect.js'
import { writeToStream } from 'mqtt-packet'
import { lengthCacheUnpooled } from '../../src/mqtt-length-cache.js'
import { assertBuilt, distRoot } from '../helpers/built.js'

const require = createRequire(import.meta.url)

t.test('mqtt.js uses the copy of mqtt-packet the fix patches', async t => {
  const fromMqtt = require.resolve('mqtt-packet/numbers.js', { paths: [dirname(require.resolve('mqtt/package.json'))] })
  t.equal(fromMqtt, require.resolve('mqtt-packet/numbers.js'), 'one mqtt-packet: a second copy would keep the pooled cache')
  t.ok(lengthCacheUnpooled(writeToStream), 'the writer encodes lengths through the unpooled cache')
})

t.test('loaded as `edgefwd run` loads it (the forwarder, whose ingest MQTT source loads mqtt-packet first), the writer has the fix', async t => {
  assertBuilt()
  // A process of its own: here the module graph above has loaded the fix first already.
  const url = (file: string): string => pathToFileURL(join(distRoot, file)).href
  const script = `await import(${JSON.stringify(url('src/forwarder.js'))})
const { writeToStream } = await import('mqtt-packet')
const { lengthCacheUnpooled } = await import(${JSON.stringify(url('src/mqtt-length-cache.js'))})
process.stdout.write(String(lengthCacheUnpooled(writeToStream)))`
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000, cwd: join(distRoot, '..') })
  t.equal(out, 'true', 'the writer of the forwarder\'s process encodes lengths through the unpooled cache')
})

t.test('publishing batches of 3000 different sizes pins no pool block', async t => {
  const lengthBuffers: Buffer[] = []
  let writes: Buffer[] = []
  const sink = { write: (b: Buffer) => { writes.push(b); return true } } as unknown as Parameters<typeof writeToStream>[1]
  for (let i = 0; i < 3000; i++) {
    writes = []
    // What the forwarder does between two publishes: other small pooled Buffers move the pool on.
    for (let j = 0; j < 20; j++) Buffer.from(`device-${i}-${j}`)
    writeToStream({ cmd: 'publish', topic: 't', payload: Buffer.alloc(200 + i), qos: 1, messageId: 1 + i, retain: false, dup: false }, sink, { protocolVersion: 5 })
    // A PUBLISH is written as: the fixed header byte, then the remaining length.
    const length = writes[1]
    if (length === undefined) throw new Error('the writer wrote no remaining length')
    lengthBuffers.push(length)
  }
  const pooled = lengthBuffers.filter(b => b.buffer.byteLength >= Buffer.poolSize)
  t.equal(pooled.length, 0, `no cached length is a slice of a ${Buffer.poolSize}-byte pool block`)
  const blocks = new Set(lengthBuffers.map(b => b.buffer))
  t.ok(blocks.size <= 8, `3000 lengths live in ${blocks.size} small blocks`)
  // The encoding is still MQTT's: the last packet's length is what was written after it.
  const last = lengthBuffers[2999] as Buffer
  const decoded = last.length === 2 ? ((last[0] as number) & 0x7f) + ((last[1] as number) << 7) : last[0] as number
  t.equal(decoded, writes.slice(2).reduce((n, b) => n + b.length, 0), 'the remaining length encodes the bytes that follow')
})
