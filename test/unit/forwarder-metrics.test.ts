import t from 'tap'
import type { IngestCounterSnapshot } from '../../src/ingest/counters.js'
import { REJECT_REASONS } from '../../src/ingest/reasons.js'
import { ForwarderMetrics, type MetricSources } from '../../src/observe/forwarder-metrics.js'
import { HeartbeatBuilder } from '../../src/observe/heartbeat.js'
import { MetricsRegistry } from '../../src/observe/metrics.js'
import { encodeEvent } from '../../src/proto/codec.js'
import type { Lease, StoreStats } from '../../src/store/index.js'
import type { UplinkStats } from '../../src/uplink/session.js'
import { PRIORITIES } from '../../src/types.js'

function ingest (events: number, badCrc: number): IngestCounterSnapshot {
  return {
    frames: events + badCrc,
    events,
    hellos: 0,
    clockSkewed: 0,
    rejected: { ...Object.fromEntries(REJECT_REASONS.map(r => [r, 0])) as IngestCounterSnapshot['rejected'], bad_crc: badCrc },
    store: { appends: 0, durable: 0, notDurable: 0, refused: {}, failed: 0 },
    transports: { udp: { frames: events + badCrc, bytes: 100 * (events + badCrc), rejected: {}, dropped: {}, errors: 0, connections: 0, acks: 0, ackTimeouts: 0, failures: {} } },
    devices: {},
    devicesForgotten: 0
  }
}

function store (stored: number, evicted: number): StoreStats {
  return {
    state: 'open',
    mode: 'disk',
    capacityBytes: 1000,
    usedBytes: 250,
    events: 5,
    perPriority: PRIORITIES.map((priority, p) => ({ priority, events: p === 0 ? 5 : 0, bytes: p === 0 ? 250 : 0, leased: 0, stored: p === 0 ? stored : 0 })),
    leases: 0,
    leasedEvents: 0,
    memoryBytes: 0,
    pendingAppends: 0,
    pendingReports: 0,
    nextSeq: 1,
    repairedAtOpen: false,
    drops: evicted === 0 ? [] : [{ priority: 'low', reason: 'evicted_for_space', count: evicted, bytes: 50 * evicted }]
  }
}

function uplink (connects: number, failures: Record<string, number>): UplinkStats {
  return {
    state: 'online', connects, disconnects: 0, deadLinks: { puback_timeout: 0, keepalive: 0 }, ackFailures: 0, published: 2, acked: 2, nacked: 0, eventsAcked: 0, eventsPublished: 10, eventsResent: 0, bytesSent: 500,
    inFlight: 0, lastError: undefined, connectFailures: failures, backoffMs: 0, offlineSinceMs: undefined, lastOutage: undefined, bytesToday: 500, budgetExhausted: false, rateWaits: 0, rateWaitMs: 0
  }
}

function sources (i: IngestCounterSnapshot, s: StoreStats, u: UplinkStats, oldestMs?: number): MetricSources {
  return { ingest: () => i, store: () => s, uplink: () => u, oldestEventTimeMs: async () => oldestMs, certExpiresAtMs: () => 86_400_000 * 400 }
}

t.test('counters continue across a forwarder replaced in the same process; store drops are lifetime totals', async t => {
  let now = 1_000_000
  const registry = new MetricsRegistry()
  const metrics = new ForwarderMetrics(registry, '1.2.3', () => now)
  t.teardown(() => { metrics.close() })
  const first = sources(ingest(100, 3), store(100, 20), uplink(1, { connect: 2 }), now - 42_000)
  metrics.attach(first)
  await registry.collect()
  t.equal(registry.get('edgefwd_events_accepted_total'), 100)
  t.equal(registry.get('edgefwd_frames_rejected_total', { reason: 'bad_crc' }), 3)
  t.equal(registry.get('edgefwd_frames_rejected_total', { reason: 'bad_auth' }), 0, 'every reason exported from the start')
  t.equal(registry.get('edgefwd_events_evicted_total', { priority: 'low' }), 20)
  t.equal(registry.get('edgefwd_events_evicted_total', { priority: 'critical' }), 0)
  t.equal(registry.get('edgefwd_store_oldest_event_age_seconds'), 42)
  t.equal(registry.get('edgefwd_uplink_connect_failures_total', { reason: 'connect' }), 2)
  t.equal(registry.get('edgefwd_build_info', { version: '1.2.3' }), 1)
  t.equal(registry.get('edgefwd_tls_cert_expiry_timestamp_seconds'), 86_400 * 400)
  metrics.detach(first)

  // The restarted forwarder counts from 0 again; its store carries the lifetime drops on.
  const second = sources(ingest(30, 1), store(30, 25), uplink(1, { refused_135: 4 }), undefined)
  metrics.attach(second)
  await registry.collect()
  t.equal(registry.get('edgefwd_events_accepted_total'), 130, 'never goes down: 100 + 30')
  t.equal(registry.get('edgefwd_frames_rejected_total', { reason: 'bad_crc' }), 4)
  t.equal(registry.get('edgefwd_frames_received_total', { transport: 'udp' }), 134)
  t.equal(registry.get('edgefwd_uplink_connects_total'), 2)
  t.equal(registry.get('edgefwd_uplink_connect_failures_total', { reason: 'connect' }), 2)
  t.equal(registry.get('edgefwd_uplink_connect_failures_total', { reason: 'refused_135' }), 4)
  t.equal(registry.get('edgefwd_events_evicted_total', { priority: 'low' }), 25, 'lifetime totals are set, not added')
  t.equal(registry.get('edgefwd_store_oldest_event_age_seconds'), 0, 'an empty store has no age')
  await registry.collect()
  t.equal(registry.get('edgefwd_events_accepted_total'), 130, 'a collect without change adds nothing')
})

