import t from 'tap'
import type { FrameResult } from '../../src/ingest/frame.js'
import { globToRegExp, matcher } from '../../src/ingest/glob.js'
import { LruMap } from '../../src/ingest/lru-map.js'
import type { IngestOptions } from '../../src/ingest/options.js'
import { IngestPipeline } from '../../src/ingest/pipeline.js'
import { TokenBucket } from '../../src/ingest/rate-limit.js'
import { silentLogger } from '../helpers/logger.js'
import { FakeSink } from '../integration/helpers/sinks.js'

function ev (deviceId: string, seq: number, bytes = 50): FrameResult {
  return { ok: true, kind: 'event', event: { deviceId, seq, priority: 1, stream: 's' }, authenticated: false, bytes }
}

function options (over: Partial<IngestOptions>): IngestOptions {
  return {
    maxFrameSize: 1000,
    maxClockSkewMs: 1000,
    allowUnknownDevices: true,
    devices: [],
    rateLimit: { eventsPerSecond: 10, bytesPerSecond: 0, burstMs: 1000 },
    rules: [],
    maxTrackedDevices: 64,
    ...over
  }
}

t.test('token bucket: a full burst, then the refill rate; both budgets must allow', async t => {
  const b = new TokenBucket({ eventsPerSecond: 10, bytesPerSecond: 1000, burstMs: 500 }, 100, 0)
  let passed = 0
  for (let i = 0; i < 20; i++) if (b.take(0, 10)) passed++
  t.equal(passed, 5, 'burst of 500 ms at 10/s = 5 events')
  t.notOk(b.take(99, 10), 'less than one event refilled after 99 ms')
  t.ok(b.take(100, 10), 'one event refilled after 100 ms')
  t.notOk(b.take(100, 10))
  t.ok(b.take(10_000, 100), 'long idle refills, capped at the burst')
  let again = 0
  for (let i = 0; i < 20; i++) if (b.take(10_000, 1)) again++
  t.equal(again, 4, 'capped: 5 per burst, one already used')

  const bytes = new TokenBucket({ eventsPerSecond: 0, bytesPerSecond: 1000, burstMs: 100 }, 400, 0)
  t.ok(bytes.take(0, 400), 'the byte bucket holds at least one largest frame')
  t.notOk(bytes.take(0, 1), 'bytes exhausted; events unlimited does not help')
  t.notOk(bytes.take(-5000, 1), 'a clock stepping back refills nothing')
  t.ok(bytes.take(-4900, 100), '...and refills from the new time on, not from the old')

  const free = new TokenBucket({ eventsPerSecond: 0, bytesPerSecond: 0, burstMs: 1 }, 1, 0)
  for (let i = 0; i < 10_000; i++) if (!free.take(0, 1_000_000)) { t.fail('0 means no limit'); break }
})

t.test('globs: * and ? only, everything else literal', async t => {
  t.ok(matcher('sensor-*')('sensor-12'))
  t.ok(matcher('sensor-*')('sensor-'))
  t.notOk(matcher('sensor-*')('xsensor-1'))
  t.ok(matcher('a?c')('abc'))
  t.notOk(matcher('a?c')('ac'))
  t.ok(matcher('a.c')('a.c'))
  t.notOk(matcher('a.c')('abc'), '. is literal')
  t.ok(matcher('(x)[1]^$|\\')('(x)[1]^$|\\'), 'regex syntax is literal')
  t.ok(matcher(undefined)('anything'))
  t.ok(matcher('exact')('exact'))
  t.notOk(matcher('exact')('exactly'))
  t.equal(globToRegExp('*.x').source, '^.*\\.x$')
})

t.test('LruMap forgets the least recently used entry', async t => {
  const evicted: string[] = []
  const m = new LruMap<string, number>(3, (k) => evicted.push(k))
  m.set('a', 1)
  m.set('b', 2)
  m.set('c', 3)
  m.get('a')
  m.set('d', 4)
  t.same(evicted, ['b'])
  t.same([...m.entries()].map(([k]) => k), ['c', 'a', 'd'])
  m.set('c', 30)
  t.equal(m.size, 3)
  t.equal(m.evicted, 1)
  t.throws(() => new LruMap(0))
})

t.test('a babbling device is rate limited; a well-behaved one loses nothing', async t => {
  let now = 0
  const sink = new FakeSink()
  const p = new IngestPipeline(sink, options({}), silentLogger(), () => now)
  let goodSeq = 0
  let badSeq = 0
  // 3 simulated seconds in 100 ms steps: the babbler sends 50 per step, the good one 1.
  for (let step = 0; step < 30; step++) {
    const frames = Array.from({ length: 50 }, () => ev('babbler', ++badSeq))
    frames.splice(25, 0, ev('good', ++goodSeq))
    await p.submit('udp', frames)
    now += 100
  }
  const stored = (id: string): number => sink.events.filter(e => e.deviceId === id).length
  t.equal(stored('good'), 30, 'every event of the well-behaved device')
  // burst 10 + 10/s × 2.9 s of refill
  t.equal(stored('babbler'), 39)
  const c = p.counters()
  t.equal(c.rejected.rate_limited, 1500 - 39)
  t.same(c.devices.babbler?.rejected, { rate_limited: 1500 - 39 })
  t.same(c.devices.good?.rejected, {})
})

t.test('per-device overrides by id and pattern; bytes/s limits too', async t => {
  const sink = new FakeSink()
  const p = new IngestPipeline(sink, options({
    devices: [
      { pattern: 'fast', rateLimit: { eventsPerSecond: 100 } },
      { pattern: 'cam-*', rateLimit: { eventsPerSecond: 0, bytesPerSecond: 2000 } }
    ]
  }), silentLogger(), () => 0)
  await p.submit('tcp', [
    ...Array.from({ length: 200 }, (_, i) => ev('fast', i)),
    ...Array.from({ length: 200 }, (_, i) => ev('slow', i)),
    ...Array.from({ length: 10 }, (_, i) => ev('cam-1', i, 500))
  ])
  const stored = (id: string): number => sink.events.filter(e => e.deviceId === id).length
  t.equal(stored('fast'), 100)
  t.equal(stored('slow'), 10)
  t.equal(stored('cam-1'), 4, '2000 bytes of burst / 500-byte frames')
})
