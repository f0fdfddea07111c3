// parseFrame: the frame envelope, authentication and the §3 field rules (firmware-bridge/PROTOCOL.md),
// the hand-written DeviceFrame reader against protobufjs, and the hello and ack frames.
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import fc from 'fast-check'
import t, { type Test } from 'tap'
import {
  encodeAck, encodeDeviceFrame, encodeDeviceHello, encodeFrame, encodeStreamAck, encodeStreamFrame, parseAck, parseFrame, cobsEncode,
  writeCrc, type DeviceEvent, type FrameOptions, type FrameResult, type FrameType
} from '../../src/ingest/index.js'
import { decodeDeviceFrame, readDeviceFrame, type DeviceFrameData } from '../../src/proto/codec.js'

const opts: FrameOptions = { maxFrameSize: 16384 }
const KEY = new Uint8Array(24).fill(7)
const keyed: FrameOptions = { maxFrameSize: 16384, keyFor: (id) => id === 'sensor-1' ? KEY : undefined }
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const cat = (...parts: ArrayLike<number>[]): Uint8Array => new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p as Uint8Array))))

function ev (over: Partial<DeviceEvent> = {}): DeviceEvent {
  return { deviceId: 'sensor-1', seq: 1, priority: 1, stream: 'telemetry', value: { kind: 'number', number: 21.5 }, ...over }
}
function frame (body: Uint8Array, type: FrameType = 'event', key?: Uint8Array): Uint8Array {
  return encodeFrame(key === undefined ? { type, body } : { type, body, key })
}
/** Re-computes the CRC after a test changed bytes, so only the intended fault remains. */
function fixed (f: Uint8Array): Uint8Array {
  writeCrc(f, f.length - 4)
  return f
}
function reason (r: FrameResult): string {
  return r.ok ? 'ok' : r.reason
}
function rejection (t: Test, r: FrameResult, expected: string, detail?: RegExp): void {
  t.equal(reason(r), expected, r.ok ? 'accepted' : r.detail)
  if (!r.ok && detail !== undefined) t.match(r.detail, detail)
}

t.test('a valid event frame: all fields, bytes, authenticated false', async t => {
  const e = ev({ seq: 2 ** 40 + 7, deviceTimeMs: 0, uptimeMs: 5, priority: 3, stream: 'alarm', tags: { site: 'a', fw: '1.2' } })
  const f = frame(encodeDeviceFrame(e))
  const r = parseFrame(f, opts)
  assert(r.ok && r.kind === 'event')
  t.same(r.event, e)
  t.equal(r.authenticated, false)
  t.equal(r.bytes, f.length)
  const inside = cat([9, 9, 9], f, [9])
  const view = Buffer.from(inside.buffer, 3, f.length)
  t.same(parseFrame(view, opts), r, 'a view into a larger buffer reads the same')
})

t.test('the order of checks decides the reason (PROTOCOL.md §1, frame.ts)', async t => {
  const good = frame(encodeDeviceFrame(ev()))
  const crcBroken = good.slice()
  crcBroken[crcBroken.length - 1]! ^= 1
  rejection(t, parseFrame(good, { maxFrameSize: good.length - 1 }), 'oversize', /at most/)
  rejection(t, parseFrame(crcBroken, { maxFrameSize: 10 }), 'oversize', undefined)
  rejection(t, parseFrame(Uint8Array.of(1, 1, 0, 0, 0), opts), 'bad_field', /at least 6/)
  rejection(t, parseFrame(new Uint8Array(0), opts), 'bad_field')
  rejection(t, parseFrame(crcBroken, opts), 'bad_crc', /does not match/)
  const v2 = good.slice()
  v2[0] = 2
  rejection(t, parseFrame(v2, opts), 'bad_crc', undefined)
  rejection(t, parseFrame(fixed(v2), opts), 'bad_version', /version 2/)
  v2[1] = 9
  rejection(t, parseFrame(fixed(v2), opts), 'bad_version', undefined)
  const type9 = good.slice()
  type9[1] = 0x09
  rejection(t, parseFrame(fixed(type9), opts), 'bad_field', /unknown frame type 9/)
  rejection(t, parseFrame(encodeAck('sensor-1', 5), opts), 'bad_field', /gateway to device/)
  rejection(t, parseFrame(fixed(Uint8Array.of(1, 0x81, 1, 2, 3, 4, 5, 0, 0, 0, 0)), opts), 'bad_field', /too short for its authentication tag/)
  rejection(t, parseFrame(frame(Uint8Array.of(0x0a, 0x10, 0x61)), opts), 'bad_field', /not a DeviceFrame.*runs past the end/)
  rejection(t, parseFrame(frame(new Uint8Array(0)), opts), 'bad_field', /device id is empty/)
})

