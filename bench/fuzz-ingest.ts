/**
 * `npm run fuzz:ingest -- [N] [SEED]`: feeds N (default 1,000,000) random and mutated inputs
 * through the ingest codecs and checks that no exception escapes and that every input is either
 * accepted, as an event that really follows PROTOCOL.md §3 (checked here independently), or
 * rejected with a known reason. Prints counts per target and per reason, and failures with the
 * seed and input index to replay them. test/unit/ingest-fuzz.test.ts runs runFuzz() on 120,000.
 *
 * Targets, by share of the inputs:
 *   frame   40%  parseFrame on a mutated datagram: bit flips, byte overwrites, truncation,
 *                extension, insertion, deletion, huge length prefixes, other version and type
 *                bytes, random bodies; the CRC is set right again for 70% so body decoders are hit
 *   stream  25%  a few stream frames, garbage (with and without 0x00), empty frames and
 *                sometimes a 20-40 KB run without 0x00, through a StreamDeframer in random
 *                chunks (1 byte up to everything). Results must equal a whole-chunk run and a
 *                reference built from cobsDecode + parseFrame per 0x00-separated segment
 *   msgpack 15%  decodeMsgpackBody on mutated and random msgpack, then parseFrame on it framed
 *   json    15%  parseJsonLine on mutated JSON lines
 *   ack      5%  parseAck on mutated acks
 */
import { Buffer } from 'node:buffer'
import { fileURLToPath } from 'node:url'
import {
  REJECT_REASONS, StreamDeframer, cobsDecodeInto, crc32c, decodeMsgpackBody, encodeAck, encodeDeviceFrame, encodeDeviceHello, encodeFrame,
  encodeJsonEvent, encodeMsgpackEvent, parseAck, parseFrame, parseJsonLine, toStreamFrame, writeCrc,
  type DeviceEvent, type FrameOptions, type FrameResult, type FrameType, type RejectReason
} from '../src/ingest/index.js'
import type { Priority } from '../src/types.js'
import { parseFrameAt } from '../src/ingest/frame.js'

export const TARGETS = ['frame', 'stream', 'msgpack', 'json', 'ack'] as const
export type FuzzTarget = typeof TARGETS[number]

export interface FuzzReport {
  inputs: number
  /** Results seen (a stream input gives several). */
  results: number
  accepted: number
  rejected: Record<RejectReason, number>
  byTarget: Record<FuzzTarget, number>
  /** Time spent per target, generation included. */
  msByTarget: Record<FuzzTarget, number>
  /** The first failures: target, input index and what went wrong. Empty when all is well. */
  failures: string[]
}

const KEY = new Uint8Array(32).fill(0x5a)
/** Devices whose id starts with "keyed-" have a key: their frames must be authenticated. */
export const fuzzOptions: FrameOptions = { maxFrameSize: 16384, keyFor: (id) => id.startsWith('keyed-') ? KEY : undefined }

/** mulberry32: small, fast, deterministic. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

class Gen {
  constructor (readonly r: () => number) {}
  int (n: number): number { return Math.floor(this.r() * n) }
  pick<T> (xs: readonly T[]): T { return xs[this.int(xs.length)] as T }
  chance (p: number): boolean { return this.r() < p }
  bytes (n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = this.int(256)
    return out
  }

  str (max: number, alphabet: readonly string[]): string {
    let s = ''
    for (let i = this.int(max + 1); i > 0; i--) s += alphabet[this.int(alphabet.length)] as string
    return s
  }
}

const ASCII = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:~!']
const UNICODE = [...ASCII, ...'é°✓ü€𝄞 /+#\u0000\u007f', '\ud800']
const GOOD_IDS = ['sensor-1', 'keyed-7', 'd', 'x'.repeat(64), '__proto__', '~!$%&*()']
const BAD_IDS = ['', 'x'.repeat(65), 'pump/3', 'a+b', 'a#b', 'with space', 'keyed-ü', 'del\u007f']
const UNSAFE = [2 ** 53, 2 ** 60, 2 ** 64]

/**
 * An event near the limits of PROTOCOL.md §3. Half are valid in every field (at boundary values
 * as often as not), so the oracle sees many accepted events; in the others each field is out of
 * range with a probability of one in four, often by one.
 */
