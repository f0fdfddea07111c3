import t from 'tap'
import { loadConfig } from '../../src/config/index.js'
import { EdgefwdError } from '../../src/errors.js'
import type { FrameResult } from '../../src/ingest/frame.js'
import { ingestOptions } from '../../src/ingest/options.js'
import { IngestPipeline } from '../../src/ingest/pipeline.js'
import type { DeviceFrameData } from '../../src/proto/codec.js'
import { openLevelStore, openMemoryStore } from '../../src/store/index.js'
import { captureLogger, silentLogger } from '../helpers/logger.js'
import { FakeSink } from '../integration/helpers/sinks.js'
import { ingestTestOptions } from '../helpers/ingest-options.js'

const T0 = 1_700_000_000_000

const options = ingestTestOptions

function ev (deviceId: string, seq: number, extra: Partial<DeviceFrameData> = {}, more: { bytes?: number, authenticated?: boolean } = {}): FrameResult {
  return {
    ok: true,
    kind: 'event',
    event: { deviceId, seq, priority: 1, stream: 'telemetry', ...extra },
    authenticated: more.authenticated ?? false,
    bytes: more.bytes ?? 40
  }
}

function bad (reason: 'bad_crc' | 'bad_cobs' | 'oversize', deviceId?: string): FrameResult {
  return deviceId === undefined
    ? { ok: false, reason, detail: 'test', bytes: 10 }
    : { ok: false, reason, deviceId, detail: 'test', bytes: 10 }
}

function clock (start = T0): { now: () => number, advance: (ms: number) => void } {
  let now = start
  return { now: () => now, advance: (ms) => { now += ms } }
}

t.test('valid events become EventRecords in one append per submit; acks name the highest seq per device', async t => {
  const sink = new FakeSink()
  const p = new IngestPipeline(sink, options(), silentLogger(), () => T0)
  const raw = new Uint8Array([1, 2, 3])
  const result = await p.submit('tcp', [
    ev('a', 5, { deviceTimeMs: T0 - 10, uptimeMs: 99, value: { kind: 'raw', raw }, tags: { room: 'k' }, priority: 2 }),
    ev('b', 1),
    ev('a', 7),
    ev('a', 6)
  ])
  t.same(sink.calls, [4], 'one append for the whole read')
  t.same(result, { accepted: 4, acks: [{ deviceId: 'a', seq: 7 }, { deviceId: 'b', seq: 1 }], settled: true })
  t.same(sink.events[0], {
    deviceId: 'a', deviceSeq: 5, gatewayTimeMs: T0, priority: 2, stream: 'telemetry',
    deviceTimeMs: T0 - 10, deviceUptimeMs: 99, value: { kind: 'raw', raw: new Uint8Array([1, 2, 3]) }, tags: { room: 'k' }
  })
  t.notOk('clockSkewed' in (sink.events[0] ?? {}), 'within the skew: no flag')
  const c = p.counters()
  t.equal(c.frames, 4)
  t.equal(c.events, 4)
  t.equal(c.store.durable, 4)
  t.equal(c.devices.a?.events, 3)
  t.equal(c.devices.a?.lastSeq, 6)
  t.equal(c.devices.a?.seqGaps, 1, 'seq 5 → 7 skipped one')
  t.equal(c.transports.tcp?.frames, 4)
  t.equal(c.transports.tcp?.bytes, 160)
})

t.test('an empty read and a read of only rejects append nothing', async t => {
  const sink = new FakeSink()
  const p = new IngestPipeline(sink, options(), silentLogger())
  t.same(await p.submit('udp', []), { accepted: 0, acks: [], settled: true })
  t.same(await p.submit('udp', [bad('bad_crc'), bad('oversize')]), { accepted: 0, acks: [], settled: true }, 'rejected frames are settled: counted, never stored')
  t.same(sink.calls, [])
  const c = p.counters()
  t.equal(c.frames, 2)
  t.equal(c.rejected.bad_crc, 1)
  t.equal(c.rejected.oversize, 1)
  t.equal(c.rejected.bad_auth, 0, 'every reason is present in the snapshot')
  t.same(c.transports.udp?.rejected, { bad_crc: 1, oversize: 1 })
})