t.test('authentication (PROTOCOL.md §5)', async t => {
  const body = encodeDeviceFrame(ev())
  const tagged = frame(body, 'event', KEY)
  t.equal(tagged[1], 0x81, 'type byte has bit 7 set')
  t.equal(tagged.length, 2 + body.length + 16 + 4)
  const ok = parseFrame(tagged, keyed)
  t.ok(ok.ok && ok.authenticated, 'right tag: authenticated')
  rejection(t, parseFrame(frame(body), keyed), 'bad_auth', /no authentication tag/)
  const wrong = tagged.slice()
  wrong[wrong.length - 5]! ^= 0x80
  rejection(t, parseFrame(fixed(wrong), keyed), 'bad_auth', /does not match/)
  rejection(t, parseFrame(frame(body, 'event', new Uint8Array(24).fill(8)), keyed), 'bad_auth')
  const r = parseFrame(fixed(wrong), keyed)
  t.equal(r.ok ? '' : r.deviceId, 'sensor-1', 'a bad_auth rejection names the device')

  const other = encodeDeviceFrame(ev({ deviceId: 'sensor-2' }))
  const unkeyed = parseFrame(frame(other, 'event', KEY), keyed)
  t.ok(unkeyed.ok && !unkeyed.authenticated, 'a tag from a device without a key: accepted, not authenticated')
  const noKeys = parseFrame(tagged, opts)
  t.ok(noKeys.ok && !noKeys.authenticated, 'no keyFor at all: the tag is not checked')
  const broken = parseFrame(fixed(wrong), { ...keyed, keyFor: () => undefined })
  t.ok(broken.ok, 'not even a wrong tag is looked at without a key')

  // Authentication comes before the §3 rules: nothing of an unauthenticated frame is trusted.
  const badRules = encodeDeviceFrame(ev({ stream: 's'.repeat(65) }))
  rejection(t, parseFrame(frame(badRules), keyed), 'bad_auth')
  rejection(t, parseFrame(frame(badRules, 'event', KEY), keyed), 'bad_field', /stream is longer than 64/)

  const hello = encodeDeviceHello({ deviceId: 'sensor-1', firmwareVersion: '1', capabilities: 1 })
  rejection(t, parseFrame(frame(hello, 'hello'), keyed), 'bad_auth')
  const helloOk = parseFrame(frame(hello, 'hello', KEY), keyed)
  t.ok(helloOk.ok && helloOk.authenticated, 'a hello is authenticated the same way')

  t.throws(() => encodeFrame({ type: 'event', body, key: new Uint8Array(15) }), RangeError, 'a key shorter than 16 bytes')
  t.throws(() => encodeFrame({ type: 'event', body, key: new Uint8Array(65) }), RangeError, 'a key longer than 64 bytes')
  t.throws(() => encodeFrame({ type: 'nope' as FrameType, body }), RangeError)
})

/** A body with fields appended by hand: encodeDeviceFrame refuses out-of-range values. */
const withFields = (e: DeviceEvent, ...fields: number[][]): Uint8Array => cat(encodeDeviceFrame(e), ...fields)

