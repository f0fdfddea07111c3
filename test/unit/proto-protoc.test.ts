// Cross-checks the codec against Google's own implementation: Debian's protoc decodes what we
// encode (--decode prints text format) and encodes what we decode (--encode reads text format).
// protoc must be installed (Debian package protobuf-compiler); this test fails, never skips,
// without it.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import {
  concatBatch, decodeBatch, decodeDeviceFrame, decodeEnvelope, decodeEvent, decodeHeartbeat,
  encodeDeviceFrame, encodeEnvelope, encodeEvent, encodeHeartbeat, type HeartbeatData, type StoredEvent
} from '../../src/proto/codec.js'
import type { EventRecord } from '../../src/types.js'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const BIG = 2 ** 40 + 7

function protoc (mode: 'decode' | 'encode', message: string, input: Uint8Array | string): Buffer {
  const args = [`--${mode}=edgefwd.v1.${message}`, '-I', 'proto', 'proto/edgefwd/v1/edgefwd.proto']
  const run = spawnSync('protoc', args, { cwd: repoRoot, input })
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new Error('protoc is not on PATH: install the Debian package protobuf-compiler (apt-get install -y protobuf-compiler)')
  }
  if (run.error !== undefined) throw run.error
  if (run.status !== 0) throw new Error(`protoc ${args.join(' ')} exited ${String(run.status)}: ${run.stderr.toString()}`)
  return run.stdout
}