t.test('rejects are counted per device only for devices already in the table', async t => {
  const p = new IngestPipeline(new FakeSink(), options(), silentLogger())
  await p.submit('tcp', [ev('known', 1), bad('bad_crc', 'known'), bad('bad_crc', 'forged-1'), bad('bad_cobs', 'forged-2')])
  const c = p.counters()
  t.same(c.devices.known?.rejected, { bad_crc: 1 })
  t.same(Object.keys(c.devices), ['known'], 'ids from rejected frames do not enter the table')
  t.equal(c.rejected.bad_crc, 2)
})

t.test('unknown_device when unknown devices are refused; exact ids and patterns admit', async t => {
  const sink = new FakeSink()
  const p = new IngestPipeline(sink, options({
    allowUnknownDevices: false,
    devices: [{ pattern: 'pump-1' }, { pattern: 'sensor-*' }, { pattern: 'v?' }]
  }), silentLogger())
  const r = await p.submit('udp', [ev('pump-1', 1), ev('sensor-77', 1), ev('v2', 1), ev('v22', 1), ev('pump-2', 1), ev('intruder', 1)])
  t.equal(r.accepted, 3)
  t.same(sink.events.map(e => e.deviceId), ['pump-1', 'sensor-77', 'v2'])
  const c = p.counters()
  t.equal(c.rejected.unknown_device, 3)
  t.notOk('intruder' in c.devices, 'refused devices take no table entry')
})

t.test('a keyed device needs authenticated frames; keyFor serves exact and pattern keys', async t => {
  const key = new Uint8Array(16).fill(7)
  const fleet = new Uint8Array(32).fill(9)
  const sink = new FakeSink()
  const p = new IngestPipeline(sink, options({ devices: [{ pattern: 'locked', key }, { pattern: 'fleet-*', key: fleet }, { pattern: 'open' }] }), silentLogger())
  t.equal(p.frameOptions.keyFor('locked'), key)
  t.equal(p.frameOptions.keyFor('fleet-3'), fleet)
  t.equal(p.frameOptions.keyFor('open'), undefined)
  t.equal(p.frameOptions.keyFor('anyone'), undefined)
  t.equal(p.frameOptions.maxFrameSize, 16384)
  await p.submit('tcp', [
    ev('locked', 1, {}, { authenticated: true }),
    ev('locked', 2),
    ev('fleet-3', 1),
    ev('open', 1),
    { ok: true, kind: 'hello', hello: { deviceId: 'locked', firmwareVersion: 'x', capabilities: 1 }, authenticated: false, bytes: 20 }
  ])
  t.same(sink.events.map(e => `${e.deviceId}:${e.deviceSeq}`), ['locked:1', 'open:1'])
  const c = p.counters()
  t.equal(c.rejected.bad_auth, 3)
  t.same(c.devices.locked?.rejected, { bad_auth: 2 })
  t.equal(c.hellos, 0, 'an unauthenticated hello of a keyed device is refused too')
})

t.test('hello frames are counted and logged, never stored', async t => {
  const { logger, records } = captureLogger('info')
  const sink = new FakeSink()
  const p = new IngestPipeline(sink, options(), logger)
  const hello: FrameResult = { ok: true, kind: 'hello', hello: { deviceId: 'h1', firmwareVersion: '1.2.3', capabilities: 1 }, authenticated: false, bytes: 20 }
  t.same(await p.submit('serial', [hello]), { accepted: 0, acks: [], settled: true })
  t.equal(sink.calls.length, 0)
  t.equal(p.counters().hellos, 1)
  t.equal(p.counters().devices.h1?.hellos, 1)
  t.match(records().find(r => r.msg === 'device hello'), { hello: { deviceId: 'h1', firmwareVersion: '1.2.3' } })
})