t.test('the field rules of PROTOCOL.md §3, at their boundaries', async t => {
  const accept = (e: DeviceEvent | Uint8Array, name: string): void => {
    const r = parseFrame(frame(e instanceof Uint8Array ? e : encodeDeviceFrame(e)), opts)
    t.ok(r.ok, `${name}${r.ok ? '' : `: ${r.detail}`}`)
  }
  const refuse = (e: DeviceEvent | Uint8Array, detail: RegExp): void => {
    const r = parseFrame(frame(e instanceof Uint8Array ? e : encodeDeviceFrame(e)), opts)
    rejection(t, r, 'bad_field', detail)
  }
  accept(ev({ deviceId: '!'.repeat(64) }), 'device id of 64 bytes')
  refuse(ev({ deviceId: 'x'.repeat(65) }), /device id is longer than 64 bytes/)
  accept(ev({ deviceId: '~a-Z_0.:' }), 'printable ASCII')
  for (const c of [' ', '\u007f', 'é', '\t']) refuse(ev({ deviceId: `a${c}b` }), /device id has character U\+[0-9A-F]{4} at index 1/)
  for (const c of ['/', '+', '#']) refuse(ev({ deviceId: `a${c}b` }), /MQTT topic segment/)
  accept(ev({ seq: Number.MAX_SAFE_INTEGER, deviceTimeMs: Number.MAX_SAFE_INTEGER, uptimeMs: 0 }), 'seq and times at 2^53-1')
  const pow53 = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]
  refuse(withFields(ev(), [0x10, ...pow53]), /seq 9007199254740992 exceeds 2\^53-1/)
  refuse(withFields(ev(), [0x18, ...pow53]), /device time .* exceeds/)
  refuse(withFields(ev(), [0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), /uptime .* exceeds/)
  refuse(withFields(ev(), [0x28, 0x04]), /priority must be 0-3, got 4/)
  accept(ev({ stream: '' }), 'empty stream')
  accept(ev({ stream: 'a/b+c#'.padEnd(64, 'x') }), 'stream of 64 bytes, with / + # (a stream is not a topic segment)')
  refuse(ev({ stream: 's'.repeat(65) }), /stream is longer than 64/)
  refuse(ev({ stream: 'a b' }), /stream has character U\+0020/)
  accept(ev({ value: { kind: 'text', text: '✓'.repeat(341) + 'a' } }), 'text of 1024 bytes')
  refuse(ev({ value: { kind: 'text', text: '✓'.repeat(341) + 'ab' } }), /text value is 1025 bytes, at most 1024/)
  accept(ev({ value: { kind: 'raw', raw: new Uint8Array(8192) } }), 'raw of 8192 bytes')
  refuse(ev({ value: { kind: 'raw', raw: new Uint8Array(8193) } }), /raw value is 8193 bytes/)
  const numbers = (n: number): Record<string, number> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`n${i}`, i]))
  accept(ev({ value: { kind: 'numbers', numbers: numbers(32) } }), '32 named numbers')
  refuse(ev({ value: { kind: 'numbers', numbers: numbers(33) } }), /33 named numbers, at most 32/)
  const tags = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, '']))
  accept(ev({ tags: tags(8) }), '8 tags')
  refuse(ev({ tags: tags(9) }), /9 tags, at most 8/)
  accept(ev({ tags: { ['ü'.repeat(16)]: 'v'.repeat(64) } }), 'tag key of 32 bytes, value of 64')
  refuse(ev({ tags: { ['ü'.repeat(16) + 'a']: 'v' } }), /tag key is 33 bytes, at most 32/)
  refuse(ev({ tags: { k: 'ü'.repeat(32) + 'v' } }), /tag 'k' value is 65 bytes, at most 64/)
  refuse(ev({ tags: { '': 'v' } }), /tag key is empty/)
  refuse(withFields(ev({ value: undefined }), [0x4a, 0x02, 0xc3, 0x28]), /text at byte \d+ is not valid UTF-8/)
  refuse(withFields(ev(), [0x5a, 0x05, 0x0a, 0x03, 0xed, 0xa0, 0x80]), /tag key .* not valid UTF-8/)
  refuse(cat([0x0a, 0x02, 0xc0, 0x80], encodeDeviceFrame(ev()).subarray(10)), /device_id .* not valid UTF-8|not a DeviceFrame/)
})