function randomEvent (g: Gen): DeviceEvent {
  const valid = g.chance(0.5)
  const bad = (): boolean => !valid && g.chance(0.25)
  const count = (max: number): number => bad() ? max + 1 + g.int(3) : g.pick([max, g.int(max + 1)])
  const text = (max: number, min = 0): string => {
    // Long strings repeat a short random one: a PRNG call per character costs too much here.
    const random = (n: number, alphabet: readonly string[]): string => n <= 32 ? g.str(n, alphabet) : g.str(16, alphabet).repeat(1 + g.int(n / 8)).slice(0, n)
    // Pick first, then build: building every candidate made this the fuzzer's hot spot.
    if (bad()) {
      switch (g.int(3)) {
        case 0: return min > 0 ? '' : 'x'.repeat(max + 1)
        case 1: return 'ü'.repeat(Math.ceil(max / 2)) + 'a'
        default: return random(max + 5, UNICODE)
      }
    }
    switch (g.int(3)) {
      case 0: return 'x'.repeat(max)
      case 1: return 'ü'.repeat(Math.floor(max / 2))
      default: return random(Math.floor(max / 3), ASCII).padEnd(min, 'm')
    }
  }
  const e: DeviceEvent = {
    deviceId: bad() ? g.pick(BAD_IDS) : g.pick(GOOD_IDS),
    seq: bad() ? g.pick(UNSAFE) : g.pick([0, 1, g.int(1e6), 2 ** 40 + 7, Number.MAX_SAFE_INTEGER]),
    priority: (bad() ? 4 + g.int(300) : g.int(4)) as Priority,
    stream: bad() ? g.pick(['s'.repeat(65), 'a b', 'é']) : g.pick(['telemetry', '', 's'.repeat(64), 'a/b+c#'])
  }
  if (g.chance(0.5)) e.deviceTimeMs = bad() ? g.pick(UNSAFE) : g.pick([0, 1_700_000_000_000, Number.MAX_SAFE_INTEGER])
  if (g.chance(0.3)) e.uptimeMs = bad() ? g.pick(UNSAFE) : g.int(1e9)
  switch (g.int(5)) {
    case 0: e.value = { kind: 'number', number: g.pick([0, -0, 21.5, NaN, Infinity, 1e300]) }; break
    case 1: e.value = { kind: 'numbers', numbers: Object.fromEntries(Array.from({ length: count(32) }, (_, i) => [`n${i}`, g.r()])) }; break
    // Values at their size limits in one event of ten: they cost most of the fuzzer's time.
    case 2: e.value = { kind: 'text', text: g.chance(0.25) ? text(1024) : g.str(20, UNICODE) }; break
    case 3: e.value = { kind: 'raw', raw: g.chance(0.75) ? g.bytes(g.int(64)) : new Uint8Array(bad() ? 8193 : 8192).fill(g.int(256)) }; break
    default: break
  }
  if (g.chance(0.6)) e.tags = Object.fromEntries(Array.from({ length: count(8) || 1 }, (_, i) => [i + text(31, 1), text(64)]))
  return e
}

