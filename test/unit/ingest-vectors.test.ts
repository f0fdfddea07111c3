// The golden vectors (test/vectors, firmware-bridge/PROTOCOL.md §8): every file decodes or is
// rejected exactly as vectors.json says, fed whole and in random chunks; the committed files are
// what scripts/gen-vectors.mjs makes from today's encoders; protoc agrees with the event bodies.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t from 'tap'
import * as ingest from '../../src/ingest/index.js'
import type { DeviceEvent, DeviceHelloData, FrameOptions, FrameResult } from '../../src/ingest/index.js'
import { prng, summarize } from '../../bench/fuzz-ingest.js'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const dir = `${repoRoot}test/vectors/`

interface EventJson { deviceId: string, seq: number, deviceTimeMs?: number, uptimeMs?: number, priority: number, stream: string, value?: Record<string, unknown>, tags?: Array<[string, string]> }
type Expect =
  | { ok: true, event: EventJson, authenticated: boolean }
  | { ok: true, hello: DeviceHelloData, authenticated: boolean }
  | { ok: true, ack: { deviceId: string, seq: number } }
  | { ok: false, reason: string }
interface Vector {
  name: string
  transport: 'stream' | 'datagram'
  file: string
  direction?: 'gateway-to-device'
  input?: { type: 'event', keyHex?: string, event: EventJson } | { type: 'hello', keyHex?: string, hello: DeviceHelloData } | { type: 'ack', ack: { deviceId: string, seq: number } }
  gateway?: { keys: Record<string, string> }
  expect: Expect | { frames: Expect[] }
  note?: string
}
interface VectorsFile { version: number, vectors: Vector[] }
/** scripts/gen-vectors.mjs, loaded at run time (a .mjs file has no type declarations). */
interface GenVectors {
  buildVectors: (ingestModule: typeof ingest) => { json: VectorsFile, files: Map<string, Uint8Array> }
  renderVectorsJson: (json: VectorsFile) => string
  eventFromJson: (j: EventJson) => DeviceEvent
}

const committed = JSON.parse(readFileSync(`${dir}vectors.json`, 'utf8')) as VectorsFile
const gen = await import(pathToFileURL(`${repoRoot}scripts/gen-vectors.mjs`).href) as GenVectors
const bin = (name: string): Uint8Array => new Uint8Array(readFileSync(`${dir}${name}`))
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

function optionsFor (v: Vector): FrameOptions {
  const keys = new Map(Object.entries(v.gateway?.keys ?? {}).map(([id, k]) => [id, new Uint8Array(Buffer.from(k, 'hex'))]))
  return { maxFrameSize: ingest.DEFAULT_MAX_FRAME_SIZE, keyFor: (id) => keys.get(id) }
}

/** What a FrameResult must look like for an expectation (compared with summarize()). */
function expected (e: Expect, bytes: number): string {
  if (!e.ok) return `${e.reason}:${bytes}`
  if ('event' in e) return summarize({ ok: true, kind: 'event', event: gen.eventFromJson(e.event), authenticated: e.authenticated, bytes })
  if ('hello' in e) return summarize({ ok: true, kind: 'hello', hello: e.hello, authenticated: e.authenticated, bytes })
  throw new Error('an ack is not a gateway result')
}
/** Results compared without `bytes` (vectors.json does not list them) but with everything else. */
const withoutBytes = (s: string): string => s.replace(/^(\w+):\d+/, '$1')

function feed (bytes: Uint8Array, o: FrameOptions, cuts: number[]): FrameResult[] {
  const out: FrameResult[] = []
  const d = new ingest.StreamDeframer(o, (r) => out.push(r))
  let p = 0
  for (const c of [...cuts, bytes.length]) {
    d.push(bytes.subarray(p, c))
    p = c
  }
  return out
}

