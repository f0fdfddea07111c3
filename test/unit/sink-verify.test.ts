import t from 'tap'
import fc from 'fast-check'
import { concatBatch, encodeEnvelope, encodeEvent, type DroppedRangeData, type EvictionReportData, type StoredEvent } from '../../src/proto/codec.js'
import { decodeEnvelopeMessage, type DecodedEnvelope } from '../../src/sink/decode.js'
import { IntervalSet } from '../../src/sink/interval-set.js'
import { SequenceVerifier } from '../../src/sink/verify.js'

function ev (deviceId: string, deviceSeq: number): StoredEvent {
  return { deviceId, deviceSeq, gatewayTimeMs: 1_700_000_000_000, priority: 1, stream: 's', storeSeq: deviceSeq }
}

function range (deviceId: string, firstSeq: number, lastSeq: number): DroppedRangeData {
  return { deviceId, firstSeq, lastSeq, count: lastSeq - firstSeq + 1, priority: 0, reason: 'evicted_for_space' }
}

function report (ranges: DroppedRangeData[], rangesTruncated = false): EvictionReportData {
  return { counts: [], ranges, rangesTruncated }
}

/** Through the real codec, so the test covers what the sink will actually be fed. */
function envelope (gatewayId: string, batchSeq: number, events: StoredEvent[], evictionReport?: EvictionReportData): DecodedEnvelope {
  return decodeEnvelopeMessage(encodeEnvelope({
    schemaVersion: 1, gatewayId, batchSeq, compression: 'none', firstStoreSeq: 0, lastStoreSeq: 0,
    eventCount: events.length, payload: concatBatch(events.map((e) => encodeEvent(e, e.storeSeq))), createdMs: 0,
    ...(evictionReport === undefined ? {} : { evictionReport })
  }))
}

const seqs = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)

t.test('a complete stream: all delivered, nothing missing', async (t) => {
  const v = new SequenceVerifier()
  v.addEnvelope(envelope('gw', 1, seqs(5, 9).map((s) => ev('a', s))))
  v.addEnvelope(envelope('gw', 2, [...seqs(10, 12).map((s) => ev('a', s)), ev('b', 1)]))
  const s = v.summary()
  t.same({ ...s, perDevice: undefined }, {
    delivered: 9, duplicates: 0, explainedMissing: 0, unexplainedMissing: 0, truncatedReports: 0, invalidRanges: 0,
    perDevice: undefined, unexplainedGaps: [], unexplainedGapsTruncated: false
  })
  t.same(s.perDevice.map((d) => [d.deviceId, d.lowSeq, d.highSeq, d.delivered]), [['a', 5, 12, 8], ['b', 1, 1, 1]])
})

t.test('duplicates after a restart regrouped the batches', async (t) => {
  const v = new SequenceVerifier()
  v.addEnvelope(envelope('gw', 1, seqs(1, 4).map((s) => ev('a', s))))
  v.addEnvelope(envelope('gw', 2, seqs(5, 8).map((s) => ev('a', s)))) // PUBACK lost, gateway restarts
  v.addEnvelope(envelope('gw', 3, seqs(3, 10).map((s) => ev('a', s)))) // same events, other batch
  const s = v.summary()
  t.equal(s.delivered, 10)
  t.equal(s.duplicates, 6)
  t.equal(s.unexplainedMissing, 0)
})

t.test('a gap is explained by a report arriving before or after it', async (t) => {
  for (const order of ['report first', 'report last']) {
    const v = new SequenceVerifier()
    const withReport = envelope('gw', 9, [ev('other', 1)], report([range('a', 4, 6)]))
    if (order === 'report first') v.addEnvelope(withReport)
    v.addEnvelope(envelope('gw', 1, [...seqs(1, 3), ...seqs(7, 9)].map((s) => ev('a', s))))
    if (order === 'report last') v.addEnvelope(withReport)
    const s = v.summary()
    t.equal(s.explainedMissing, 3, order)
    t.equal(s.unexplainedMissing, 0, order)
    t.same(s.unexplainedGaps, [], order)
  }
})

t.test('a report from another gateway explains nothing; unexplained gaps are listed', async (t) => {
  const v = new SequenceVerifier({ maxGapsListed: 2 })
  v.addEnvelope(envelope('gw-1', 1, [1, 2, 5, 6, 9, 12].map((s) => ev('a', s))))
  v.addEnvelope(envelope('gw-2', 1, [], report([range('a', 3, 4)], true)))
  v.addEvictionReport('gw-1', report([range('a', 10, 10), { ...range('a', 1, 1), firstSeq: 8, lastSeq: 7 }]))
  const s = v.summary()
  t.equal(s.explainedMissing, 1 + 2, 'seq 10 on gw-1; gw-2 knows a only from its report')
  t.equal(s.unexplainedMissing, 5)
  t.same(s.unexplainedGaps, [
    { gatewayId: 'gw-1', deviceId: 'a', fromSeq: 3, toSeq: 4 },
    { gatewayId: 'gw-1', deviceId: 'a', fromSeq: 7, toSeq: 8 }
  ])
  t.equal(s.unexplainedGapsTruncated, true, 'the third gap, 11..11, is counted but not listed')
  t.equal(s.truncatedReports, 1)
  t.equal(s.invalidRanges, 1)
  t.same(s.perDevice.map((d) => [d.gatewayId, d.lowSeq, d.highSeq, d.explainedMissing]), [['gw-1', 1, 12, 1], ['gw-2', 3, 4, 2]])
})

