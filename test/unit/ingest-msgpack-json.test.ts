// The two script-friendly encodings of an event: event-msgpack frames (PROTOCOL.md §3.2) and JSON
// lines (§3.3). Both are strict: unknown keys and wrong types are bad_field.
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import fc from 'fast-check'
import { pack } from 'msgpackr'
import t, { type Test } from 'tap'
import {
  decodeMsgpackBody, encodeFrame, encodeJsonAck, encodeJsonEvent, encodeMsgpackEvent, parseFrame, parseJsonLine,
  type DeviceEvent, type FrameOptions, type FrameResult
} from '../../src/ingest/index.js'

const opts: FrameOptions = { maxFrameSize: 16384 }
const cat = (...parts: ArrayLike<number>[]): Uint8Array => new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p as Uint8Array))))
const str = (s: string): number[] => {
  const b = [...Buffer.from(s)]
  return [0xa0 | b.length, ...b]
}

function ev (over: Partial<DeviceEvent> = {}): DeviceEvent {
  return { deviceId: 'sensor-1', seq: 7, priority: 1, stream: '', ...over }
}
const viaMsgpack = (body: Uint8Array, o: FrameOptions = opts): FrameResult => parseFrame(encodeFrame({ type: 'event-msgpack', body }), o)

function rejected (t: Test, r: FrameResult, reason: string, detail: RegExp): void {
  t.equal(r.ok ? 'ok' : r.reason, reason, r.ok ? 'accepted' : r.detail)
  if (!r.ok) t.match(r.detail, detail)
}

t.test('msgpack: an event with every field, and the defaults', async t => {
  const full = ev({ seq: 2 ** 40 + 7, deviceTimeMs: 1_700_000_000_000, uptimeMs: 0, priority: 0, stream: 'telemetry', value: { kind: 'numbers', numbers: { t: 21.5, rh: 40 } }, tags: { site: 'a' } })
  const r = viaMsgpack(encodeMsgpackEvent(full))
  assert(r.ok && r.kind === 'event')
  t.same(r.event, full)
  // Hand-written: {"id": "d", "seq": 3}, the least a MicroPython script sends.
  const minimal = viaMsgpack(Uint8Array.of(0x82, ...str('id'), ...str('d'), ...str('seq'), 0x03))
  t.same(minimal.ok && minimal.kind === 'event' ? minimal.event : undefined, { deviceId: 'd', seq: 3, priority: 1, stream: '' }, 'priority defaults to 1 (normal), unlike protobuf')
  for (const [v, value] of [[21.5, { kind: 'number', number: 21.5 }], ['hi', { kind: 'text', text: 'hi' }], [Buffer.from([0, 1]), { kind: 'raw', raw: Uint8Array.of(0, 1) }]] as const) {
    const got = viaMsgpack(new Uint8Array(pack({ id: 'd', seq: 1, v })))
    t.same(got.ok && got.kind === 'event' ? got.event.value : undefined, value, `v as ${typeof v}`)
  }
  const raw = viaMsgpack(encodeMsgpackEvent(ev({ value: { kind: 'raw', raw: Uint8Array.of(5) } })))
  t.equal(raw.ok && raw.kind === 'event' && raw.event.value?.kind === 'raw' ? Object.getPrototypeOf(raw.event.value.raw) : undefined, Uint8Array.prototype, 'raw is a plain copy')
})

t.test('msgpack: big integers are written as 64-bit ints and read back exactly; above 2^53-1 is bad_field', async t => {
  const body = encodeMsgpackEvent(ev({ seq: Number.MAX_SAFE_INTEGER }))
  t.ok(body.includes(0xcf) || body.includes(0xd3), 'a 64-bit integer, not a float64')
  const r = viaMsgpack(body)
  t.equal(r.ok && r.kind === 'event' ? r.event.seq : undefined, Number.MAX_SAFE_INTEGER)
  const big = Uint8Array.of(0x82, ...str('id'), ...str('d'), ...str('seq'), 0xcf, 0, 0x20, 0, 0, 0, 0, 0, 0)
  rejected(t, viaMsgpack(big), 'bad_field', /seq 9007199254740992 exceeds 2\^53-1/)
  rejected(t, viaMsgpack(new Uint8Array(pack({ id: 'd', seq: -1 }))), 'bad_field', /seq must be a non-negative integer/)
  rejected(t, viaMsgpack(new Uint8Array(pack({ id: 'd', seq: 1.5 }))), 'bad_field', /seq must be a non-negative integer/)
  rejected(t, viaMsgpack(new Uint8Array(pack({ id: 'd', seq: 1, p: 4 }))), 'bad_field', /priority must be 0-3/)
})

