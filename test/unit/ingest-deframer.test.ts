// StreamDeframer: COBS frames on a byte stream, in any chunking, with garbage, resets and floods.
import { Buffer } from 'node:buffer'
import fc from 'fast-check'
import t from 'tap'
import {
  StreamDeframer, encodeDeviceFrame, encodeFrame, encodeStreamFrame, toStreamFrame,
  type DeviceEvent, type FrameOptions, type FrameResult
} from '../../src/ingest/index.js'
import { referenceStream, summarize } from '../../bench/fuzz-ingest.js'

const opts: FrameOptions = { maxFrameSize: 16384 }
const cat = (...parts: ArrayLike<number>[]): Uint8Array => new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p as Uint8Array))))

function ev (seq: number, over: Partial<DeviceEvent> = {}): DeviceEvent {
  return { deviceId: 'sensor-1', seq, priority: 1, stream: 'telemetry', value: { kind: 'number', number: seq / 2 }, ...over }
}
const wire = (e: DeviceEvent): Uint8Array => encodeStreamFrame({ type: 'event', body: encodeDeviceFrame(e) })

/** Feeds `stream` cut at `cuts` and returns every result. */
function run (stream: Uint8Array, cuts: number[] = [], o: FrameOptions = opts): FrameResult[] {
  const out: FrameResult[] = []
  const d = new StreamDeframer(o, (r) => out.push(r))
  let p = 0
  for (const c of [...cuts, stream.length]) {
    d.push(stream.subarray(p, c))
    p = c
  }
  return out
}
const every = (n: number): number[] => Array.from({ length: n }, (_, i) => i)
const seqs = (rs: FrameResult[]): Array<number | string> => rs.map((r) => r.ok ? (r.kind === 'event' ? r.event.seq : 'hello') : r.reason)

t.test('frames in one chunk, in order, with their wire bytes', async t => {
  const frames = [wire(ev(1)), wire(ev(2, { value: { kind: 'raw', raw: new Uint8Array(700) } })), wire(ev(3))]
  const rs = run(cat(...frames))
  t.same(seqs(rs), [1, 2, 3])
  t.same(rs.map((r) => r.bytes), frames.map((f) => f.length))
  t.same(run(cat(...frames), every(cat(...frames).length)).map(summarize), rs.map(summarize), 'byte by byte: the same results')
})

t.test('empty frames are ignored; garbage gives one rejection and the next frame is found', async t => {
  t.same(seqs(run(cat([0, 0, 0], wire(ev(1)), [0, 0], wire(ev(2)), [0]))), [1, 2])
  // Garbage ended by its own 0x00 (a sender's flush): one rejection, nothing lost.
  t.same(seqs(run(cat([0x05, 0x01, 0x02, 0x00], wire(ev(1)), [0xff, 0x41, 0x00], wire(ev(2))))), ['bad_cobs', 1, 'bad_cobs', 2])
  // Garbage without a 0x00 merges with the next frame, which is lost; the one after is fine.
  const merged = run(cat([0x41, 0x42, 0x43], wire(ev(1)), wire(ev(2))))
  t.same(merged.map((r) => r.ok), [false, true], `${merged[0]?.ok === false ? merged[0].reason : ''} then frame 2`)
  // A device reset mid-frame: the partial frame and the next one merge into one rejection.
  const partial = wire(ev(1)).subarray(0, 20)
  t.same(run(cat(partial, wire(ev(2)), wire(ev(3)))).map((r) => r.ok), [false, true])
  // A raw frame sent without COBS on a stream.
  const raw = encodeFrame({ type: 'event', body: encodeDeviceFrame(ev(4)) })
  t.ok(run(cat(raw, [0], wire(ev(5)))).slice(-1).every((r) => r.ok), 'the frame after a non-COBS frame is found')
})

t.test('property: any chunking gives the same results as one chunk, and as cobsDecode + parseFrame', async t => {
  const item = fc.oneof(
    fc.nat(2 ** 40).map((s) => wire(ev(s))),
    fc.uint8Array({ maxLength: 40 }),
    fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => cat(toStreamFrame(encodeFrame({ type: 'event', body: b })))),
    fc.constant(Uint8Array.of(0)),
    fc.integer({ min: 100, max: 300 }).map((n) => new Uint8Array(n).fill(7))
  )
  const small: FrameOptions = { maxFrameSize: 200 }
  fc.assert(fc.property(fc.array(item, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 30 }), fc.boolean(), (items, rawCuts, useSmall) => {
    const o = useSmall ? small : opts
    const stream = cat(...items)
    const cuts = [...new Set(rawCuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b)
    const whole = run(stream, [], o).map(summarize)
    const chunked = run(stream, cuts, o).map(summarize)
    const bytes = run(stream, every(stream.length), o).map(summarize)
    return whole.join('\n') === chunked.join('\n') && whole.join('\n') === bytes.join('\n') && whole.join('\n') === referenceStream(stream, o).join('\n')
  }), { numRuns: 700 })
  t.pass('700 generated streams')
})

