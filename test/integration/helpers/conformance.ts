/**
 * The ingest transport contract, run against every transport (udp, tcp frames, tcp JSON lines,
 * unix socket, serial over a socat pty pair, stdin). Each test starts its own pipeline and
 * transport; what a transport cannot do (UDP acks, tags in JSON lines) is asserted as absent.
 */
import type { Test } from 'tap'
import type { RejectReason } from '../../../src/ingest/reasons.js'
import { IngestPipeline } from '../../../src/ingest/pipeline.js'
import type { IngestOptions } from '../../../src/ingest/options.js'
import type { TransportContext } from '../../../src/ingest/transports/index.js'
import { decodeBatch } from '../../../src/proto/codec.js'
import { openLevelStore } from '../../../src/store/index.js'
import type { EventSink } from '../../../src/store/event-store.js'
import { silentLogger } from '../../helpers/logger.js'
import { encode, event, type Wire } from './device.js'
import { FakeSink } from './sinks.js'
import { ingestTestOptions } from '../../helpers/ingest-options.js'
import { waitFor } from '../../helpers/wait.js'
import type { TransportKind } from './transport-rigs.js'

export function setup (sink: EventSink, over: Partial<IngestOptions> = {}, ctxOver: Partial<TransportContext> = {}): { pipeline: IngestPipeline, ctx: TransportContext } {
  const pipeline = new IngestPipeline(sink, ingestTestOptions({ maxFrameSize: 1024, maxClockSkewMs: 60_000, ...over }), silentLogger())
  return { pipeline, ctx: { pipeline, logger: silentLogger(), connectionEvents: 1000, ackTimeoutMs: 5000, stopTimeoutMs: 2000, ...ctxOver } }
}

/** Bad inputs a device can send on `wire`, each with the reasons it may be rejected with. */
function malformed (wire: Wire): Array<{ what: string, bytes: Uint8Array, reasons: RejectReason[] }> {
  const valid = encode(wire, event('m', 999))
  const big = encode(wire, event('m', 998, { value: { kind: 'text', text: 'x'.repeat(1000) } }))
  if (wire === 'jsonl') {
    return [
      { what: 'not JSON', bytes: Buffer.from('hello there\n'), reasons: ['bad_field'] },
      { what: 'oversize line', bytes: big, reasons: ['oversize'] },
      { what: 'truncated line', bytes: Buffer.concat([valid.subarray(0, 10), Buffer.from('\n')]), reasons: ['bad_field'] },
      { what: 'a rule broken', bytes: Buffer.from('{"id":"m","seq":-1}\n'), reasons: ['bad_field'] }
    ]
  }
  const badCrc = Buffer.from(encode('datagram', event('m', 997)))
  badCrc[badCrc.length - 1] = (badCrc[badCrc.length - 1] as number) ^ 0xff
  if (wire === 'datagram') {
    return [
      { what: 'garbage', bytes: Buffer.from('hello world'), reasons: ['bad_crc'] },
      { what: 'bad CRC', bytes: badCrc, reasons: ['bad_crc'] },
      { what: 'oversize', bytes: big, reasons: ['oversize'] },
      { what: 'truncated', bytes: valid.subarray(0, 10), reasons: ['bad_crc'] }
    ]
  }
  const stuffed = encode('stream', event('m', 997))
  const crcBroken = Buffer.from(stuffed)
  crcBroken[crcBroken.length - 2] = (crcBroken[crcBroken.length - 2] as number) === 0x01 ? 0x02 : 0x01
  return [
    { what: 'garbage (a COBS block past the end)', bytes: Buffer.from([0x05, 0x41, 0x42, 0x00]), reasons: ['bad_cobs'] },
    { what: 'bad CRC', bytes: crcBroken, reasons: ['bad_crc', 'bad_cobs'] },
    { what: 'oversize', bytes: big, reasons: ['oversize'] },
    // A device reset mid-frame, then its flush 0x00.
    { what: 'truncated', bytes: Buffer.concat([valid.subarray(0, 10), Buffer.from([0])]), reasons: ['bad_crc', 'bad_cobs', 'bad_field'] }
  ]
}