t.test('rules: per attribute the first matching rule that sets it wins; a TTL becomes the event deadline', async t => {
  const sink = new FakeSink()
  const p = new IngestPipeline(sink, options({
    rules: [
      { stream: 'debug/*', ttlMs: 3_600_000 },
      { device: 'plc-*', priority: 3 },
      { device: 'plc-*', stream: 'debug/*', priority: 0, ttlMs: 1000 },
      { device: 'cam', priority: 0, ttlMs: 60_000 }
    ]
  }), silentLogger(), () => T0)
  await p.submit('tcp', [
    ev('plc-1', 1, { stream: 'debug/trace' }),
    ev('plc-1', 2, { stream: 'alarm' }),
    ev('pump', 1, { stream: 'debug/x', priority: 2 }),
    ev('pump', 2, { stream: 'telemetry', priority: 2 }),
    ev('cam', 1, { stream: 'frames', priority: 3 })
  ])
  t.same(sink.events.map(e => [e.deviceId, e.priority, e.expiresAtMs]), [
    ['plc-1', 3, T0 + 3_600_000],
    ['plc-1', 3, undefined],
    ['pump', 2, T0 + 3_600_000],
    ['pump', 2, undefined],
    ['cam', 0, T0 + 60_000]
  ])
  t.notOk('expiresAtMs' in (sink.events[1] ?? {}), 'no TTL rule: no deadline at all')
})

t.test('a rule TTL is enforced by the store: the debug stream expires, the rest stays', async t => {
  const c = clock()
  const store = await openMemoryStore({ capacityBytes: 1 << 20, expiryIntervalMs: 0, now: c.now })
  t.teardown(async () => { await store.close() })
  const p = new IngestPipeline(store, options({ rules: [{ stream: 'debug', ttlMs: 60_000 }] }), silentLogger(), c.now)
  await p.submit('tcp', [ev('d', 1, { stream: 'debug' }), ev('d', 2, { stream: 'telemetry' })])
  c.advance(60_001)
  t.equal(await store.expire(), 1)
  const lease = await store.lease(10, 1 << 20)
  t.same(lease?.events.length, 1)
  t.same(lease?.report?.counts.map(x => [x.reason, x.count]), [['expired_ttl', 1]])
})

t.test('priority rules: first match wins, by device and stream pattern; no match keeps the device priority', async t => {
  const sink = new FakeSink()
  const p = new IngestPipeline(sink, options({
    rules: [
      { device: 'boiler-*', stream: 'alarm', priority: 3 },
      { stream: 'alarm', priority: 2 },
      { device: 'boiler-*', priority: 0 },
      { stream: 'debug*', priority: 0 }
    ]
  }), silentLogger())
  await p.submit('tcp', [
    ev('boiler-1', 1, { stream: 'alarm', priority: 1 }),
    ev('pump', 1, { stream: 'alarm', priority: 1 }),
    ev('boiler-1', 2, { stream: 'telemetry', priority: 3 }),
    ev('pump', 2, { stream: 'debug-trace', priority: 2 }),
    ev('pump', 3, { stream: 'telemetry', priority: 2 })
  ])
  t.same(sink.events.map(e => e.priority), [3, 2, 0, 0, 2])
})

t.test('clock skew: flagged beyond maxClockSkew either way, counted; no device time, no flag', async t => {
  const sink = new FakeSink()
  const p = new IngestPipeline(sink, options({ maxClockSkewMs: 1000 }), silentLogger(), () => T0)
  await p.submit('udp', [
    ev('d', 1, { deviceTimeMs: T0 - 1000 }),
    ev('d', 2, { deviceTimeMs: T0 - 1001 }),
    ev('d', 3, { deviceTimeMs: T0 + 5000 }),
    ev('d', 4, { uptimeMs: 5 }),
    ev('d', 5, { deviceTimeMs: 0 })
  ])
  t.same(sink.events.map(e => e.clockSkewed === true), [false, true, true, false, true])
  t.equal(p.counters().clockSkewed, 3)
  t.equal(sink.events[1]?.gatewayTimeMs, T0, 'gateway time is now()')
})

