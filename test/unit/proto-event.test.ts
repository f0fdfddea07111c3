import assert from 'node:assert'
import t from 'tap'
import fc from 'fast-check'
import { concatBatch, decodeBatch, decodeEvent, encodeEvent, readEventTiming, readExpiresAtMs, readGatewayTimeMs, type EventTiming, type StoredEvent } from '../../src/proto/codec.js'
import { wireTypes } from '../../src/proto/schema.js'
import type { EventRecord, EventValue, Priority } from '../../src/types.js'

const TWO_POW_40_PLUS_7 = 2 ** 40 + 7

function sample (over: Partial<EventRecord> = {}): EventRecord {
  return {
    deviceId: 'sensor-0042',
    deviceSeq: 17,
    gatewayTimeMs: 1_700_000_000_456,
    priority: 1,
    stream: 'telemetry',
    value: { kind: 'numbers', numbers: { temp: 21.5, rh: 40 } },
    tags: { site: 'plant-7', fw: '1.4.2' },
    ...over
  }
}

/** What decodeEvent should give back for `e` (see the presence rules in event-decode.ts). */
function expected (e: EventRecord, storeSeq: number): StoredEvent {
  const out: StoredEvent = {
    deviceId: e.deviceId, deviceSeq: e.deviceSeq, gatewayTimeMs: e.gatewayTimeMs, priority: e.priority, stream: e.stream, storeSeq
  }
  if (e.deviceTimeMs !== undefined) out.deviceTimeMs = e.deviceTimeMs
  if (e.deviceUptimeMs !== undefined) out.deviceUptimeMs = e.deviceUptimeMs
  if (e.value !== undefined) out.value = e.value
  if (e.tags !== undefined && Object.keys(e.tags).length > 0) out.tags = { ...e.tags }
  if (e.clockSkewed === true) out.clockSkewed = true
  if (e.expiresAtMs !== undefined) out.expiresAtMs = e.expiresAtMs
  return out
}