t.test('vectors.json lists every .bin and nothing else; the format is version 1', async t => {
  t.equal(committed.version, 1)
  const files = readdirSync(dir).filter((f) => f.endsWith('.bin')).sort()
  t.same(committed.vectors.map((v) => v.file).sort(), files)
  t.same(new Set(committed.vectors.map((v) => v.name)).size, committed.vectors.length, 'names are unique')
  const reasons = new Set(committed.vectors.flatMap((v) => 'frames' in v.expect ? v.expect.frames : [v.expect]).filter((e) => !e.ok).map((e) => (e as { reason: string }).reason))
  t.same([...reasons].sort(), ['bad_auth', 'bad_cobs', 'bad_crc', 'bad_field', 'bad_version', 'oversize'], 'every reason decidable from bytes has a vector')
})

t.test('vectors drift: regenerated in memory from the encoders, byte for byte the committed files', async t => {
  const { json, files } = gen.buildVectors(ingest)
  const hint = 'run `npm run gen:vectors` and commit test/vectors'
  t.ok(gen.renderVectorsJson(json) === readFileSync(`${dir}vectors.json`, 'utf8'), `vectors.json: ${hint}`)
  for (const [name, bytes] of files) t.equal(hex(bytes), hex(bin(name)), `${name}: ${hint}`)
})

t.test('inputs re-encode to their files (what the C encoder must do)', async t => {
  for (const v of committed.vectors) {
    if (v.input === undefined) continue
    const key = 'keyHex' in v.input && v.input.keyHex !== undefined ? new Uint8Array(Buffer.from(v.input.keyHex, 'hex')) : undefined
    let frame: Uint8Array
    if (v.input.type === 'ack') frame = ingest.encodeAck(v.input.ack.deviceId, v.input.ack.seq)
    else {
      const body = v.input.type === 'event' ? ingest.encodeDeviceFrame(gen.eventFromJson(v.input.event)) : ingest.encodeDeviceHello(v.input.hello)
      frame = ingest.encodeFrame({ type: v.input.type, body, ...(key === undefined ? {} : { key }) })
    }
    t.equal(hex(v.transport === 'stream' ? ingest.toStreamFrame(frame) : frame), hex(bin(v.file)), v.name)
  }
})

t.test('every vector decodes or is rejected as vectors.json says, whole and in random chunks', async t => {
  const random = prng(20240611)
  for (const v of committed.vectors) {
    const bytes = bin(v.file)
    const o = optionsFor(v)
    const expects = 'frames' in v.expect ? v.expect.frames : [v.expect]
    if (v.direction === 'gateway-to-device') {
      // The device side: one COBS frame, then parseAck.
      const e = expects[0]
      assert(e !== undefined && e.ok && 'ack' in e)
      const frame = ingest.cobsDecode(bytes.subarray(0, bytes.length - 1))
      t.same(frame === undefined ? undefined : ingest.parseAck(frame), { ok: true, ...e.ack, bytes: (frame ?? []).length }, v.name)
      t.same(feed(bytes, o, []).map((r) => r.ok ? 'ok' : r.reason), ['bad_field'], `${v.name}: a gateway refuses an ack`)
      continue
    }
    if (v.transport === 'datagram') {
      const r = parseFrame(bytes, o)
      t.equal(summarize(r), expected(expects[0] as Expect, bytes.length), v.name)
      continue
    }
    const want = expects.map((e) => withoutBytes(expected(e, 0)))
    const whole = feed(bytes, o, []).map(summarize)
    t.same(whole.map(withoutBytes), want, `${v.name}: whole`)
    // (An oversize frame is reported when its length passes the limit, before its last bytes.)
    if (expects.length === 1 && !whole[0]?.startsWith('oversize')) t.equal(whole[0]?.replace(/^\w+:(\d+).*$/s, '$1'), String(bytes.length), `${v.name}: bytes = the file`)
    const single = feed(bytes, o, Array.from({ length: bytes.length }, (_, i) => i)).map(summarize)
    t.same(single, whole, `${v.name}: 1-byte chunks`)
    for (let k = 0; k < 10; k++) {
      const cuts = Array.from({ length: 1 + Math.floor(random() * 6) }, () => Math.floor(random() * bytes.length)).sort((a, b) => a - b)
      const chunked = feed(bytes, o, cuts).map(summarize)
      if (chunked.join('\n') !== whole.join('\n')) t.fail(`${v.name}: cut at ${cuts.join(',')}`)
    }
  }
})