t.test('a rejection names the device only when its id is valid', async t => {
  const r1 = parseFrame(frame(encodeDeviceFrame(ev({ stream: ' ' }))), opts)
  t.equal(r1.ok ? undefined : r1.deviceId, 'sensor-1')
  const r2 = parseFrame(frame(encodeDeviceFrame(ev({ deviceId: 'a/b' }))), opts)
  t.notOk(r2.ok || 'deviceId' in r2, 'an invalid id is no metric label')
})

t.test('decoded values do not refer to the input buffer; __proto__ stays data', async t => {
  const f = frame(encodeDeviceFrame(ev({ value: { kind: 'raw', raw: Uint8Array.of(1, 2, 3) } })))
  const r = parseFrame(Buffer.from(f), opts)
  assert(r.ok && r.kind === 'event' && r.event.value?.kind === 'raw')
  f.fill(0)
  t.same([...r.event.value.raw], [1, 2, 3])
  t.equal(Object.getPrototypeOf(r.event.value.raw), Uint8Array.prototype, 'a plain Uint8Array, not a Buffer view')
  const tags = JSON.parse('{"__proto__":"x","a":"b"}') as Record<string, string>
  const p = parseFrame(frame(encodeDeviceFrame(ev({ tags }))), opts)
  assert(p.ok && p.kind === 'event')
  t.equal(Object.getPrototypeOf(p.event.tags), Object.prototype)
  t.same(Object.keys(p.event.tags ?? {}), ['__proto__', 'a'])
})

// Strings without lone surrogates (they cannot be encoded as UTF-8; protobufjs would write U+FFFD).
const text = fc.string({ unit: 'binary', maxLength: 20 })
const u64 = fc.oneof(fc.constantFrom(0, 1, 127, 128, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER), fc.maxSafeNat())
const value = fc.oneof(
  fc.double().map((number) => ({ kind: 'number' as const, number })),
  fc.dictionary(text, fc.double(), { maxKeys: 4 }).map((numbers) => ({ kind: 'numbers' as const, numbers })),
  text.map((t) => ({ kind: 'text' as const, text: t })),
  fc.uint8Array({ maxLength: 40 }).map((raw) => ({ kind: 'raw' as const, raw }))
)
const arbFrame: fc.Arbitrary<DeviceFrameData> = fc.record({
  deviceId: text,
  seq: u64,
  deviceTimeMs: u64,
  uptimeMs: u64,
  priority: fc.constantFrom(0, 1, 2, 3),
  stream: text,
  value,
  tags: fc.dictionary(text, text, { minKeys: 1, maxKeys: 4 })
}, { requiredKeys: ['deviceId', 'seq', 'priority', 'stream'] })

/** fast-check's dictionaries have no prototype; decoded maps are plain objects (spread keeps a __proto__ key as data). */
function plain (f: DeviceFrameData): DeviceFrameData {
  const out = { ...f }
  if (f.tags !== undefined) out.tags = { ...f.tags }
  if (f.value?.kind === 'numbers') out.value = { kind: 'numbers', numbers: { ...f.value.numbers } }
  return out
}

t.test('property: readDeviceFrame agrees with protobufjs on any DeviceFrame, in any field order', async t => {
  fc.assert(fc.property(arbFrame, fc.boolean(), (f, split) => {
    let body = encodeDeviceFrame(f)
    if (split) {
      // The same fields in another order: protobuf merges concatenated messages.
      const { deviceId, seq, priority, ...rest } = f
      body = cat(encodeDeviceFrame({ ...rest, deviceId: '', seq: 0, priority: 0 }), encodeDeviceFrame({ deviceId, seq, priority, stream: '' }))
      if (rest.stream !== '') body = cat(body, encodeDeviceFrame({ deviceId: '', seq: 0, priority: 0, stream: rest.stream }))
    }
    const unknown = cat(body, [0x78, 0x96, 0x01, 0xa2, 0x01, 0x02, 0xff, 0x00, 0x65, 1, 2, 3, 4])
    const reference = decodeDeviceFrame(unknown)
    assert.deepEqual(readDeviceFrame(unknown, 0, unknown.length), reference)
    assert.deepEqual(reference, plain(f))
  }), { numRuns: 600 })
  t.pass('600 generated frames')
})