t.test('durable=false (disk full): events stored, no acks', async t => {
  const sink = new FakeSink()
  sink.durable = false
  const p = new IngestPipeline(sink, options(), silentLogger())
  t.same(await p.submit('tcp', [ev('a', 1), ev('a', 2)]), { accepted: 2, acks: [], settled: false }, 'held in memory only: not settled')
  t.equal(p.counters().store.notDurable, 2)
  t.equal(p.counters().store.durable, 0)
})

t.test('events the store refuses are not acknowledged; the others are', async t => {
  const sink = new FakeSink()
  sink.refuse = (e) => e.deviceSeq === 9 ? 'rejected_full' : undefined
  const p = new IngestPipeline(sink, options(), silentLogger())
  const r = await p.submit('tcp', [ev('a', 8), ev('a', 9), ev('b', 9)])
  t.same(r, { accepted: 1, acks: [{ deviceId: 'a', seq: 8 }], settled: true }, 'refused by the store: counted drops, so settled')
  t.same(p.counters().store.refused, { rejected_full: 2 })
})

t.test('a failing append resolves without acks, counts and logs; a too-large event is retried alone', async t => {
  const { logger, records } = captureLogger()
  const sink = new FakeSink()
  const p = new IngestPipeline(sink, options(), logger)
  sink.fail = () => new EdgefwdError('EDGEFWD_ERR_STORE_NOT_OPEN', 'closed')
  t.same(await p.submit('tcp', [ev('a', 1), ev('a', 2)]), { accepted: 0, acks: [], settled: false }, 'lost to a failed append: not settled')
  t.equal(p.counters().store.failed, 2)
  t.ok(records().some(r => r.msg === 'store append failed; events not stored' && r.level === 50))
  t.equal(p.pendingEvents, 0)

  sink.fail = (events) => events.some(e => e.deviceSeq === 4) ? new EdgefwdError('EDGEFWD_ERR_EVENT_TOO_LARGE', 'big') : undefined
  const r = await p.submit('tcp', [ev('a', 3), ev('a', 4), ev('a', 5), ev('b', 1)])
  t.same(r.accepted, 3)
  t.same(r.acks, [{ deviceId: 'a', seq: 5 }, { deviceId: 'b', seq: 1 }])
  t.equal(r.settled, false, 'one event lost to a failed append: the submit is not settled')
  t.same(sink.events.map(e => e.deviceSeq), [3, 5, 1])
  t.equal(p.counters().store.failed, 3)
  t.equal(p.pendingEvents, 0)
})

t.test('pendingEvents counts events whose append has not resolved', async t => {
  const sink = new FakeSink()
  sink.block()
  const p = new IngestPipeline(sink, options(), silentLogger())
  const a = p.submit('tcp', [ev('a', 1), ev('a', 2)])
  const b = p.submit('udp', [ev('b', 1)])
  t.equal(p.pendingEvents, 3)
  sink.release()
  await Promise.all([a, b])
  t.equal(p.pendingEvents, 0)
})

t.test('the device table is bounded: 5000 ids, 16 entries, forgotten ones counted', async t => {
  const p = new IngestPipeline(new FakeSink(), options({ maxTrackedDevices: 16 }), silentLogger())
  for (let batch = 0; batch < 50; batch++) {
    await p.submit('udp', Array.from({ length: 100 }, (_, i) => ev(`dev-${batch * 100 + i}`, 1)))
  }
  const c = p.counters()
  t.equal(Object.keys(c.devices).length, 16)
  t.equal(c.devicesForgotten, 5000 - 16)
  t.ok('dev-4999' in c.devices, 'the most recent are kept')
})