const parseFrame = ingest.parseFrame

/** Text format of an input event, for protoc --encode. */
function textFormat (e: EventJson): string {
  const q = (s: string): string => JSON.stringify(s)
  const names = ['PRIORITY_LOW', 'PRIORITY_NORMAL', 'PRIORITY_HIGH', 'PRIORITY_CRITICAL']
  const lines = [`device_id: ${q(e.deviceId)}`, `seq: ${e.seq}`]
  if (e.deviceTimeMs !== undefined) lines.push(`device_time_ms: ${e.deviceTimeMs}`)
  if (e.uptimeMs !== undefined) lines.push(`uptime_ms: ${e.uptimeMs}`)
  lines.push(`priority: ${names[e.priority] ?? ''}`, `stream: ${q(e.stream)}`)
  const v = e.value ?? {}
  if (typeof v.number === 'number') lines.push(`number: ${v.number}`)
  if (Array.isArray(v.numbers)) lines.push(`numbers { ${(v.numbers as Array<[string, number]>).map(([k, x]) => `values { key: ${q(k)} value: ${x} }`).join(' ')} }`)
  if (typeof v.text === 'string') lines.push(`text: ${q(v.text)}`)
  if (typeof v.rawHex === 'string') lines.push(`raw: "${v.rawHex.replace(/../g, (h) => `\\x${h}`)}"`)
  for (const [k, x] of e.tags ?? []) lines.push(`tags { key: ${q(k)} value: ${q(x)} }`)
  return lines.join('\n')
}

t.test('protoc encodes the input events to the same bodies (canonical encoding, PROTOCOL.md §3.1)', async t => {
  for (const v of committed.vectors) {
    if (v.input?.type !== 'event') continue
    // protoc writes map entries in its own hash order; the vectors keep the caller's order.
    if ((v.input.event.tags?.length ?? 0) > 1 || (Array.isArray(v.input.event.value?.numbers) && (v.input.event.value.numbers as unknown[]).length > 1)) continue
    const run = spawnSync('protoc', ['--encode=edgefwd.v1.DeviceFrame', '-I', 'proto', 'proto/edgefwd/v1/edgefwd.proto'], { cwd: repoRoot, input: textFormat(v.input.event) })
    if (run.error !== undefined) throw new Error('protoc is not on PATH: apt-get install -y protobuf-compiler')
    t.equal(run.status, 0, run.stderr.toString())
    const raw = v.transport === 'stream' ? ingest.cobsDecode(bin(v.file).subarray(0, bin(v.file).length - 1)) : bin(v.file)
    assert(raw !== undefined)
    const body = raw.subarray(2, raw.length - 4 - (v.input.keyHex === undefined ? 0 : 16))
    t.equal(hex(body), run.stdout.toString('hex'), v.name)
  }
  const hello = committed.vectors.find((v) => v.input?.type === 'hello')
  assert(hello?.input?.type === 'hello')
  const h = hello.input.hello
  const run = spawnSync('protoc', ['--encode=edgefwd.v1.DeviceHello', '-I', 'proto', 'proto/edgefwd/v1/edgefwd.proto'], {
    cwd: repoRoot, input: `device_id: ${JSON.stringify(h.deviceId)} firmware_version: ${JSON.stringify(h.firmwareVersion)} capabilities: ${h.capabilities}`
  })
  const raw = ingest.cobsDecode(bin(hello.file).subarray(0, bin(hello.file).length - 1)) ?? new Uint8Array(0)
  t.equal(hex(raw.subarray(2, raw.length - 4)), run.stdout.toString('hex'), 'hello')
})
