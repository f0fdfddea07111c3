import t from 'tap'
import { SloWindows, type SloSample } from '../../src/agent/slo.js'
import { LAG_BUCKETS } from '../../src/observe/catalog.js'

const T0 = 1_800_000_000_000
const MIN = 60_000

/** Cumulative lag buckets with `fast` events at 0.3 s and `slow` at 120 s. */
function lag (fast: number, slow: number): SloSample['lag'] {
  return [...LAG_BUCKETS, Infinity].map(le => ({ le, count: (le >= 0.5 ? fast : 0) + (le >= 300 ? slow : 0) }))
}

function sample (atMs: number, accepted: number, delivered: number, lost: number, buffered: number, fast = delivered, slow = 0): SloSample {
  return { atMs, accepted, delivered, lost, buffered, lag: lag(fast, slow) }
}

t.test('a young process: both windows cover what it has seen; figures are differences from the first sample', async t => {
  const slo = new SloWindows({ delivery: 0.99, lagP99Ms: 60_000 })
  slo.sample(sample(T0, 100, 90, 0, 10))
  const r = slo.report(sample(T0 + 10 * MIN, 1110, 1080, 10, 20))
  t.same(r.objectives, { delivery: 0.99, lagP99S: 60 })
  for (const w of r.windows) {
    t.equal(w.coveredS, 600, `${w.window}: ten minutes covered`)
    t.equal(w.accepted, 1010)
    t.equal(w.delivered, 990)
    t.equal(w.lost, 10)
    t.equal(w.bufferedChange, 10)
    t.equal(w.unexplained, 0, 'accepted = delivered + lost + buffered change')
    t.equal(w.deliveryRatio, 0.99)
    t.ok(w.deliveryObjectiveMet)
    t.ok(Math.abs(w.deliveryBudgetLeft) < 1e-9, 'the budget exactly spent')
  }
})

t.test('the hour window forgets what is older than an hour; unexplained loss counts against the budget', async t => {
  const slo = new SloWindows({ delivery: 0.999, lagP99Ms: 60_000 })
  for (let m = 0; m <= 120; m++) slo.sample(sample(T0 + m * MIN, m * 100, m * 100, 0, 0))
  const now = sample(T0 + 120 * MIN + 1000, 12_100, 12_000, 0, 0, 12_000)
  const [hour, day] = slo.report(now).windows
  t.equal(hour?.coveredS, 3541, 'the hour: from the first sample within it (minute 61)')
  t.equal(hour?.accepted, 6000)
  t.equal(hour?.unexplained, 100, '100 events went nowhere the counters know')
  t.ok((hour?.deliveryBudgetLeft ?? 0) < 0, 'overspent')
  t.notOk(hour?.deliveryObjectiveMet)
  t.equal(day?.coveredS, 7201, 'the day: since the first sample')
})

t.test('lag: p50/p99 from the window\'s buckets; 1 % may be slower than the objective', async t => {
  const slo = new SloWindows({ delivery: 0.999, lagP99Ms: 60_000 })
  slo.sample(sample(T0, 0, 0, 0, 0, 0, 0))
  const ok = slo.report(sample(T0 + MIN, 1000, 1000, 0, 0, 995, 5)).windows[0]
  t.ok((ok?.lagP50S ?? 99) <= 0.5, `p50 ${ok?.lagP50S}`)
  t.ok(ok?.lagObjectiveMet, `p99 ${ok?.lagP99S} within 60 s`)
  t.ok(Math.abs((ok?.lagBudgetLeft ?? 0) - 0.5) < 1e-9, '5 slow of 10 allowed: half the budget left')
  const bad = slo.report(sample(T0 + MIN, 1000, 1000, 0, 0, 900, 100)).windows[0]
  t.notOk(bad?.lagObjectiveMet, `p99 ${bad?.lagP99S} over 60 s`)
  t.equal(bad?.lagBudgetLeft, -9, '100 slow of 10 allowed')
  const none = slo.report(sample(T0 + MIN, 0, 0, 0, 0, 0, 0)).windows[0]
  t.equal(none?.lagP99S, undefined, 'nothing delivered: no lag')
  t.equal(none?.deliveryRatio, 1)
  t.equal(none?.lagBudgetLeft, 1)
})
