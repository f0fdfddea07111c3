import t from 'tap'
import fc from 'fast-check'
import { BatchDeduper } from '../../src/sink/dedupe.js'

t.test('a redelivered batch is a duplicate, per gateway', async (t) => {
  const d = new BatchDeduper()
  t.equal(d.check('gw-1', 1), 'new')
  t.equal(d.check('gw-1', 2), 'new')
  t.equal(d.check('gw-1', 1), 'duplicate')
  t.equal(d.check('gw-2', 1), 'new', 'another gateway has its own seqs')
  t.equal(d.check('gw-1', 4), 'new')
  t.equal(d.check('gw-1', 3), 'new', 'late but unseen')
  t.equal(d.check('gw-1', 3), 'duplicate')
  t.equal(d.check('gw-1', 4), 'duplicate')
})

t.test('beyond the window the answer is beyond-window, not a guess', async (t) => {
  const d = new BatchDeduper({ window: 64 })
  t.equal(d.check('gw', 0), 'new')
  t.equal(d.check('gw', 100), 'new')
  t.equal(d.check('gw', 0), 'beyond-window')
  t.equal(d.check('gw', 36), 'beyond-window')
  t.equal(d.check('gw', 37), 'new', 'oldest seq inside the window')
  t.equal(d.check('gw', 37), 'duplicate')
  t.equal(d.check('gw', 101), 'new', 'bits slid over are cleared')
  t.equal(d.check('gw', 165), 'new')
  t.equal(d.check('gw', 101), 'beyond-window')
  t.equal(d.check('gw', 102), 'new')
})

t.test('least recently seen gateway is forgotten past maxGateways', async (t) => {
  const d = new BatchDeduper({ maxGateways: 2 })
  d.check('a', 1); d.check('b', 1); d.check('a', 2); d.check('c', 1)
  t.equal(d.stats().gateways, 2)
  t.equal(d.check('a', 2), 'duplicate', 'a was used recently and kept')
  t.equal(d.check('b', 1), 'new', 'b was forgotten')
  t.throws(() => new BatchDeduper({ window: 33 }), RangeError)
  t.throws(() => d.check('a', -1), RangeError)
})

t.test('1M distinct batch seqs: constant memory, every one new, redeliveries caught', async (t) => {
  const d = new BatchDeduper({ window: 4096 })
  let fresh = 0
  let dup = 0
  for (let s = 1; s <= 1_000_000; s++) {
    if (d.check('gw', s) === 'new') fresh++
    if (s % 1000 === 0 && d.check('gw', s - 17) === 'duplicate') dup++ // a redelivery a few batches late
  }
  t.equal(fresh, 1_000_000)
  t.equal(dup, 1000)
  t.same(d.stats(), { gateways: 1, bitmapBytes: 512 })
})

t.test('property: against a model Set, inside the window the verdict is exact', async (t) => {
  fc.assert(fc.property(fc.array(fc.nat(300), { maxLength: 400 }), (seqs) => {
    const d = new BatchDeduper({ window: 64 })
    const seen = new Set<number>()
    let highest = -1
    for (const s of seqs) {
      const verdict = d.check('gw', s)
      if (highest >= 0 && s <= highest - 64) {
        if (verdict !== 'beyond-window') return false
      } else if (verdict !== (seen.has(s) ? 'duplicate' : 'new')) {
        return false
      }
      if (verdict !== 'beyond-window') seen.add(s)
      highest = Math.max(highest, s)
    }
    return true
  }))
  t.pass()
})

t.test('forget() takes back a batch that was not written: its redelivery is new again, the others stay remembered', async (t) => {
  const d = new BatchDeduper({ window: 64 })
  t.equal(d.check('gw', 1), 'new')
  t.equal(d.check('gw', 2), 'new')
  d.forget('gw', 2)
  t.equal(d.check('gw', 2), 'new', 'the highest, forgotten')
  t.equal(d.check('gw', 1), 'duplicate')
  d.forget('gw', 1)
  t.equal(d.check('gw', 1), 'new', 'one below the highest, forgotten')
  t.equal(d.check('gw', 2), 'duplicate')
  d.forget('gw-unknown', 5)
  d.forget('gw', 500)
  t.equal(d.check('gw', 2), 'duplicate', 'forgetting what was never seen changes nothing')
  t.equal(d.check('fresh', 9), 'new')
  d.forget('fresh', 9)
  t.equal(d.check('fresh', 9), 'new', 'a gateway\'s first batch, forgotten')
})
