import t from 'tap'
import fc from 'fast-check'
import { EdgefwdError } from '../../src/errors.js'
import {
  concatBatch, decodeBatch, decodeDeviceFrame, decodeEnvelope, decodeEvent, decodeEvictionReport, decodeHeartbeat,
  encodeDeviceFrame, encodeEnvelope, encodeEvent, encodeHeartbeat, readEventTiming, readExpiresAtMs, readGatewayTimeMs
} from '../../src/proto/codec.js'
import { u64 } from '../../src/proto/wire-fields.js'

const decoders: Record<string, (b: Uint8Array) => unknown> = {
  decodeEvent,
  decodeBatch,
  readGatewayTimeMs,
  readExpiresAtMs,
  readEventTiming: (b) => readEventTiming(b),
  decodeDeviceFrame,
  decodeEnvelope,
  decodeEvictionReport,
  decodeHeartbeat
}

/** Decodes and reports whether the outcome was a value or the coded error, rethrowing anything else. */
function outcome (decode: (b: Uint8Array) => unknown, bytes: Uint8Array): 'ok' | 'coded' {
  try {
    decode(bytes)
    return 'ok'
  } catch (err) {
    if (err instanceof EdgefwdError && err.code === 'EDGEFWD_ERR_PROTO_DECODE' && err.cause !== undefined) return 'coded'
    throw err
  }
}

const garbage: Array<[string, number[]]> = [
  ['truncated varint', [0x08, 0xff]],
  ['length past the end', [0x0a, 0x05, 0x41]],
  ['wire type 7', [0x0f]],
  ['wire type 6', [0x0e]],
  ['field number 0', [0x00, 0x01]],
  ['end group without start', [0x0c]],
  ['unterminated group', [0x0b, 0x08, 0x01]],
  ['varint of 11 bytes', [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
  ['truncated fixed64', [0x09, 1, 2, 3]],
  ['truncated fixed32', [0x0d, 1, 2]]
]

t.test('garbage fails every decoder with EDGEFWD_ERR_PROTO_DECODE and a cause', async t => {
  for (const [name, decode] of Object.entries(decoders)) {
    for (const [what, bytes] of garbage) {
      // protobufjs tolerates some of these (e.g. an 11-byte varint); what matters is that
      // nothing but the coded error escapes.
      t.doesNotThrow(() => outcome(decode, Uint8Array.from(bytes)), `${name}: ${what}`)
    }
    t.throws(() => decode(Uint8Array.of(0x0a, 0x05, 0x41)), { code: 'EDGEFWD_ERR_PROTO_DECODE', name: 'EdgefwdError' }, `${name}: truncated`)
    t.throws(() => decode('not bytes' as unknown as Uint8Array), { code: 'EDGEFWD_ERR_PROTO_DECODE' }, `${name}: not bytes`)
  }
})

t.test('the hand-written decoders reject every malformed case', async t => {
  for (const [what, bytes] of garbage) {
    t.equal(outcome(decodeEvent, Uint8Array.from(bytes)), 'coded', what)
  }
  const err = t.throws(() => decodeEvent(Uint8Array.of(0x0a, 0x05, 0x41))) as EdgefwdError
  t.match(err.message, /^cannot decode edgefwd\.v1\.Event \(3 bytes\): length 5 at byte 1 runs past the end$/)
})

t.test('a bad event inside a batch is named by its position', async t => {
  const good = encodeEvent({ deviceId: 'a', deviceSeq: 1, gatewayTimeMs: 1, priority: 1, stream: 's' }, 1)
  const batch = concatBatch([good, Uint8Array.of(0x30, 0x09)])
  t.throws(() => decodeBatch(batch), { code: 'EDGEFWD_ERR_PROTO_DECODE', message: /event 1 at byte \d+: unknown priority 9/ })
})

t.test('u64 accepts protobufjs Longs and plain numbers, and refuses unsafe values', async t => {
  t.equal(u64({ v: { low: 7, high: 256, unsigned: true } }, 'v'), 2 ** 40 + 7)
  t.equal(u64({ v: { low: -1, high: 0x1fffff, unsigned: true } }, 'v'), Number.MAX_SAFE_INTEGER)
  t.equal(u64({ v: 2 ** 40 + 7 }, 'v'), 2 ** 40 + 7, 'protobufjs without the long package returns numbers')
  t.equal(u64({}, 'v'), 0)
  t.throws(() => u64({ v: { low: 0, high: 0x200000 } }, 'v'), /exceeds 2\^53-1/)
  t.throws(() => u64({ v: 2 ** 53 }, 'v'), /fits 2\^53-1/)
  t.throws(() => u64({ v: '5' }, 'v'))
})

t.test('fuzz: random bytes give a value or the coded error, never anything else', async t => {
  for (const [name, decode] of Object.entries(decoders)) {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => { outcome(decode, bytes) }), { numRuns: 400 })
    t.pass(name)
  }
})