function varint (v: number): number[] {
  const out: number[] = []
  while (v >= 0x80) {
    out.push((v % 128) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
  return out
}

/**
 * The protobuf body of `e`. encodeDeviceFrame refuses values outside uint64-as-safe-integer and
 * priorities above 3, so those fields are written after it by hand (the last value wins).
 */
function protobufBody (e: DeviceEvent): Uint8Array {
  const safe = (v: number | undefined): boolean => v === undefined || Number.isSafeInteger(v)
  const extra: number[] = []
  const clean: DeviceEvent = { ...e }
  if (!safe(e.seq)) { clean.seq = 0; extra.push(0x10, ...varint(Math.min(e.seq, 2 ** 64 - 1))) }
  if (!safe(e.deviceTimeMs)) { delete clean.deviceTimeMs; extra.push(0x18, ...varint(Math.min(e.deviceTimeMs ?? 0, 2 ** 64 - 1))) }
  if (!safe(e.uptimeMs)) { delete clean.uptimeMs; extra.push(0x20, ...varint(Math.min(e.uptimeMs ?? 0, 2 ** 64 - 1))) }
  if (e.priority > 3) { clean.priority = 0; extra.push(0x28, ...varint(e.priority)) }
  return extra.length === 0 ? encodeDeviceFrame(clean) : concat(encodeDeviceFrame(clean), extra)
}

/** A valid-looking frame of some type, before mutation. */
function baseFrame (g: Gen): Uint8Array {
  const e = randomEvent(g)
  const key = e.deviceId.startsWith('keyed-') && g.chance(0.8) ? KEY : undefined
  const type: FrameType = g.pick(['event', 'event', 'event', 'event-msgpack', 'hello', 'ack'])
  switch (type) {
    case 'event-msgpack': return encodeFrame({ type, body: encodeMsgpackEvent(e), ...(key === undefined ? {} : { key }) })
    case 'hello': return encodeFrame({ type, body: encodeDeviceHello({ deviceId: e.deviceId, firmwareVersion: text64(g), capabilities: g.int(2 ** 32) }), ...(key === undefined ? {} : { key }) })
    case 'ack': return encodeFrame({ type, body: g.bytes(g.int(80)) })
    default: return encodeFrame({ type, body: protobufBody(e), ...(key === undefined ? {} : { key }) })
  }
}

function text64 (g: Gen): string {
  return g.pick(['1.4.2', 'v'.repeat(64), 'v'.repeat(65), 'ü'.repeat(32), g.str(70, UNICODE)])
}

/** One random mutation; the result may alias the input. */
function mutate (g: Gen, f: Uint8Array): Uint8Array {
  const at = f.length === 0 ? 0 : g.int(f.length)
  switch (g.int(10)) {
    case 0: { const o = f.slice(); for (let k = 1 + g.int(8); k > 0 && o.length > 0; k--) o[g.int(o.length)]! ^= 1 << g.int(8); return o }
    case 1: { const o = f.slice(); for (let k = 1 + g.int(4); k > 0 && o.length > 0; k--) o[g.int(o.length)] = g.int(256); return o }
    case 2: return f.slice(0, at)
    case 3: return concat(f, g.bytes(1 + g.int(40)))
    case 4: return concat(f.subarray(0, at), g.bytes(1 + g.int(8)), f.subarray(at))
    case 5: return concat(f.subarray(0, at), f.subarray(Math.min(f.length, at + 1 + g.int(16))))
    // A huge or overlong length prefix (or varint) where a field starts.
    case 6: return concat(f.subarray(0, at), g.pick([[0xff, 0xff, 0xff, 0xff, 0x0f], [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], [0x0a, 0xff, 0x7f]]), f.subarray(at))
    case 7: { const o = f.slice(); if (o.length > 1) o[g.int(2)] = g.int(256); return o }
    case 8: return concat(f.subarray(0, 2), g.bytes(g.int(100)), new Uint8Array(4))
    default: return concat(f.subarray(0, at), f.subarray(g.int(f.length + 1)))
  }
}

function concat (...parts: ArrayLike<number>[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p as Uint8Array))))
}

function fixCrc (f: Uint8Array): Uint8Array {
  if (f.length >= 6) writeCrc(f, f.length - 4)
  return f
}