/** The same event as a protobufjs reflection object, default values omitted (canonical). */
function reflectionObject (e: EventRecord, storeSeq: number): Record<string, unknown> {
  const o: Record<string, unknown> = {}
  if (e.deviceId !== '') o.deviceId = e.deviceId
  if (e.deviceSeq !== 0) o.deviceSeq = e.deviceSeq
  if (e.deviceTimeMs !== undefined) o.deviceTimeMs = e.deviceTimeMs
  if (e.deviceUptimeMs !== undefined) o.deviceUptimeMs = e.deviceUptimeMs
  if (e.gatewayTimeMs !== 0) o.gatewayTimeMs = e.gatewayTimeMs
  if (e.priority !== 0) o.priority = e.priority
  if (e.stream !== '') o.stream = e.stream
  const v = e.value
  if (v?.kind === 'number') o.number = v.number
  if (v?.kind === 'numbers') o.numbers = { values: v.numbers }
  if (v?.kind === 'text') o.text = v.text
  if (v?.kind === 'raw') o.raw = v.raw
  if (e.tags !== undefined && Object.keys(e.tags).length > 0) o.tags = e.tags
  if (storeSeq !== 0) o.storeSeq = storeSeq
  if (e.clockSkewed === true) o.clockSkewed = true
  if (e.expiresAtMs !== undefined) o.expiresAtMs = e.expiresAtMs
  return o
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

t.test('round trip of every value kind', async t => {
  const values: Array<EventValue | undefined> = [
    undefined,
    { kind: 'number', number: 21.5 },
    { kind: 'number', number: 0 },
    { kind: 'number', number: -1e-300 },
    { kind: 'numbers', numbers: {} },
    { kind: 'numbers', numbers: { a: 1, b: -2.25, 'x.y/z': Number.MAX_VALUE } },
    { kind: 'text', text: '' },
    { kind: 'text', text: 'door open' },
    { kind: 'raw', raw: new Uint8Array(0) },
    { kind: 'raw', raw: Uint8Array.from({ length: 120 }, (_, i) => i) }
  ]
  for (const value of values) {
    const e = sample(value === undefined ? { value: undefined } : { value })
    if (value === undefined) delete e.value
    const decoded = decodeEvent(encodeEvent(e, 99))
    t.same(decoded, expected(e, 99), value?.kind ?? 'no value')
    t.equal(decoded.value?.kind, value?.kind)
  }
})

t.test('a raw value decodes as a plain Uint8Array copy', async t => {
  const bytes = encodeEvent(sample({ value: { kind: 'raw', raw: Uint8Array.of(1, 2, 3) } }), 1)
  const decoded = decodeEvent(bytes)
  if (decoded.value?.kind !== 'raw') throw new Error('expected raw')
  t.equal(Object.getPrototypeOf(decoded.value.raw), Uint8Array.prototype)
  t.not(decoded.value.raw.buffer, bytes.buffer)
})

t.test('optional times keep their presence: absent stays absent, 0 stays 0', async t => {
  const absent = decodeEvent(encodeEvent(sample(), 1))
  t.notOk('deviceTimeMs' in absent)
  t.notOk('deviceUptimeMs' in absent)
  const zero = decodeEvent(encodeEvent(sample({ deviceTimeMs: 0, deviceUptimeMs: 0 }), 1))
  t.equal(zero.deviceTimeMs, 0)
  t.equal(zero.deviceUptimeMs, 0)
  const set = decodeEvent(encodeEvent(sample({ deviceTimeMs: 1_700_000_000_000, deviceUptimeMs: 5 }), 1))
  t.equal(set.deviceTimeMs, 1_700_000_000_000)
  t.equal(set.deviceUptimeMs, 5)
})

t.test('uint64 fields above 2^32 round trip exactly', async t => {
  for (const big of [2 ** 32, TWO_POW_40_PLUS_7, Number.MAX_SAFE_INTEGER]) {
    const e = sample({ deviceSeq: big, deviceTimeMs: big, deviceUptimeMs: big, gatewayTimeMs: big })
    const decoded = decodeEvent(encodeEvent(e, big))
    t.same(decoded, expected(e, big), `value ${big}`)
    t.equal(readGatewayTimeMs(encodeEvent(e, big)), big)
  }
  const viaProtobufjs = wireTypes.Event.encode({ deviceSeq: TWO_POW_40_PLUS_7, storeSeq: TWO_POW_40_PLUS_7 })
  const decoded = decodeEvent(viaProtobufjs)
  t.equal(decoded.deviceSeq, TWO_POW_40_PLUS_7)
  t.equal(decoded.storeSeq, TWO_POW_40_PLUS_7)
})

t.test('readEventTiming: the priority and the device time when trusted, else the gateway time; fills the object it is given', async t => {
  const into: EventTiming = { priority: 0, timeMs: 0 }
  const trusted = readEventTiming(encodeEvent(sample({ priority: 3, deviceTimeMs: 1_700_000_000_123, gatewayTimeMs: 1_700_000_005_000 }), 1), into)
  t.equal(trusted, into, 'the same object back')
  t.same(into, { priority: 3, timeMs: 1_700_000_000_123 })
  readEventTiming(encodeEvent(sample({ priority: 1, deviceTimeMs: 5, clockSkewed: true, gatewayTimeMs: 1_700_000_005_000 }), 1), into)
  t.same(into, { priority: 1, timeMs: 1_700_000_005_000 }, 'a skewed device clock is not trusted')
  readEventTiming(encodeEvent(sample({ priority: 0, gatewayTimeMs: TWO_POW_40_PLUS_7 }), 1), into)
  t.same(into, { priority: 0, timeMs: TWO_POW_40_PLUS_7 }, 'no device time: the gateway time')
  t.throws(() => readEventTiming(Uint8Array.from([0x28, 0xff]), into), { code: 'EDGEFWD_ERR_PROTO_DECODE' })
  t.same(readEventTiming(encodeEvent(sample({ priority: 2, deviceTimeMs: 7 }), 1)), { priority: 2, timeMs: 7 }, 'a failed read leaves nothing behind for the next')
})

t.test('encoding is byte-identical to protobufjs for a fixed event', async t => {
  const e = sample({ deviceSeq: TWO_POW_40_PLUS_7, deviceTimeMs: 0, priority: 3, clockSkewed: true })
  t.equal(hex(encodeEvent(e, 5)), hex(wireTypes.Event.encode(reflectionObject(e, 5))))
})

t.test('default scalars are omitted, so an all-default event is empty', async t => {
  const e: EventRecord = { deviceId: '', deviceSeq: 0, gatewayTimeMs: 0, priority: 0, stream: '', clockSkewed: false, tags: {} }
  t.equal(encodeEvent(e, 0).length, 0)
  t.same(decodeEvent(new Uint8Array(0)), { deviceId: '', deviceSeq: 0, gatewayTimeMs: 0, priority: 0, stream: '', storeSeq: 0 })
})

t.test('long strings and large maps use multi-byte length prefixes', async t => {
  const long = 'é'.repeat(100) + 'x'.repeat(300)
  const numbers: Record<string, number> = {}
  for (let i = 0; i < 40; i++) numbers[`metric_with_a_long_name_${i}`] = i / 3
  const tags: Record<string, string> = { [long]: long, ['k'.repeat(42)]: 'v'.repeat(43) }
  for (const value of [{ kind: 'numbers', numbers }, { kind: 'text', text: long }] as EventValue[]) {
    const e = sample({ deviceId: long, stream: long, value, tags })
    const bytes = encodeEvent(e, 1)
    t.equal(hex(bytes), hex(wireTypes.Event.encode(reflectionObject(e, 1))), value.kind)
    t.same(decodeEvent(bytes), expected(e, 1))
  }
})

t.test('strings: multi-byte UTF-8, astral planes, BOM; lone surrogates become U+FFFD', async t => {
  for (const s of ['grüße', '温度', '🌡️ temp', '\uFEFFbom', 'a\u0000b']) {
    t.equal(decodeEvent(encodeEvent(sample({ stream: s }), 1)).stream, s, JSON.stringify(s))
  }
  const lone = decodeEvent(encodeEvent(sample({ stream: 'a\uD800b', deviceId: 'x'.repeat(50) + '\uDC00' }), 1))
  t.equal(lone.stream, 'a\uFFFDb')
  t.equal(lone.deviceId, 'x'.repeat(50) + '\uFFFD')
})

t.test('a map key named __proto__ stays data', async t => {
  const tags = JSON.parse('{"__proto__": "evil", "site": "a"}') as Record<string, string>
  const numbers = JSON.parse('{"__proto__": 1}') as Record<string, number>
  const decoded = decodeEvent(encodeEvent(sample({ tags, value: { kind: 'numbers', numbers } }), 1))
  t.same(Object.keys(decoded.tags ?? {}), ['__proto__', 'site'])
  t.equal(Object.getPrototypeOf(decoded.tags), Object.prototype)
  if (decoded.value?.kind !== 'numbers') throw new Error('expected numbers')
  t.equal(Object.getOwnPropertyDescriptor(decoded.value.numbers, '__proto__')?.value, 1)
})

t.test('bad events are refused with EDGEFWD_ERR_EVENT_INVALID', async t => {
  const bad: Array<[string, unknown]> = [
    ['negative seq', sample({ deviceSeq: -1 })],
    ['fractional time', sample({ gatewayTimeMs: 1.5 })],
    ['unsafe seq', sample({ deviceSeq: 2 ** 53 })],
    ['priority 4', sample({ priority: 4 as Priority })],
    ['deviceId not a string', { ...sample(), deviceId: 42 }],
    ['unknown value kind', sample({ value: { kind: 'blob' } as unknown as EventValue })],
    ['numbers with a string', sample({ value: { kind: 'numbers', numbers: { a: 'x' } } as unknown as EventValue })],
    ['raw not bytes', sample({ value: { kind: 'raw', raw: [1, 2] } as unknown as EventValue })],
    ['tag not a string', sample({ tags: { a: 1 } as unknown as Record<string, string> })]
  ]
  for (const [name, e] of bad) {
    t.throws(() => encodeEvent(e as EventRecord, 1), { code: 'EDGEFWD_ERR_EVENT_INVALID' }, name)
  }
  t.throws(() => encodeEvent(sample(), -1), { code: 'EDGEFWD_ERR_EVENT_INVALID' }, 'negative storeSeq')
})

t.test('concatBatch equals protobufjs Batch.encode of the same events', async t => {
  const events = [
    sample(),
    sample({ deviceSeq: TWO_POW_40_PLUS_7, value: { kind: 'raw', raw: new Uint8Array(300).fill(9) } }),
    sample({ value: { kind: 'text', text: 'x'.repeat(20_000) } }),
    { deviceId: '', deviceSeq: 0, gatewayTimeMs: 0, priority: 0 as const, stream: '' }
  ]
  const encoded = events.map((e, i) => encodeEvent(e, i))
  const batch = concatBatch(encoded)
  const reference = wireTypes.Batch.encode({ events: events.map((e, i) => reflectionObject(e, i)) })
  t.equal(hex(batch), hex(reference))
  t.same(decodeBatch(batch), events.map((e, i) => expected(e, i)))
  t.same(decodeBatch(concatBatch([])), [])
})

t.test('readGatewayTimeMs scans without decoding, 0 when absent', async t => {
  t.equal(readGatewayTimeMs(encodeEvent(sample({ gatewayTimeMs: 123 }), 1)), 123)
  t.equal(readGatewayTimeMs(encodeEvent(sample({ gatewayTimeMs: 0 }), 1)), 0)
  t.throws(() => readGatewayTimeMs(Uint8Array.of(0x0a, 0x05, 0x41)), { code: 'EDGEFWD_ERR_PROTO_DECODE' })
})

t.test('readExpiresAtMs scans without decoding; undefined when absent, 0 kept as 0', async t => {
  t.equal(readExpiresAtMs(encodeEvent(sample({ expiresAtMs: 1_700_000_060_000 }), 1)), 1_700_000_060_000)
  t.equal(readExpiresAtMs(encodeEvent(sample({ expiresAtMs: 0 }), 1)), 0)
  t.equal(readExpiresAtMs(encodeEvent(sample(), 1)), undefined)
  t.throws(() => readExpiresAtMs(Uint8Array.of(0x0a, 0x05, 0x41)), { code: 'EDGEFWD_ERR_PROTO_DECODE' })
  t.throws(() => encodeEvent(sample({ expiresAtMs: -1 }), 1), { code: 'EDGEFWD_ERR_EVENT_INVALID' })
})

t.test('unknown fields are skipped; a repeated field keeps its last value', async t => {
  const known = encodeEvent(sample(), 3)
  // field 99 varint, field 100 fixed32, field 101 fixed64, field 102 bytes, field 103 group
  const unknown = Uint8Array.of(0x98, 0x06, 0x01, 0xa5, 0x06, 1, 2, 3, 4, 0xa9, 0x06, 1, 2, 3, 4, 5, 6, 7, 8,
    0xb2, 0x06, 0x02, 0x61, 0x62, 0xbb, 0x06, 0x08, 0x01, 0xbc, 0x06)
  const later = Uint8Array.of(0x10, 0x05)
  const decoded = decodeEvent(Buffer.concat([known, unknown, later]))
  t.same(decoded, { ...expected(sample(), 3), deviceSeq: 5 })
})

const uint64 = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 32 + 5 }), fc.maxSafeNat())
const text = fc.oneof(fc.string({ maxLength: 50 }), fc.string({ unit: 'binary', maxLength: 60 }))
const arbValue: fc.Arbitrary<EventValue> = fc.oneof(
  fc.double().map((number) => ({ kind: 'number' as const, number })),
  fc.dictionary(text, fc.double({ noNaN: true }), { maxKeys: 12 }).map((numbers) => ({ kind: 'numbers' as const, numbers })),
  text.map((t) => ({ kind: 'text' as const, text: t })),
  fc.uint8Array({ maxLength: 300 }).map((raw) => ({ kind: 'raw' as const, raw }))
)
const arbEvent: fc.Arbitrary<EventRecord> = fc.record({
  deviceId: text,
  deviceSeq: uint64,
  deviceTimeMs: uint64,
  deviceUptimeMs: uint64,
  gatewayTimeMs: uint64,
  priority: fc.constantFrom<Priority>(0, 1, 2, 3),
  stream: text,
  value: arbValue,
  tags: fc.dictionary(text, text, { maxKeys: 5 }),
  clockSkewed: fc.boolean(),
  expiresAtMs: uint64
}, { requiredKeys: ['deviceId', 'deviceSeq', 'gatewayTimeMs', 'priority', 'stream'] })