t.test('fuzz: mutated and truncated valid messages give a value or the coded error', async t => {
  const valid: Record<string, [Uint8Array, (b: Uint8Array) => unknown]> = {
    Event: [encodeEvent({
      deviceId: 'sensor-0042', deviceSeq: 2 ** 40, deviceTimeMs: 0, gatewayTimeMs: 1_700_000_000_000, priority: 2, stream: 'telemetry',
      value: { kind: 'numbers', numbers: { a: 1, b: 2 } }, tags: { site: 'x' }, clockSkewed: true
    }, 9), decodeEvent],
    DeviceFrame: [encodeDeviceFrame({ deviceId: 'd', seq: 5, uptimeMs: 3, priority: 1, stream: 's', value: { kind: 'text', text: 'hi' }, tags: { a: 'b' } }), decodeDeviceFrame],
    Envelope: [encodeEnvelope({
      schemaVersion: 1, gatewayId: 'gw', batchSeq: 3, compression: 'gzip', firstStoreSeq: 1, lastStoreSeq: 2, eventCount: 2,
      evictionReport: { counts: [{ priority: 0, reason: 'expired_ttl', count: 1, bytes: 2, firstGatewayTimeMs: 3, lastGatewayTimeMs: 4 }], ranges: [], rangesTruncated: false },
      payload: Uint8Array.of(1, 2, 3), createdMs: 9
    }), decodeEnvelope],
    Heartbeat: [encodeHeartbeat({
      gatewayId: 'gw', version: '1', uptimeS: 1, timeMs: 2, bufferedEvents: 3, bufferedBytes: 4, capacityBytes: 5, oldestBufferedAgeMs: 6,
      eventsReceived: 7, eventsDelivered: 8, eventsEvicted: 9, eventsDropped: 10, framesRejected: 11, rssBytes: 12, cpuSeconds: 1.5,
      certDaysLeft: -1, linkState: 'online', diskDegraded: true, drops: [],
      intervalS: 13, framesReceived: 14, eventsPublished: 15, eventsResent: 16, uplinkConnects: 17, connectFailures: 18, authFailures: 19,
      bufferFill: 0.25, deliverySuccessRatio: 1, deliverySuccessRatioInterval: 1, lossRatio: 0, lossRatioInterval: 0,
      pubackLatencyP99S: 0.5, deliveryLagP99S: 2, eventLoopDelayP99S: 0.01, configVersion: 3
    }), decodeHeartbeat]
  }
  for (const [name, [bytes, decode]] of Object.entries(valid)) {
    const mutation = fc.record({ at: fc.nat({ max: bytes.length - 1 }), value: fc.integer({ min: 0, max: 255 }), cut: fc.nat({ max: bytes.length }) })
    fc.assert(fc.property(mutation, ({ at, value, cut }) => {
      const mutated = Uint8Array.from(bytes)
      mutated[at] = value
      outcome(decode, mutated.subarray(0, cut))
      outcome(decode, mutated)
    }), { numRuns: 500 })
    t.pass(name)
  }
})