t.test('the span: drops beyond the last event extend it; expectedFirstSeq adds the head', async (t) => {
  const v = new SequenceVerifier({ expectedFirstSeq: 1 })
  v.addEvents('gw', seqs(4, 6).map((s) => ev('a', s)))
  v.addEvictionReport('gw', report([range('a', 9, 10)]))
  const s = v.summary()
  t.same(s.unexplainedGaps.map((g) => [g.fromSeq, g.toSeq]), [[1, 3], [7, 8]])
  t.equal(s.explainedMissing, 2)
  const plain = new SequenceVerifier()
  plain.addEvents('gw', seqs(4, 6).map((s) => ev('a', s)))
  t.equal(plain.summary().unexplainedMissing, 0, 'a stream may start at any seq')
})

t.test('1M in-order events: one interval, exact counts', async (t) => {
  const v = new SequenceVerifier()
  const chunk: StoredEvent[] = []
  for (let s = 1; s <= 1_000_000; s++) {
    chunk.push(ev('a', s))
    if (chunk.length === 1000) {
      v.addEvents('gw', chunk)
      chunk.length = 0
    }
  }
  t.same(v.stats(), { devices: 1, intervals: 1 })
  const s = v.summary()
  t.equal(s.delivered, 1_000_000)
  t.equal(s.unexplainedMissing, 0)
})

t.test('IntervalSet against a model Set', async (t) => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(200), fc.nat(8))), (adds) => {
    const set = new IntervalSet()
    const model = new Set<number>()
    for (const [lo, w] of adds) {
      let fresh = 0
      for (let x = lo; x <= lo + w; x++) if (!model.has(x)) { model.add(x); fresh++ }
      if (set.add(lo, lo + w) !== fresh) return false
    }
    const pairs = [...set.intervals()]
    for (let k = 1; k < pairs.length; k++) if ((pairs[k] as number[])[0] as number <= ((pairs[k - 1] as number[])[1] as number) + 1) return false
    if (set.size !== model.size) return false
    for (let x = 0; x <= 210; x++) if (set.has(x) !== model.has(x)) return false
    return true
  }))
  t.pass()
})

t.test('property: any delivery order, redelivery and regrouping with reported drops → exact counts, nothing unexplained', async (t) => {
  const scenario = fc.record({
    first: fc.nat(1000),
    length: fc.integer({ min: 1, max: 200 }),
    dropMask: fc.array(fc.boolean(), { minLength: 200, maxLength: 200 }),
    redeliver: fc.array(fc.nat(199), { maxLength: 60 }),
    batchSize: fc.integer({ min: 1, max: 17 }),
    reportAt: fc.nat(1000),
    seed: fc.integer()
  })
  fc.assert(fc.property(scenario, ({ first, length, dropMask, redeliver, batchSize, reportAt, seed }) => {
    const all = seqs(first, first + length - 1)
    // Keep the first and last seq delivered so the span is fixed; drop the rest per the mask.
    const dropped = all.filter((_, i) => i > 0 && i < length - 1 && dropMask[i] === true)
    const kept = all.filter((s) => !dropped.includes(s))
    const copies = redeliver.map((i) => kept[i % kept.length] as number)
    const stream = [...kept, ...copies]
    // Deterministic shuffle from the seed.
    let x = seed >>> 0
    for (let i = stream.length - 1; i > 0; i--) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0
      const j = x % (i + 1)
      ;[stream[i], stream[j]] = [stream[j] as number, stream[i] as number]
    }
    // Reported as runs of consecutive drops, the way the store records them.
    const ranges: DroppedRangeData[] = []
    for (const s of dropped) {
      const last = ranges[ranges.length - 1]
      if (last !== undefined && last.lastSeq === s - 1) { last.lastSeq = s; last.count++ } else ranges.push(range('d', s, s))
    }
    const v = new SequenceVerifier()
    const cut = reportAt % (stream.length + 1)
    for (let i = 0; i <= stream.length; i += batchSize) {
      if (i <= cut && cut < i + batchSize) v.addEvictionReport('gw', report(ranges))
      v.addEvents('gw', stream.slice(i, i + batchSize).map((s) => ev('d', s)))
    }
    const s = v.summary()
    return s.delivered === kept.length && s.duplicates === copies.length &&
      s.explainedMissing === dropped.length && s.unexplainedMissing === 0 && s.unexplainedGaps.length === 0
  }))
  t.pass()
})