/** protoc's text format, one trimmed line each, so indentation differences between versions do not matter. */
function decodeText (message: string, bytes: Uint8Array): string[] {
  return protoc('decode', message, bytes).toString('utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '')
}

const lines = (text: string): string[] => text.split('\n').map((l) => l.trim()).filter((l) => l !== '')

const event: EventRecord = {
  deviceId: 'sensor-0042',
  deviceSeq: BIG,
  deviceTimeMs: 0,
  gatewayTimeMs: 1_700_000_000_456,
  priority: 2,
  stream: 'telemetry',
  value: { kind: 'numbers', numbers: { temp: 21.5, rh: 40, a: -0.125 } },
  tags: { site: 'plant-7', fw: '1.4.2' },
  clockSkewed: true,
  expiresAtMs: 1_700_000_600_456
}

const eventText = `
  device_id: "sensor-0042"
  device_seq: 1099511627783
  device_time_ms: 0
  gateway_time_ms: 1700000000456
  priority: PRIORITY_HIGH
  stream: "telemetry"
  numbers {
    values {
      key: "a"
      value: -0.125
    }
    values {
      key: "rh"
      value: 40
    }
    values {
      key: "temp"
      value: 21.5
    }
  }
  tags {
    key: "fw"
    value: "1.4.2"
  }
  tags {
    key: "site"
    value: "plant-7"
  }
  store_seq: 1099511627784
  clock_skewed: true
  expires_at_ms: 1700000600456`

t.test('protoc is installed', async t => {
  t.doesNotThrow(() => protoc('decode', 'Event', new Uint8Array(0)), 'protoc runs')
})

t.test('Event: protoc decodes our bytes', async t => {
  // Map entries come out sorted by key, whatever order they were encoded in.
  t.same(decodeText('Event', encodeEvent(event, BIG + 1)), lines(eventText))
})

t.test('Event: we decode protoc bytes, presence included', async t => {
  const expected: StoredEvent = { ...event, storeSeq: BIG + 1 }
  t.same(decodeEvent(protoc('encode', 'Event', eventText)), expected)
  const bare = decodeEvent(protoc('encode', 'Event', 'device_id: "d"\ndevice_uptime_ms: 0\nraw: "\\001\\377ab"\n'))
  t.same(bare, { deviceId: 'd', deviceSeq: 0, deviceUptimeMs: 0, gatewayTimeMs: 0, priority: 0, stream: '', storeSeq: 0, value: { kind: 'raw', raw: Uint8Array.of(1, 255, 0x61, 0x62) } })
  t.notOk('deviceTimeMs' in bare)
})

t.test('Batch: protoc reads concatenated Event bytes as a Batch, and we read its Batch', async t => {
  const second: EventRecord = { deviceId: 'pump-3', deviceSeq: 1, gatewayTimeMs: 5, priority: 3, stream: 'alarm', value: { kind: 'text', text: 'grüße' } }
  const text = decodeText('Batch', concatBatch([encodeEvent(second, 1), encodeEvent({ ...second, value: { kind: 'number', number: 0 } }, 2)]))
  t.same(text, lines(`
    events {
      device_id: "pump-3"
      device_seq: 1
      gateway_time_ms: 5
      priority: PRIORITY_CRITICAL
      stream: "alarm"
      text: "gr\\303\\274\\303\\237e"
      store_seq: 1
    }
    events {
      device_id: "pump-3"
      device_seq: 1
      gateway_time_ms: 5
      priority: PRIORITY_CRITICAL
      stream: "alarm"
      number: 0
      store_seq: 2
    }`))
  const decoded = decodeBatch(protoc('encode', 'Batch', `events { ${eventText} } events { device_id: "b" store_seq: ${BIG} }`))
  t.same(decoded, [{ ...event, storeSeq: BIG + 1 }, { deviceId: 'b', deviceSeq: 0, gatewayTimeMs: 0, priority: 0, stream: '', storeSeq: BIG }])
})

t.test('DeviceFrame both ways', async t => {
  const frame = { deviceId: 'sensor-0042', seq: BIG, uptimeMs: 0, priority: 1 as const, stream: 'telemetry', value: { kind: 'number' as const, number: 21.5 }, tags: { site: 'x' } }
  t.same(decodeText('DeviceFrame', encodeDeviceFrame(frame)), lines(`
    device_id: "sensor-0042"
    seq: 1099511627783
    uptime_ms: 0
    priority: PRIORITY_NORMAL
    stream: "telemetry"
    number: 21.5
    tags {
      key: "site"
      value: "x"
    }`))
  const decoded = decodeDeviceFrame(protoc('encode', 'DeviceFrame', 'device_id: "d" seq: 1099511627783 device_time_ms: 1700000000000 priority: PRIORITY_LOW numbers { values { key: "t" value: 1.5 } }'))
  t.same(decoded, { deviceId: 'd', seq: BIG, deviceTimeMs: 1_700_000_000_000, priority: 0, stream: '', value: { kind: 'numbers', numbers: { t: 1.5 } } })
  t.notOk('uptimeMs' in decoded)
})

t.test('Envelope with an eviction report, both ways', async t => {
  const envelope = {
    schemaVersion: 1,
    gatewayId: 'gw-1',
    batchSeq: BIG,
    compression: 'deflate' as const,
    firstStoreSeq: 10,
    lastStoreSeq: BIG,
    evictionReport: {
      counts: [{ priority: 0 as const, reason: 'evicted_for_space' as const, count: 3, bytes: 600, firstGatewayTimeMs: 1, lastGatewayTimeMs: 2 }],
      ranges: [{ deviceId: 'sensor-0042', firstSeq: 5, lastSeq: 7, count: 3, priority: 0 as const, reason: 'evicted_for_space' as const }],
      rangesTruncated: true
    },
    eventCount: 2,
    payload: Buffer.from('batch'),
    createdMs: 1_700_000_000_000
  }
  const text = `
    schema_version: 1
    gateway_id: "gw-1"
    batch_seq: 1099511627783
    compression: COMPRESSION_DEFLATE
    first_store_seq: 10
    last_store_seq: 1099511627783
    eviction_report {
      counts {
        reason: DROP_REASON_EVICTED_FOR_SPACE
        count: 3
        bytes: 600
        first_gateway_time_ms: 1
        last_gateway_time_ms: 2
      }
      ranges {
        device_id: "sensor-0042"
        first_seq: 5
        last_seq: 7
        count: 3
        reason: DROP_REASON_EVICTED_FOR_SPACE
      }
      ranges_truncated: true
    }
    event_count: 2
    payload: "batch"
    created_ms: 1700000000000`
  t.same(decodeText('Envelope', encodeEnvelope(envelope)), lines(text))
  t.same(decodeEnvelope(protoc('encode', 'Envelope', text)), { ...envelope, payload: new Uint8Array(Buffer.from('batch')) })
})

t.test('Heartbeat both ways', async t => {
  const heartbeat: HeartbeatData = {
    gatewayId: 'gw-1', version: '0.1.0', uptimeS: 60, timeMs: 1_700_000_000_000, bufferedEvents: BIG, bufferedBytes: 2048,
    capacityBytes: 2 ** 34, oldestBufferedAgeMs: 5, eventsReceived: 100, eventsDelivered: 90, eventsEvicted: 3, eventsDropped: 4,
    framesRejected: 2, rssBytes: 50_000_000, cpuSeconds: 1.25, certDaysLeft: -2, linkState: 'backoff', diskDegraded: true,
    drops: [{ priority: 3, reason: 'memory_queue_full', count: 1, bytes: 10, firstGatewayTimeMs: 7, lastGatewayTimeMs: 8 }],
    intervalS: 60, framesReceived: 120, eventsPublished: 95, eventsResent: 5, uplinkConnects: 2, connectFailures: 3, authFailures: 1,
    bufferFill: 0.125, deliverySuccessRatio: 0.9375, deliverySuccessRatioInterval: 0.5, lossRatio: 0.0625, lossRatioInterval: 0.25,
    pubackLatencyP99S: 0.05, deliveryLagP99S: 7.5, eventLoopDelayP99S: 0.002, configVersion: 7
  }
  const text = `
    gateway_id: "gw-1"
    version: "0.1.0"
    uptime_s: 60
    time_ms: 1700000000000
    buffered_events: 1099511627783
    buffered_bytes: 2048
    capacity_bytes: 17179869184
    oldest_buffered_age_ms: 5
    events_received: 100
    events_delivered: 90
    events_evicted: 3
    events_dropped: 4
    frames_rejected: 2
    rss_bytes: 50000000
    cpu_seconds: 1.25
    cert_days_left: -2
    link_state: "backoff"
    disk_degraded: true
    drops {
      priority: PRIORITY_CRITICAL
      reason: DROP_REASON_MEMORY_QUEUE_FULL
      count: 1
      bytes: 10
      first_gateway_time_ms: 7
      last_gateway_time_ms: 8
    }
    interval_s: 60
    frames_received: 120
    events_published: 95
    events_resent: 5
    uplink_connects: 2
    connect_failures: 3
    auth_failures: 1
    buffer_fill: 0.125
    delivery_success_ratio: 0.9375
    delivery_success_ratio_interval: 0.5
    loss_ratio: 0.0625
    loss_ratio_interval: 0.25
    puback_latency_p99_s: 0.05
    delivery_lag_p99_s: 7.5
    event_loop_delay_p99_s: 0.002
    config_version: 7`
  t.same(decodeText('Heartbeat', encodeHeartbeat(heartbeat)), lines(text))
  t.same(decodeHeartbeat(protoc('encode', 'Heartbeat', text)), heartbeat)
})