t.test('msgpack: strict keys and types', async t => {
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['unknown key', new Uint8Array(pack({ id: 'd', seq: 1, x: 1 })), /unknown key 'x'/],
    ['nil value', new Uint8Array(pack({ id: 'd', seq: 1, t: null })), /'t' must be an integer, got nil/],
    ['id not a string', new Uint8Array(pack({ id: 5, seq: 1 })), /'id' must be a string/],
    ['missing seq', new Uint8Array(pack({ id: 'd' })), /'seq' must be an integer/],
    ['tags not a map', new Uint8Array(pack({ id: 'd', seq: 1, tags: 'x' })), /'tags' must be a map/],
    ['tag value not a string', new Uint8Array(pack({ id: 'd', seq: 1, tags: { a: 1 } })), /tag 'a' must be a string/],
    ['v map of non-numbers', new Uint8Array(pack({ id: 'd', seq: 1, v: { a: 'x' } })), /'v' map entry 'a' is not a number/],
    ['v boolean', new Uint8Array(pack({ id: 'd', seq: 1, v: true })), /'v' must be a number/],
    ['an array', cat([0x82], str('id'), str('d'), str('seq'), [0x91, 0x01]), /array at byte \d+/],
    ['a timestamp extension', cat([0x82], str('id'), str('d'), str('seq'), [0xd6, 0xff, 0, 0, 0, 1]), /extension type/],
    ['a record extension', cat([0x82], str('id'), str('d'), str('seq'), [0xd4, 0x72, 0x40]), /extension type/],
    ['byte 0xc1', cat([0x82], str('id'), str('d'), str('seq'), [0xc1]), /0xc1/],
    ['integer key', cat([0x83], str('id'), str('d'), str('seq'), [1], [0x01, 0x02]), /map key at byte \d+ is not a string/],
    ['map nested too deep', cat([0x83], str('id'), str('d'), str('seq'), [1], str('tags'), [0x81], str('a'), [0x80]), /nested too deep/],
    ['trailing bytes', cat([0x82], str('id'), str('d'), str('seq'), [1, 0x01]), /1 bytes after the map/],
    ['truncated', cat([0x82], str('id'), str('d'), str('seq')), /truncated/],
    ['not a map', new Uint8Array(pack('hello')), /not a msgpack map/],
    ['empty body', new Uint8Array(0), /not a msgpack map/],
    ['invalid UTF-8 string', cat([0x82], str('id'), [0xa2, 0xc3, 0x28], str('seq'), [1]), /not valid UTF-8/],
    ['a huge length claim', cat([0x82], str('id'), [0xdb, 0xff, 0xff, 0xff, 0xff]), /truncated/]
  ]
  for (const [name, body, detail] of cases) {
    rejected(t, viaMsgpack(body), 'bad_field', detail)
    const direct = decodeMsgpackBody(body, 0, body.length)
    t.equal(direct.ok, false, `${name}: decodeMsgpackBody refuses it too`)
  }
  const named = decodeMsgpackBody(new Uint8Array(pack({ id: 'sensor-1', seq: 1, x: 1 })), 0, 18)
  t.equal(named.ok ? undefined : named.deviceId, undefined, 'a body cut short names no device')
  const r = viaMsgpack(new Uint8Array(pack({ id: 'sensor-1', seq: 1, x: 1 })))
  t.equal(r.ok ? undefined : r.deviceId, 'sensor-1', 'the device is named when its id was read')
})

t.test('msgpack: a repeated key keeps its last value (PROTOCOL.md §3)', async t => {
  const r = viaMsgpack(cat([0x84], str('id'), str('d'), str('seq'), [1], str('seq'), [2], str('tags'), [0x82], str('a'), str('x'), str('a'), str('y')))
  t.same(r.ok && r.kind === 'event' ? r.event : undefined, { deviceId: 'd', seq: 2, priority: 1, stream: '', tags: { a: 'y' } })
  const many = viaMsgpack(new Uint8Array(pack({ id: 'd', seq: 1, v: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`n${i}`, i])) })))
  rejected(t, many, 'bad_field', /33 named numbers, at most 32/)
})

