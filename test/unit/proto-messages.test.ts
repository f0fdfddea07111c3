import t from 'tap'
import {
  concatBatch, decodeBatch, decodeDeviceFrame, decodeEnvelope, decodeEvictionReport, decodeHeartbeat,
  encodeDeviceFrame, encodeEnvelope, encodeEvent, encodeEvictionReport, encodeHeartbeat,
  type DeviceFrameData, type EnvelopeData, type EvictionReportData, type HeartbeatData
} from '../../src/proto/codec.js'
import { wireTypes } from '../../src/proto/schema.js'
import { DROP_REASONS, type EventValue } from '../../src/types.js'

const BIG = 2 ** 40 + 7

const report: EvictionReportData = {
  counts: DROP_REASONS.map((reason, i) => ({
    priority: (i % 4) as 0 | 1 | 2 | 3, reason, count: BIG + i, bytes: 2 ** 33, firstGatewayTimeMs: 1_700_000_000_000, lastGatewayTimeMs: Number.MAX_SAFE_INTEGER
  })),
  ranges: [
    { deviceId: 'sensor-0042', firstSeq: BIG, lastSeq: BIG + 10, count: 11, priority: 0, reason: 'evicted_for_space' },
    { deviceId: 'pump-3', firstSeq: 0, lastSeq: 0, count: 1, priority: 3, reason: 'malformed' }
  ],
  rangesTruncated: true
}

const heartbeat: HeartbeatData = {
  gatewayId: 'gw-1',
  version: '0.1.0',
  uptimeS: 3600,
  timeMs: 1_700_000_000_000,
  bufferedEvents: BIG,
  bufferedBytes: 2 ** 34,
  capacityBytes: 2 ** 35,
  oldestBufferedAgeMs: 12,
  eventsReceived: 1,
  eventsDelivered: 2,
  eventsEvicted: 3,
  eventsDropped: 4,
  framesRejected: 5,
  rssBytes: 80_000_000,
  cpuSeconds: 12.75,
  certDaysLeft: -3,
  linkState: 'online',
  diskDegraded: true,
  drops: report.counts,
  intervalS: 60,
  framesReceived: BIG,
  eventsPublished: 6,
  eventsResent: 7,
  uplinkConnects: 8,
  connectFailures: 9,
  authFailures: 10,
  bufferFill: 0.5,
  deliverySuccessRatio: 0.99,
  deliverySuccessRatioInterval: 0.875,
  lossRatio: 0.01,
  lossRatioInterval: 0.125,
  pubackLatencyP99S: 0.025,
  deliveryLagP99S: 3600.5,
  eventLoopDelayP99S: 0.003,
  configVersion: 42
}

t.test('EvictionReport round trip, with every drop reason and big counts', async t => {
  t.same(decodeEvictionReport(encodeEvictionReport(report)), report)
  const empty: EvictionReportData = { counts: [], ranges: [], rangesTruncated: false }
  t.equal(encodeEvictionReport(empty).length, 0)
  t.same(decodeEvictionReport(new Uint8Array(0)), empty)
})

t.test('Envelope round trip, with and without an eviction report', async t => {
  const events = [encodeEvent({ deviceId: 'a', deviceSeq: 1, gatewayTimeMs: 5, priority: 2, stream: 's' }, BIG)]
  const envelope: EnvelopeData = {
    schemaVersion: 1,
    gatewayId: 'gw-1',
    batchSeq: BIG,
    compression: 'gzip',
    firstStoreSeq: BIG,
    lastStoreSeq: BIG + 1,
    evictionReport: report,
    eventCount: 1,
    payload: concatBatch(events),
    createdMs: 1_700_000_000_123
  }
  const decoded = decodeEnvelope(encodeEnvelope(envelope))
  t.same(decoded, envelope)
  t.equal(Object.getPrototypeOf(decoded.payload), Uint8Array.prototype)
  t.equal(decodeBatch(decoded.payload)[0]?.storeSeq, BIG)

  const { evictionReport: _unused, ...bare } = envelope
  const decodedBare = decodeEnvelope(encodeEnvelope({ ...bare, compression: 'none' }))
  t.notOk('evictionReport' in decodedBare, 'absent report stays absent')
  t.equal(decodedBare.compression, 'none')

  const emptyReport = decodeEnvelope(encodeEnvelope({ ...bare, evictionReport: { counts: [], ranges: [], rangesTruncated: false } }))
  t.same(emptyReport.evictionReport, { counts: [], ranges: [], rangesTruncated: false }, 'an empty report is still present')
  for (const compression of ['none', 'gzip', 'deflate'] as const) {
    t.equal(decodeEnvelope(encodeEnvelope({ ...bare, compression })).compression, compression)
  }
})