export function transportConformance (t: Test, kind: TransportKind): void {
  const { name, wire } = kind

  t.test(`${name}: valid events arrive in a LevelDB store${kind.acks ? ' and are acked with the highest seq' : ''}`, async t => {
    const store = await openLevelStore(t.testdir(), { capacityBytes: 1 << 24, groupCommit: { windowMs: 1, maxEvents: 1000 } }, silentLogger())
    t.teardown(async () => await store.close())
    const { pipeline, ctx } = setup(store)
    const rig = await kind.start(t, ctx)
    const peer = await rig.connect()
    for (const id of ['d1', 'd2', 'd3']) {
      const frames = Array.from({ length: 20 }, (_, i) => encode(wire, event(id, i + 1)))
      if (wire === 'datagram') for (const f of frames) await peer.send(f)
      else await peer.send(Buffer.concat(frames))
    }
    await waitFor('60 stored events', () => store.stats().events === 60, 5000)
    const lease = await store.lease(1000, 1 << 24)
    const stored = decodeBatch(lease?.batch ?? new Uint8Array()).map(e => `${e.deviceId}:${e.deviceSeq}`).sort()
    t.same(stored, ['d1', 'd2', 'd3'].flatMap(id => Array.from({ length: 20 }, (_, i) => `${id}:${i + 1}`)).sort())
    if (kind.acks) {
      await waitFor('acks for seq 20', () => ['d1', 'd2', 'd3'].every(id => peer.acks.highest(id) === 20), 5000)
      t.same(peer.acks.problems, [], 'every ack frame parses')
      t.ok(peer.acks.acks.length <= 60, 'acks are coalesced per batch')
    }
    t.equal(pipeline.counters().transports[name]?.frames, 60)
    await rig.transport.stop()
  })

  t.test(`${name}: malformed input is counted by reason and the next valid frame is served`, async t => {
    const sink = new FakeSink()
    const { pipeline, ctx } = setup(sink)
    const rig = await kind.start(t, ctx)
    const peer = await rig.connect()
    const cases = malformed(wire)
    for (const [i, c] of cases.entries()) {
      await peer.send(c.bytes)
      await peer.send(encode(wire, event('ok', i + 1)))
    }
    await waitFor('every valid event', () => sink.events.length === cases.length, 5000)
    t.same(sink.events.map(e => e.deviceSeq), cases.map((_, i) => i + 1))
    const counters = pipeline.counters()
    const rejected = Object.values(counters.rejected).reduce((a, b) => a + b, 0)
    t.equal(rejected, cases.length, 'one rejection per bad input')
    for (const c of cases) {
      t.ok(c.reasons.some(r => (counters.transports[name]?.rejected[r] ?? 0) > 0), `${c.what}: counted as ${c.reasons.join(' or ')}`)
    }
    if (kind.acks) await waitFor('ack after the bad input', () => peer.acks.highest('ok') === cases.length, 5000)
  })

  t.test(`${name}: no ack while the store is not durable (disk full)`, async t => {
    const sink = new FakeSink()
    sink.durable = false
    const { ctx } = setup(sink)
    const rig = await kind.start(t, ctx)
    const peer = await rig.connect()
    for (let seq = 1; seq <= 5; seq++) await peer.send(encode(wire, event('d', seq)))
    await waitFor('5 events in the sink', () => sink.events.length === 5, 5000)
    await new Promise(resolve => setTimeout(resolve, 150)) // a span in which no ack may come
    t.same(peer.acks.acks, [], 'held in memory only: not acknowledged')
    sink.durable = true
    await peer.send(encode(wire, event('d', 6)))
    if (kind.acks) {
      await waitFor('an ack once durable', () => peer.acks.acks.length > 0, 5000)
      t.same(peer.acks.acks, [{ deviceId: 'd', seq: 6 }])
    } else {
      await waitFor('the 6th event', () => sink.events.length === 6, 5000)
      t.same(peer.acks.acks, [], `${name} has no acks`)
    }
  })

  t.test(`${name}: a babbling device is rate limited, a well-behaved one loses nothing`, async t => {
    const sink = new FakeSink()
    const { pipeline, ctx } = setup(sink, { rateLimit: { eventsPerSecond: 10, bytesPerSecond: 0, burstMs: 1000 } })
    const rig = await kind.start(t, ctx)
    const peer = await rig.connect()
    const frames: Uint8Array[] = []
    for (let i = 1; i <= 100; i++) {
      frames.push(encode(wire, event('babbler', i)))
      if (i % 20 === 0) frames.push(encode(wire, event('good', i / 20)))
    }
    if (wire === 'datagram') for (const f of frames) await peer.send(f)
    else await peer.send(Buffer.concat(frames))
    await waitFor('105 frames', () => pipeline.counters().frames === 105, 5000)
    const stored = (id: string): number => sink.events.filter(e => e.deviceId === id).length
    t.equal(stored('good'), 5)
    const babbled = stored('babbler')
    t.ok(babbled >= 10 && babbled <= 20, `the babbler got its burst of 10 and little more (${babbled})`)
    t.equal(pipeline.counters().rejected.rate_limited, 100 - babbled)
    t.same(pipeline.counters().devices.good?.rejected, {})
  })

  t.test(`${name}: device policy: keys, unknown devices, priority rules, clock skew`, async t => {
    const key = new Uint8Array(16).fill(0x5a)
    const sink = new FakeSink()
    const { pipeline, ctx } = setup(sink, {
      allowUnknownDevices: false,
      devices: [{ pattern: 'keyed', key }, { pattern: 'dev-*' }],
      rules: [{ stream: 'alarm', priority: 3 }],
      maxClockSkewMs: 60_000
    })
    const rig = await kind.start(t, ctx)
    const peer = await rig.connect()
    const now = Date.now()
    const inputs = [
      encode(wire, event('dev-1', 1, { stream: 'alarm', priority: 0 })),
      encode(wire, event('dev-1', 2, { deviceTimeMs: now - 600_000 })),
      encode(wire, event('dev-1', 3, { deviceTimeMs: now })),
      encode(wire, event('keyed', 1), key),
      encode(wire, event('keyed', 2)),
      encode(wire, event('keyed', 3), new Uint8Array(16).fill(0x33)),
      encode(wire, event('stranger', 1))
    ]
    for (const bytes of inputs) await peer.send(bytes)
    await waitFor('every frame', () => pipeline.counters().frames === inputs.length, 5000)
    const tagged = wire !== 'jsonl'
    t.same(sink.events.map(e => `${e.deviceId}:${e.deviceSeq}`), ['dev-1:1', 'dev-1:2', 'dev-1:3', ...(tagged ? ['keyed:1'] : [])],
      tagged ? 'a keyed device with a good tag is accepted' : 'JSON lines cannot carry a tag: keyed devices are refused')
    t.equal(sink.events[0]?.priority, 3, 'the rule raised an alarm to critical')
    t.same(sink.events.map(e => e.clockSkewed === true), [false, true, false, ...(tagged ? [false] : [])])
    const c = pipeline.counters()
    t.equal(c.rejected.bad_auth, tagged ? 2 : 3, 'missing and wrong tags are bad_auth')
    t.equal(c.rejected.unknown_device, 1)
    if (kind.acks) {
      await waitFor('dev-1 acked', () => peer.acks.highest('dev-1') === 3, 5000)
      t.equal(peer.acks.highest('keyed'), tagged ? 1 : undefined)
      t.equal(peer.acks.highest('stranger'), undefined)
    }
  })

  t.test(`${name}: stop() returns within its bound while an append hangs`, async t => {
    const sink = new FakeSink()
    sink.block()
    const { ctx } = setup(sink, {}, { stopTimeoutMs: 300 })
    const rig = await kind.start(t, ctx)
    const peer = await rig.connect()
    await peer.send(encode(wire, event('d', 1)))
    await waitFor('the append to start', () => sink.calls.length === 1, 5000)
    const started = Date.now()
    await rig.transport.stop()
    const took = Date.now() - started
    t.ok(took < 2000, `stopped in ${took} ms`)
    sink.release()
  })
}