t.test('msgpack: keys named __proto__ stay data (msgpackr objects would rename them)', async t => {
  const body = cat([0x83], str('id'), str('d'), str('seq'), [1], str('tags'), [0x82], str('__proto__'), str('x'), str('__proto_'), str('y'))
  const r = viaMsgpack(body)
  assert(r.ok && r.kind === 'event')
  t.same(Object.entries(r.event.tags ?? {}), [['__proto__', 'x'], ['__proto_', 'y']])
  t.equal(Object.getPrototypeOf(r.event.tags), Object.prototype)
})

t.test('msgpack: authentication applies as for protobuf events', async t => {
  const key = new Uint8Array(16).fill(1)
  const keyed: FrameOptions = { maxFrameSize: 16384, keyFor: (id) => id === 'sensor-1' ? key : undefined }
  const body = encodeMsgpackEvent(ev())
  rejected(t, viaMsgpack(body, keyed), 'bad_auth', /no authentication tag/)
  const r = parseFrame(encodeFrame({ type: 'event-msgpack', body, key }), keyed)
  t.ok(r.ok && r.authenticated)
})

const safeText = fc.string({ unit: 'binary', maxLength: 12 })
const validEvent: fc.Arbitrary<DeviceEvent> = fc.record({
  deviceId: fc.stringMatching(/^[!"$-*,-.0-~]{1,64}$/),
  seq: fc.maxSafeNat(),
  deviceTimeMs: fc.maxSafeNat(),
  uptimeMs: fc.maxSafeNat(),
  priority: fc.constantFrom(0, 1, 2, 3),
  stream: fc.stringMatching(/^[!-~]{0,64}$/),
  value: fc.oneof(
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((number) => ({ kind: 'number' as const, number: Object.is(number, -0) ? 0 : number })),
    fc.dictionary(safeText, fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => Object.is(x, -0) ? 0 : x), { maxKeys: 32 }).map((numbers) => ({ kind: 'numbers' as const, numbers: { ...numbers } })),
    safeText.map((text) => ({ kind: 'text' as const, text })),
    fc.uint8Array({ maxLength: 50 }).map((raw) => ({ kind: 'raw' as const, raw }))
  ),
  tags: fc.dictionary(fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }), safeText, { minKeys: 1, maxKeys: 8 }).map((tags) => ({ ...tags }))
}, { requiredKeys: ['deviceId', 'seq', 'priority', 'stream'] }).map((e) => ({ ...e }))

t.test('property: any valid event survives msgpack and JSON lines', async t => {
  fc.assert(fc.property(validEvent, (e) => {
    const m = viaMsgpack(encodeMsgpackEvent(e))
    assert(m.ok && m.kind === 'event', m.ok ? '' : m.detail)
    assert.deepEqual(m.event, e)
    const j = parseJsonLine(encodeJsonEvent(e))
    assert(j.ok && j.kind === 'event', j.ok ? '' : j.detail)
    assert.deepEqual(j.event, e)
  }), { numRuns: 400 })
  t.pass('400 generated events')
})

t.test('JSON lines: values, defaults, bytes', async t => {
  const line = '{"id":"sensor-1","seq":5,"t":1700000000000,"up":0,"p":2,"s":"telemetry","v":{"t":21.5,"rh":40},"tags":{"site":"a"}}'
  t.same(parseJsonLine(line), {
    ok: true,
    kind: 'event',
    event: { deviceId: 'sensor-1', seq: 5, deviceTimeMs: 1_700_000_000_000, uptimeMs: 0, priority: 2, stream: 'telemetry', value: { kind: 'numbers', numbers: { t: 21.5, rh: 40 } }, tags: { site: 'a' } },
    authenticated: false,
    bytes: line.length
  })
  const min = parseJsonLine('{"id":"d","seq":0}')
  t.same(min.ok && min.kind === 'event' ? min.event : undefined, { deviceId: 'd', seq: 0, priority: 1, stream: '' }, 'priority defaults to 1')
  const raw = parseJsonLine('{"id":"d","seq":1,"v":{"base64":"AAH/"}}')
  t.same(raw.ok && raw.kind === 'event' ? raw.event.value : undefined, { kind: 'raw', raw: Uint8Array.of(0, 1, 255) })
  const text = parseJsonLine('{"id":"d","seq":1,"v":"°C"}')
  t.same(text.ok && text.kind === 'event' ? text.event.value : undefined, { kind: 'text', text: '°C' })
  t.equal(text.bytes, 28, 'bytes counts UTF-8 bytes')
  const named = parseJsonLine('{"id":"d","seq":1,"v":{"base64":5}}')
  t.same(named.ok && named.kind === 'event' ? named.event.value : undefined, { kind: 'numbers', numbers: { base64: 5 } }, 'a number named base64 is a number map')
  const proto = parseJsonLine('{"id":"d","seq":1,"tags":{"__proto__":"x"}}')
  t.same(proto.ok && proto.kind === 'event' ? Object.keys(proto.event.tags ?? {}) : undefined, ['__proto__'])
})