const isAscii = (s: string, min: number, max: number, topic: boolean): boolean =>
  s.length >= min && s.length <= max && /^[\x21-\x7e]*$/.test(s) && !(topic && /[/+#]/.test(s))
const utf8Ok = (s: string, min: number, max: number): boolean => {
  const b = Buffer.from(s, 'utf8')
  return b.toString('utf8') === s && b.length >= min && b.length <= max
}
const safe = (v: number | undefined): boolean => v === undefined || (Number.isSafeInteger(v) && v >= 0)

/** An oracle written apart from event-rules.ts: undefined when an accepted result is right. */
export function acceptedProblem (r: Extract<FrameResult, { ok: true }>, viaJson = false): string | undefined {
  const id = r.kind === 'event' ? r.event.deviceId : r.hello.deviceId
  if (!isAscii(id, 1, 64, true)) return `accepted a bad device id ${JSON.stringify(id)}`
  const keyed = fuzzOptions.keyFor?.(id) !== undefined
  if (keyed !== r.authenticated || (viaJson && keyed)) return `device ${id}: keyed ${String(keyed)} but authenticated ${String(r.authenticated)}`
  if (r.kind === 'hello') return utf8Ok(r.hello.firmwareVersion, 0, 64) ? undefined : 'accepted a bad firmware version'
  const e = r.event
  if (!safe(e.seq) || !safe(e.deviceTimeMs) || !safe(e.uptimeMs)) return `accepted seq/time out of range: ${e.seq} ${String(e.deviceTimeMs)} ${String(e.uptimeMs)}`
  if (![0, 1, 2, 3].includes(e.priority)) return `accepted priority ${String(e.priority)}`
  if (!isAscii(e.stream, 0, 64, false)) return `accepted a bad stream ${JSON.stringify(e.stream)}`
  const v = e.value
  if (v?.kind === 'text' && !utf8Ok(v.text, 0, 1024)) return 'accepted a bad text value'
  if (v?.kind === 'raw' && (!(v.raw instanceof Uint8Array) || v.raw.length > 8192 || Object.getPrototypeOf(v.raw) !== Uint8Array.prototype)) return 'accepted a bad raw value'
  if (v?.kind === 'number' && typeof v.number !== 'number') return 'accepted a non-number'
  if (v?.kind === 'numbers' && (Object.keys(v.numbers).length > 32 || Object.values(v.numbers).some((x) => typeof x !== 'number'))) return 'accepted bad numbers'
  if (e.tags !== undefined) {
    const keys = Object.keys(e.tags)
    if (keys.length === 0 || keys.length > 8) return `accepted ${keys.length} tags`
    for (const k of keys) if (!utf8Ok(k, 1, 32) || !utf8Ok(e.tags[k] as string, 0, 64)) return `accepted a bad tag ${JSON.stringify(k)}`
  }
  return undefined
}

/** One line per result, to compare two runs of the same stream. */
export function summarize (r: FrameResult): string {
  if (!r.ok) return `${r.reason}:${r.bytes}`
  // Raw values as length and CRC: hex of 8 KiB values made this the fuzzer's hot spot.
  return `${r.kind}:${r.bytes}:${JSON.stringify(r.kind === 'event' ? r.event : r.hello, (_k, v: unknown) => v instanceof Uint8Array ? `${v.length}:${crc32c(v)}` : typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)}`
}

/**
 * What a StreamDeframer must report for `stream`, built another way: split at each 0x00, decode
 * each piece with cobsDecodeInto, parseFrame it. A piece whose decoded length passes
 * maxFrameSize is oversize, reported at the wire byte that passed it (so also without a 0x00).
 */
export function referenceStream (stream: Uint8Array, opts: FrameOptions): string[] {
  const out: string[] = []
  let start = 0
  for (;;) {
    let zero = stream.indexOf(0, start)
    const ended = zero >= 0
    if (!ended) zero = stream.length
    const seg = stream.subarray(start, zero)
    if (seg.length > 0) {
      const over = oversizeAt(seg, opts.maxFrameSize)
      if (over >= 0) {
        out.push(`oversize:${over}`)
      } else if (ended) {
        const decoded = new Uint8Array(seg.length)
        const n = cobsDecodeInto(seg, 0, seg.length, decoded, 0)
        out.push(n < 0 ? `bad_cobs:${seg.length + 1}` : summarize(parseFrameAt(decoded, 0, n, opts, seg.length + 1)))
      }
    }
    if (!ended) return out
    start = zero + 1
  }
}

/** The wire bytes up to the one that takes the (leniently) decoded length past max, or -1. */
function oversizeAt (seg: Uint8Array, max: number): number {
  let i = 0
  let n = 0
  let zeroOwed = false
  while (i < seg.length) {
    const code = seg[i++] as number
    if (zeroOwed && ++n > max) return i
    zeroOwed = code !== 0xff
    const take = Math.min(code - 1, seg.length - i)
    if (n + take > max) return i + (max + 1 - n)
    n += take
    i += take
  }
  return -1
}

function runDeframer (stream: Uint8Array, cuts: number[]): FrameResult[] {
  const out: FrameResult[] = []
  const d = new StreamDeframer(fuzzOptions, (r) => out.push(r))
  let p = 0
  for (const c of [...cuts, stream.length]) {
    d.push(stream.subarray(p, c))
    p = c
    if (d.bufferedBytes > d.capacity) throw new Error(`bufferedBytes ${d.bufferedBytes} > capacity ${d.capacity}`)
  }
  return out
}

export function runFuzz (n: number, seed = 1): FuzzReport {
  const g = new Gen(prng(seed))
  const report: FuzzReport = {
    inputs: 0,
    results: 0,
    accepted: 0,
    rejected: Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>,
    byTarget: Object.fromEntries(TARGETS.map((t) => [t, 0])) as Record<FuzzTarget, number>,
    msByTarget: Object.fromEntries(TARGETS.map((t) => [t, 0])) as Record<FuzzTarget, number>,
    failures: []
  }
  const fail = (target: FuzzTarget, i: number, message: string, input: Uint8Array | string): void => {
    if (report.failures.length >= 20) return
    const shown = typeof input === 'string' ? JSON.stringify(input.slice(0, 200)) : Buffer.from(input.subarray(0, 100)).toString('hex')
    report.failures.push(`${target} #${i} (seed ${seed}): ${message}; input ${shown}`)
  }
  const check = (target: FuzzTarget, i: number, r: FrameResult, input: Uint8Array | string): void => {
    report.results++
    if (r.ok) {
      report.accepted++
      const problem = acceptedProblem(r, target === 'json')
      if (problem !== undefined) fail(target, i, problem, input)
    } else if ((REJECT_REASONS as readonly string[]).includes(r.reason) && r.reason !== 'rate_limited' && r.reason !== 'unknown_device') {
      report.rejected[r.reason]++
      if (typeof r.detail !== 'string' || r.detail === '') fail(target, i, 'rejection without detail', input)
      if (r.deviceId !== undefined && !isAscii(r.deviceId, 1, 64, true)) fail(target, i, `rejection names a bad device id ${JSON.stringify(r.deviceId)}`, input)
    } else {
      fail(target, i, `unknown reason ${String((r as { reason: unknown }).reason)}`, input)
    }
  }
  for (let i = 0; i < n; i++) {
    const roll = g.r()
    const target: FuzzTarget = roll < 0.4 ? 'frame' : roll < 0.65 ? 'stream' : roll < 0.8 ? 'msgpack' : roll < 0.95 ? 'json' : 'ack'
    report.inputs++
    report.byTarget[target]++
    const started = performance.now()
    let input: Uint8Array | string = new Uint8Array(0)
    try {
      switch (target) {
        case 'frame': {
          const base = baseFrame(g)
          if (g.chance(0.1)) {
            // One flipped bit, CRC left alone: CRC32C must catch it, whatever else is wrong.
            input = base.slice()
            input[g.int(input.length)]! ^= 1 << g.int(8)
            const r = parseFrame(input, fuzzOptions)
            if (r.ok || r.reason !== 'bad_crc') fail(target, i, `a one-bit error gave ${r.ok ? 'ok' : r.reason}`, input)
            check(target, i, r, input)
            break
          }
          input = base
          for (let k = 1 + g.int(3); k > 0; k--) input = mutate(g, input)
          if (g.chance(0.7)) input = fixCrc(input.slice())
          const r = parseFrame(input, fuzzOptions)
          if (r.bytes !== input.length) fail(target, i, `bytes ${r.bytes} for ${input.length}`, input)
          check(target, i, r, input)
          break
        }
        case 'stream': {
          const parts: Uint8Array[] = []
          for (let k = 1 + g.int(4); k > 0; k--) {
            const kind = g.int(100)
            if (kind < 60) parts.push(toStreamFrame(g.chance(0.5) ? baseFrame(g) : fixCrc(mutate(g, baseFrame(g)))))
            else if (kind < 75) parts.push(mutate(g, toStreamFrame(baseFrame(g))))
            else if (kind < 90) parts.push(g.bytes(g.int(50)))
            else if (kind < 99) parts.push(new Uint8Array(1 + g.int(3)))
            else parts.push(new Uint8Array(20000 + g.int(20000)).fill(1 + g.int(255)))
          }
          input = concat(...parts)
          const cuts: number[] = []
          // Byte by byte (a push and a view per byte) for one small input in ten; the unit tests
          // feed every golden vector and generated streams byte by byte too.
          const mode = input.length <= 1024 && g.chance(0.1) ? 0 : 1 + g.int(2)
          for (let p = 0; p < input.length;) {
            p += mode === 0 ? 1 : mode === 1 ? 1 + g.int(16) : 1 + g.int(4096)
            if (p < input.length) cuts.push(p)
          }
          const results = runDeframer(input, [])
          const whole = results.map(summarize)
          const chunked = runDeframer(input, cuts).map(summarize)
          if (chunked.join('\n') !== whole.join('\n')) fail(target, i, `chunked ${JSON.stringify(chunked)} ≠ whole ${JSON.stringify(whole)}`, input)
          const reference = referenceStream(input, fuzzOptions)
          if (whole.join('\n') !== reference.join('\n')) fail(target, i, `deframer ${JSON.stringify(whole)} ≠ reference ${JSON.stringify(reference)}`, input)
          for (const r of results) check(target, i, r, input)
          break
        }
        case 'msgpack': {
          let body: Uint8Array = encodeMsgpackEvent(randomEvent(g))
          for (let k = g.int(3); k > 0; k--) body = mutate(g, body)
          if (g.chance(0.1)) body = concat([0x80 + g.int(16)], g.bytes(g.int(60)))
          input = body
          const direct = decodeMsgpackBody(body, 0, body.length)
          if (typeof direct.ok !== 'boolean') fail(target, i, 'decodeMsgpackBody returned no result', body)
          check(target, i, parseFrame(encodeFrame({ type: 'event-msgpack', body }), fuzzOptions), body)
          break
        }
        case 'json': {
          let line = encodeJsonEvent(randomEvent(g))
          for (let k = 1 + g.int(3); k > 0; k--) {
            const at = g.int(line.length + 1)
            const piece = g.pick(['', '{', '}', '"', ':', ',', '[', ']', 'null', '1e400', '-0', '9007199254740993', '"\\ud800"', '{"base64":"AA=="}', '"x"', '0.5', String.fromCharCode(g.int(0x10000))])
            line = line.slice(0, at) + piece + line.slice(at + g.int(3))
          }
          input = line
          check(target, i, parseJsonLine(line, fuzzOptions), line)
          break
        }
        case 'ack': {
          input = fixCrc(mutate(g, encodeAck(g.pick(GOOD_IDS), g.pick([0, 1, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER]))))
          const r = parseAck(input)
          report.results++
          if (r.ok) {
            report.accepted++
            if (!isAscii(r.deviceId, 1, 64, true) || !safe(r.seq)) fail(target, i, `accepted a bad ack ${r.deviceId} ${r.seq}`, input)
          } else {
            report.rejected[r.reason]++
          }
          break
        }
      }
    } catch (err) {
      fail(target, i, `threw ${((err as Error).stack ?? String(err)).split('\n').slice(0, 3).join(' | ')}`, input)
    }
    report.msByTarget[target] += performance.now() - started
  }
  return report
}

function main (): void {
  const n = Number(process.argv[2] ?? 1_000_000)
  const seed = Number(process.argv[3] ?? Date.now() % 1_000_000)
  const t0 = process.hrtime.bigint()
  const report = runFuzz(n, seed)
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  console.log(`edgefwd ingest fuzz — ${report.inputs.toLocaleString()} inputs, seed ${seed}, ${seconds.toFixed(1)} s, Node ${process.version}`)
  console.log(`  inputs by target: ${TARGETS.map((t) => `${t} ${report.byTarget[t].toLocaleString()} (${(report.msByTarget[t] / 1000).toFixed(1)} s)`).join(', ')}`)
  console.log(`  results: ${report.results.toLocaleString()}, accepted ${report.accepted.toLocaleString()}`)
  for (const r of REJECT_REASONS) console.log(`  ${r.padEnd(15)} ${report.rejected[r].toLocaleString()}`)
  for (const f of report.failures) console.log(`FAIL ${f}`)
  console.log(JSON.stringify({ inputs: report.inputs, results: report.results, accepted: report.accepted, ...report.rejected, failures: report.failures.length, seconds: Number(seconds.toFixed(1)) }))
  if (report.failures.length > 0) process.exitCode = 1
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main()