t.test('DeviceFrame round trip of every value kind, presence of optional times', async t => {
  const values: EventValue[] = [
    { kind: 'number', number: 0 },
    { kind: 'numbers', numbers: { temp: 21.5, rh: 40 } },
    { kind: 'text', text: 'grüße 🌡️' },
    { kind: 'raw', raw: Uint8Array.of(0, 1, 255) }
  ]
  for (const value of values) {
    const frame: DeviceFrameData = { deviceId: 'sensor-0042', seq: BIG, priority: 2, stream: 'telemetry', value, tags: { site: 'x' } }
    t.same(decodeDeviceFrame(encodeDeviceFrame(frame)), frame, value.kind)
  }
  const bare: DeviceFrameData = { deviceId: 'd', seq: 0, priority: 0, stream: '' }
  const decoded = decodeDeviceFrame(encodeDeviceFrame(bare))
  t.same(decoded, bare)
  t.notOk('deviceTimeMs' in decoded)
  t.notOk('uptimeMs' in decoded)
  t.notOk('value' in decoded)
  t.notOk('tags' in decoded)
  const zeros = decodeDeviceFrame(encodeDeviceFrame({ ...bare, deviceTimeMs: 0, uptimeMs: 0 }))
  t.equal(zeros.deviceTimeMs, 0)
  t.equal(zeros.uptimeMs, 0)
  const times = decodeDeviceFrame(encodeDeviceFrame({ ...bare, deviceTimeMs: BIG, uptimeMs: 2 ** 32 + 1 }))
  t.equal(times.deviceTimeMs, BIG)
  t.equal(times.uptimeMs, 2 ** 32 + 1)
})

t.test('Heartbeat round trip, negative cert days and big counters', async t => {
  t.same(decodeHeartbeat(encodeHeartbeat(heartbeat)), heartbeat)
  const zero: HeartbeatData = {
    gatewayId: '', version: '', uptimeS: 0, timeMs: 0, bufferedEvents: 0, bufferedBytes: 0, capacityBytes: 0,
    oldestBufferedAgeMs: 0, eventsReceived: 0, eventsDelivered: 0, eventsEvicted: 0, eventsDropped: 0,
    framesRejected: 0, rssBytes: 0, cpuSeconds: 0, certDaysLeft: 0, linkState: '', diskDegraded: false, drops: [],
    intervalS: 0, framesReceived: 0, eventsPublished: 0, eventsResent: 0, uplinkConnects: 0, connectFailures: 0, authFailures: 0,
    bufferFill: 0, deliverySuccessRatio: 0, deliverySuccessRatioInterval: 0, lossRatio: 0, lossRatioInterval: 0,
    pubackLatencyP99S: 0, deliveryLagP99S: 0, eventLoopDelayP99S: 0, configVersion: 0
  }
  t.equal(encodeHeartbeat(zero).length, 0, 'defaults are omitted')
  t.same(decodeHeartbeat(new Uint8Array(0)), zero)
})

t.test('the encoders refuse values the wire cannot carry', async t => {
  t.throws(() => encodeHeartbeat({ ...heartbeat, rssBytes: -1 }), RangeError)
  t.throws(() => encodeHeartbeat({ ...heartbeat, certDaysLeft: 2 ** 31 }), RangeError)
  t.throws(() => encodeEnvelope({ ...decodeEnvelope(new Uint8Array(0)), eventCount: 2 ** 32 }), RangeError)
  t.throws(() => encodeEnvelope({ ...decodeEnvelope(new Uint8Array(0)), compression: 'zstd' as 'gzip' }), RangeError)
  t.throws(() => encodeEvictionReport({ ...report, counts: [{ ...heartbeat.drops[0]!, reason: 'lost' as 'malformed' }] }), RangeError)
  t.throws(() => encodeDeviceFrame({ deviceId: 'd', seq: 1.5, priority: 0, stream: '' }), RangeError)
  t.throws(() => encodeDeviceFrame({ deviceId: 'd', seq: 1, priority: 7 as 0, stream: '' }), RangeError)
})

t.test('uint64 values from other encoders above 2^53-1 fail instead of rounding', async t => {
  // 2^53 as a varint, in Envelope.batch_seq (field 3) and Heartbeat.rss_bytes (field 14).
  const varint253 = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]
  t.throws(() => decodeEnvelope(Uint8Array.of(0x18, ...varint253)), { code: 'EDGEFWD_ERR_PROTO_DECODE' })
  t.throws(() => decodeHeartbeat(Uint8Array.of(0x70, ...varint253)), { code: 'EDGEFWD_ERR_PROTO_DECODE' })
  t.throws(() => decodeDeviceFrame(Uint8Array.of(0x10, ...varint253)), { code: 'EDGEFWD_ERR_PROTO_DECODE' })
  const maxSafe = wireTypes.Envelope.encode({ batchSeq: Number.MAX_SAFE_INTEGER })
  t.equal(decodeEnvelope(maxSafe).batchSeq, Number.MAX_SAFE_INTEGER)
})

t.test('enum values with no edgefwd name fail the decode', async t => {
  const cases: Array<[string, () => unknown]> = [
    ['DeviceFrame priority 4', () => decodeDeviceFrame(Uint8Array.of(0x28, 0x04))],
    ['Envelope compression 3', () => decodeEnvelope(Uint8Array.of(0x20, 0x03))],
    ['DropCount reason 0 (unspecified)', () => decodeEvictionReport(Uint8Array.of(0x0a, 0x02, 0x10, 0x00))],
    ['DropCount reason 7', () => decodeEvictionReport(Uint8Array.of(0x0a, 0x02, 0x10, 0x07))],
    ['DroppedRange priority 9', () => decodeEvictionReport(Uint8Array.of(0x12, 0x04, 0x28, 0x09, 0x30, 0x01))]
  ]
  for (const [name, decode] of cases) t.throws(decode, { code: 'EDGEFWD_ERR_PROTO_DECODE' }, name)
})