t.test('a delivered batch: PUBACK latency, lag by priority from the device time (gateway time when skewed), deliveries by priority', async t => {
  const now = 10_000_000
  const registry = new MetricsRegistry()
  const metrics = new ForwarderMetrics(registry, 'x', () => now)
  t.teardown(() => { metrics.close() })
  const ev = (priority: 0 | 3, deviceTimeMs: number, clockSkewed = false): Uint8Array =>
    encodeEvent({ deviceId: 'd', deviceSeq: 1, deviceTimeMs, gatewayTimeMs: now - 500, priority, stream: 's', clockSkewed }, 1)
  const lease = { id: 1, events: [ev(0, now - 2000), ev(3, now - 100), ev(3, 5, true)], batch: new Uint8Array(), firstStoreSeq: 1, lastStoreSeq: 3, bytes: 0, report: undefined } satisfies Lease
  metrics.uplinkObserver.batchAcked?.(lease, 30)
  t.equal(registry.get('edgefwd_events_acked_total', { priority: 'low' }), 1)
  t.equal(registry.get('edgefwd_events_acked_total', { priority: 'critical' }), 2)
  t.equal(registry.get('edgefwd_events_acked_total', { priority: 'normal' }), 0, 'every priority exported from the start')
  t.same(registry.histogram('edgefwd_puback_latency_seconds'), { sum: 0.03, count: 1, buckets: registry.histogram('edgefwd_puback_latency_seconds')?.buckets })
  t.equal(registry.histogram('edgefwd_puback_latency_seconds')?.buckets.find(b => b.le === 0.05)?.count, 1)
  t.equal(registry.histogram('edgefwd_delivery_lag_seconds', { priority: 'low' })?.sum, 2)
  t.equal(registry.histogram('edgefwd_delivery_lag_seconds', { priority: 'critical' })?.sum, 0.6, '0.1 s, and 0.5 s from the gateway time of the skewed one')
})

t.test('heartbeat ratios: since start and over the last interval', async t => {
  let now = 0
  const registry = new MetricsRegistry()
  const beats = new HeartbeatBuilder(registry, () => now)
  registry.inc('edgefwd_events_dropped_total', { priority: 'low', reason: 'evicted_for_space' }, 7) // before this process: not counted
  await beats.start()
  const input = { gatewayId: 'gw', version: 'v', startedMs: 0, drops: [] }
  now = 60_000
  registry.inc('edgefwd_events_accepted_total', undefined, 100)
  registry.inc('edgefwd_events_acked_total', { priority: 'normal' }, 90)
  registry.inc('edgefwd_events_dropped_total', { priority: 'low', reason: 'evicted_for_space' }, 10)
  const first = await beats.build(input)
  t.match(first, { intervalS: 60, uptimeS: 60, eventsDelivered: 90, eventsDropped: 17, deliverySuccessRatio: 0.9, deliverySuccessRatioInterval: 0.9, lossRatio: 0.1, lossRatioInterval: 0.1 })
  now = 90_000
  registry.inc('edgefwd_events_accepted_total', undefined, 50)
  registry.inc('edgefwd_events_acked_total', { priority: 'normal' }, 50)
  const second = await beats.build(input)
  t.match(second, { intervalS: 30, deliverySuccessRatio: 140 / 150, deliverySuccessRatioInterval: 1, lossRatio: 10 / 150, lossRatioInterval: 0 })
  now = 120_000
  const idle = await beats.build(input)
  t.match(idle, { deliverySuccessRatioInterval: 1, lossRatioInterval: 0 }, 'nothing happened: 1 and 0, not NaN')
})