t.test('hello frames (PROTOCOL.md §6)', async t => {
  const hello = { deviceId: 'sensor-1', firmwareVersion: '1.4.2+build.7', capabilities: 0xffffffff }
  const r = parseFrame(frame(encodeDeviceHello(hello), 'hello'), opts)
  t.same(r, { ok: true, kind: 'hello', hello, authenticated: false, bytes: 2 + encodeDeviceHello(hello).length + 4 })
  rejection(t, parseFrame(frame(encodeDeviceHello({ ...hello, deviceId: 'a#b' }), 'hello'), opts), 'bad_field', /MQTT topic/)
  rejection(t, parseFrame(frame(encodeDeviceHello({ ...hello, firmwareVersion: 'v'.repeat(65) }), 'hello'), opts), 'bad_field', /firmware version is 65 bytes/)
  rejection(t, parseFrame(frame(Uint8Array.of(0x12, 0x09), 'hello'), opts), 'bad_field', /not a DeviceHello/)
  rejection(t, parseFrame(frame(new Uint8Array(0), 'hello'), opts), 'bad_field', /device id is empty/)
})

t.test('ack frames (PROTOCOL.md §4): layout, round trip, stream form, rejections', async t => {
  const a = encodeAck('ab', 2 ** 40 + 7)
  t.equal(hex(a.subarray(0, a.length - 4)), '0103' + '02' + '6162' + '0700000000010000', 'version, type, id length, id, seq LE')
  for (const seq of [0, 1, 0xffffffff, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER]) {
    const id = 'x'.repeat(seq % 64 + 1)
    t.same(parseAck(encodeAck(id, seq)), { ok: true, deviceId: id, seq, bytes: 2 + 1 + id.length + 8 + 4 }, `seq ${seq}`)
  }
  t.equal(hex(encodeStreamAck('ab', 1)), hex(cat(cobsEncode(encodeAck('ab', 1)), [0])))
  t.throws(() => encodeAck('a/b', 1), RangeError)
  t.throws(() => encodeAck('', 1), RangeError)
  t.throws(() => encodeAck('a', -1), RangeError)
  t.throws(() => encodeAck('a', 2 ** 53), RangeError)
  const good = encodeAck('ab', 5)
  const crc = good.slice()
  crc[3]! ^= 1
  t.equal(reason(parseAck(crc) as FrameResult), 'bad_crc')
  const version = good.slice()
  version[0] = 7
  t.equal(reason(parseAck(fixed(version)) as FrameResult), 'bad_version')
  const tagged = good.slice()
  tagged[1] = 0x83
  t.equal(reason(parseAck(fixed(tagged)) as FrameResult), 'bad_field')
  const length = good.slice()
  length[2] = 3
  t.equal(reason(parseAck(fixed(length)) as FrameResult), 'bad_field')
  const big = good.slice()
  big[3 + 2 + 7] = 0x00
  big[3 + 2 + 6] = 0x20
  t.equal(reason(parseAck(fixed(big)) as FrameResult), 'bad_field', 'seq 2^53 and above')
  const badId = good.slice()
  badId[3] = 0x2f
  t.equal(reason(parseAck(fixed(badId)) as FrameResult), 'bad_field', "'/' in the id")
  t.equal(reason(parseAck(Uint8Array.of(1, 3, 0)) as FrameResult), 'bad_field', 'short')
})

t.test('encodeStreamFrame is COBS of encodeFrame plus one 0x00', async t => {
  const spec = { type: 'event' as const, body: encodeDeviceFrame(ev({ value: { kind: 'raw', raw: new Uint8Array(600) } })), key: KEY }
  const stream = encodeStreamFrame(spec)
  t.equal(stream[stream.length - 1], 0)
  t.equal(stream.indexOf(0), stream.length - 1)
  t.equal(hex(stream), hex(cat(cobsEncode(encodeFrame(spec)), [0])))
})