t.test('reject logs are throttled: one line per reason per interval, then a count of the rest', async t => {
  const { logger, records } = captureLogger()
  const c = clock()
  const p = new IngestPipeline(new FakeSink(), options({ logIntervalMs: 10_000 }), logger, c.now)
  for (let i = 0; i < 100; i++) await p.submit('udp', [bad('bad_crc'), bad('oversize')])
  const lines = (): Array<Record<string, unknown>> => records().filter(r => r.msg === 'frame rejected')
  t.equal(lines().length, 2, 'one per reason')
  c.advance(10_000)
  await p.submit('udp', [bad('bad_crc')])
  t.equal(lines().length, 3)
  t.match(lines()[2], { reason: 'bad_crc', suppressed: 99, level: 40 })
  t.equal(p.counters().rejected.bad_crc, 101, 'counters are exact')
})

t.test('options from the configuration section', async t => {
  const config = await loadConfig({
    overrides: [
      'ingest.devices={ pump-1: { key: "000102030405060708090a0b0c0d0e0f", rateLimit: { eventsPerSecond: 5 } }, "s-*": {} }',
      'ingest.rules=[{ stream: alarm, priority: critical }, { device: "cam-*", stream: "debug/*", ttl: 2h }, { device: x, priority: low, ttl: 500ms }]',
      'ingest.allowUnknownDevices=false'
    ]
  })
  const o = ingestOptions(config.ingest)
  t.same(o.devices, [
    { pattern: 'pump-1', key: Uint8Array.from({ length: 16 }, (_, i) => i), rateLimit: { eventsPerSecond: 5 } },
    { pattern: 's-*' }
  ])
  t.same(o.rules, [{ stream: 'alarm', priority: 3 }, { device: 'cam-*', stream: 'debug/*', ttlMs: 7_200_000 }, { device: 'x', priority: 0, ttlMs: 500 }])
  await t.rejects(loadConfig({ overrides: ['ingest.rules=[{ stream: alarm }]'] }), { message: /ingest\.rules\.0: a rule must set priority, ttl or both/ })
  await t.rejects(loadConfig({ overrides: ['ingest.rules=[{ stream: alarm, ttl: 0s }]'] }), { code: 'EDGEFWD_ERR_CONFIG_INVALID' })
  t.same(o.rateLimit, { eventsPerSecond: 1000, bytesPerSecond: 1024 * 1024, burstMs: 1000 })
  t.equal(o.maxFrameSize, 16384)
  t.equal(o.maxClockSkewMs, 300_000)
  t.equal(o.allowUnknownDevices, false)
})

t.test('end to end: a memory store is not durable (no acks); a LevelDB store is', async t => {
  const memory = await openMemoryStore({ capacityBytes: 1 << 20, groupCommit: { windowMs: 1, maxEvents: 1000 } })
  t.teardown(async () => await memory.close())
  const events = [ev('a', 1, { value: { kind: 'number', number: 21.5 } }), ev('a', 2, { value: { kind: 'text', text: 'hi' } })]
  const viaMemory = new IngestPipeline(memory, options(), silentLogger())
  t.same(await viaMemory.submit('tcp', events), { accepted: 2, acks: [], settled: false })
  t.equal(memory.stats().events, 2)

  const level = await openLevelStore(t.testdir(), { capacityBytes: 1 << 20, groupCommit: { windowMs: 1, maxEvents: 1000 } }, silentLogger())
  t.teardown(async () => await level.close())
  const viaLevel = new IngestPipeline(level, options(), silentLogger())
  t.same(await viaLevel.submit('tcp', events), { accepted: 2, acks: [{ deviceId: 'a', seq: 2 }], settled: true })
  t.equal(level.stats().events, 2)
})