t.test('1 MB without a 0x00: one oversize report, bounded buffer, then the next frame', async t => {
  for (const chunkSize of [1 << 20, 65536, 1000, 7]) {
    const results: FrameResult[] = []
    const d = new StreamDeframer(opts, (r) => results.push(r))
    t.equal(d.capacity, opts.maxFrameSize + 1, 'one buffer of maxFrameSize + 1 bytes')
    const flood = new Uint8Array(1 << 20).fill(0x41)
    let maxBuffered = 0
    for (let p = 0; p < flood.length; p += chunkSize) {
      d.push(flood.subarray(p, p + chunkSize))
      maxBuffered = Math.max(maxBuffered, d.bufferedBytes)
    }
    t.ok(maxBuffered <= opts.maxFrameSize + 1, `chunks of ${chunkSize}: buffered at most ${maxBuffered} bytes`)
    t.equal(d.bufferedBytes, 0, 'nothing held while skipping')
    t.same(results.map((r) => r.ok ? 'ok' : r.reason), ['oversize'], 'reported once, before any 0x00')
    d.push(cat([0], wire(ev(9))))
    t.same(seqs(results), ['oversize', 9], 'the next frame after the 0x00 is accepted')
  }
})

t.test('maxFrameSize: a frame of exactly the limit passes, one byte more is oversize', async t => {
  const base = encodeFrame({ type: 'event', body: encodeDeviceFrame(ev(1)) }).length
  // Unknown field 15 (bytes) pads the body: the decoder skips it.
  const padded = (total: number): Uint8Array => {
    const n = total - base - 3
    const body = cat(encodeDeviceFrame(ev(1)), [0x7a, 0x80 | (n & 0x7f), n >> 7], new Uint8Array(n).fill(9))
    return encodeFrame({ type: 'event', body })
  }
  for (const max of [300, 16384]) {
    const o: FrameOptions = { maxFrameSize: max }
    t.equal(padded(max).length, max)
    t.same(seqs(run(toStreamFrame(padded(max)), [], o)), [1], `${max}: exactly the limit`)
    const over = toStreamFrame(padded(max + 1))
    t.same(seqs(run(cat(over, wire(ev(2))), [], o)), ['oversize', 2], `${max}: one more byte`)
    t.same(seqs(run(cat(over, wire(ev(2))), every(over.length + 10), o)), ['oversize', 2], `${max}: one more byte, byte by byte`)
  }
})

t.test('reset() drops a partial frame; from inside onFrame it also drops the rest of the chunk', async t => {
  const results: FrameResult[] = []
  const d = new StreamDeframer(opts, (r) => results.push(r))
  const one = wire(ev(1))
  d.push(one.subarray(0, 10))
  t.ok(d.bufferedBytes > 0)
  d.reset()
  t.equal(d.bufferedBytes, 0)
  d.push(wire(ev(2)))
  t.same(seqs(results), [2])

  const seen: FrameResult[] = []
  const r = new StreamDeframer(opts, (x) => {
    seen.push(x)
    r.reset()
  })
  r.push(cat(wire(ev(3)), wire(ev(4))))
  t.same(seqs(seen), [3], 'the second frame of the chunk is dropped')
  r.push(wire(ev(5)))
  t.same(seqs(seen), [3, 5])
})

t.test('an exception from onFrame leaves the deframer usable', async t => {
  let calls = 0
  const d = new StreamDeframer(opts, () => {
    calls++
    if (calls === 1) throw new Error('boom')
  })
  t.throws(() => d.push(cat(wire(ev(1)), wire(ev(2)))), /boom/)
  d.push(wire(ev(3)))
  t.equal(calls, 2, 'the rest of the failed chunk is dropped; the next chunk is parsed')
})

t.test('results outlive the buffer: raw values and strings are copies', async t => {
  const kept: FrameResult[] = []
  const d = new StreamDeframer(opts, (r) => kept.push(r))
  d.push(wire(ev(1, { value: { kind: 'raw', raw: Uint8Array.of(1, 2, 3) } })))
  d.push(wire(ev(2, { value: { kind: 'raw', raw: Uint8Array.of(9, 9, 9, 9) } })))
  const raws = kept.map((r) => r.ok && r.kind === 'event' && r.event.value?.kind === 'raw' ? [...r.event.value.raw] : [])
  t.same(raws, [[1, 2, 3], [9, 9, 9, 9]])
})

t.test('constructor checks maxFrameSize', async t => {
  for (const bad of [0, 5, 1.5, Number.NaN, 2 * 1024 * 1024]) {
    t.throws(() => new StreamDeframer({ maxFrameSize: bad }, () => {}), RangeError, String(bad))
  }
})