t.test('property: bytes equal protobufjs, and decode gives the event back', async t => {
  // node:assert throws, so fast-check can shrink a failure to a minimal event.
  fc.assert(fc.property(arbEvent, uint64, (e, storeSeq) => {
    const bytes = encodeEvent(e, storeSeq)
    assert.equal(hex(bytes), hex(wireTypes.Event.encode(reflectionObject(e, storeSeq))))
    assert.deepEqual(decodeEvent(bytes), expected(e, storeSeq))
    assert.equal(readGatewayTimeMs(bytes), e.gatewayTimeMs)
    assert.equal(readExpiresAtMs(bytes), e.expiresAtMs)
  }), { numRuns: 500 })
  t.pass('500 generated events')
})

t.test('an event larger than the scratch buffer, then small ones again', async t => {
  const huge = sample({ value: { kind: 'raw', raw: new Uint8Array(3 * 1024 * 1024).fill(1) }, tags: { ['t'.repeat(70_000)]: 'v' } })
  const decoded = decodeEvent(encodeEvent(huge, 1))
  if (decoded.value?.kind !== 'raw') throw new Error('expected raw')
  t.equal(decoded.value.raw.length, 3 * 1024 * 1024)
  t.same(decoded.tags, huge.tags)
  t.same(decodeEvent(encodeEvent(sample(), 2)), expected(sample(), 2))
})