t.test('JSON lines: rejections', async t => {
  const cases: Array<[string, string, RegExp]> = [
    ['not JSON', '{"id":', /not JSON/],
    ['an array', '[1]', /must be a JSON object, got an array/],
    ['null', 'null', /got null/],
    ['unknown key', '{"id":"d","seq":1,"x":1}', /unknown key "x"/],
    ['__proto__ key', '{"id":"d","seq":1,"__proto__":{}}', /unknown key "__proto__"/],
    ['seq as string', '{"id":"d","seq":"1"}', /"seq" must be a number/],
    ['seq too big', '{"id":"d","seq":9007199254740993}', /exceeds 2\^53-1/],
    ['seq fraction', '{"id":"d","seq":1.5}', /non-negative integer/],
    ['seq infinite', '{"id":"d","seq":1e400}', /non-negative integer/],
    ['time negative', '{"id":"d","seq":1,"t":-1}', /device time must be a non-negative integer/],
    ['null time', '{"id":"d","seq":1,"up":null}', /"up" must be a number, got null/],
    ['priority', '{"id":"d","seq":1,"p":7}', /priority must be 0-3/],
    ['stream type', '{"id":"d","seq":1,"s":1}', /"s" must be a string/],
    ['bad base64', '{"id":"d","seq":1,"v":{"base64":"AAH"}}', /canonical padded base64/],
    ['v array', '{"id":"d","seq":1,"v":[1]}', /got an array/],
    ['v boolean', '{"id":"d","seq":1,"v":true}', /got boolean/],
    ['v map of strings', '{"id":"d","seq":1,"v":{"a":"b"}}', /"v.a" must be a number/],
    ['tags array', '{"id":"d","seq":1,"tags":["a"]}', /"tags" must be an object/],
    ['tag value number', '{"id":"d","seq":1,"tags":{"a":1}}', /tag "a" must be a string/],
    ['lone surrogate', '{"id":"d","seq":1,"v":"\\ud800"}', /lone surrogate/],
    ['device id with /', '{"id":"a/b","seq":1}', /MQTT topic/]
  ]
  for (const [name, line, detail] of cases) {
    const r = parseJsonLine(line)
    t.equal(r.ok ? 'ok' : r.reason, 'bad_field', `${name}${r.ok ? '' : `: ${r.detail}`}`)
    if (!r.ok) t.match(r.detail, detail, name)
  }
  rejected(t, parseJsonLine('{"id":"d","seq":1,"s":"' + 'x'.repeat(100) + '"}', { maxFrameSize: 50 }), 'oversize', /at most 50/)
  const key = new Uint8Array(16)
  rejected(t, parseJsonLine('{"id":"sensor-1","seq":1}', { keyFor: (id) => id === 'sensor-1' ? key : undefined }), 'bad_auth', /JSON lines carry no authentication tag/)
  const bad = parseJsonLine('{"id":"sensor-1","seq":-1}')
  t.equal(bad.ok ? undefined : bad.deviceId, 'sensor-1')
})

t.test('JSON ack lines (PROTOCOL.md §4)', async t => {
  t.equal(encodeJsonAck('sensor-1', 2 ** 40 + 7), '{"ack":"sensor-1","seq":1099511627783}\n')
  t.same(JSON.parse(encodeJsonAck('a"b', 0)), { ack: 'a"b', seq: 0 })
  t.throws(() => encodeJsonAck('a b', 1), RangeError)
  t.throws(() => encodeJsonAck('a', 1.5), RangeError)
})
