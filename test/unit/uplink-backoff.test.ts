import t from 'tap'
import { loadConfig } from '../../src/config/index.js'
import { Backoff } from '../../src/backoff.js'
import { uplinkOptions } from '../../src/uplink/options.js'

t.test('full jitter: each wait is uniform below a cap that grows by the multiplier up to the maximum', async t => {
  const b = new Backoff({ initialMs: 100, maxMs: 5000, multiplier: 2 }, () => 0.999999)
  const waits = Array.from({ length: 9 }, () => b.next())
  t.same(waits, [99, 199, 399, 799, 1599, 3199, 4999, 4999, 4999], 'the cap doubles, then stays at the maximum')
  const low = new Backoff({ initialMs: 100, maxMs: 5000, multiplier: 2 }, () => 0)
  t.same([low.next(), low.next()], [0, 0], 'the wait may be as short as zero')
})

t.test('a fleet of gateways failing together spreads over the window', async t => {
  let seed = 42
  const random = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
  const waits = Array.from({ length: 1000 }, () => { const b = new Backoff({ initialMs: 1000, maxMs: 60_000, multiplier: 2 }, random); for (let i = 0; i < 5; i++) b.next(); return b.next() })
  const buckets = [0, 0, 0, 0]
  for (const w of waits) { const i = Math.min(3, Math.floor(w / 8000)); buckets[i] = (buckets[i] ?? 0) + 1 }
  t.ok(buckets.every(n => n > 180 && n < 320), `spread evenly over [0, 32 s): ${JSON.stringify(buckets)}`)
})

t.test('a broker refusal waits at least refusedMinMs; reset starts over', async t => {
  const b = new Backoff({ initialMs: 100, maxMs: 60_000, multiplier: 2, refusedMinMs: 30_000 }, () => 0.5)
  t.equal(b.next('refused'), 30_000)
  t.equal(b.failures, 1)
  b.reset()
  t.equal(b.next(), 50)
  t.throws(() => new Backoff({ initialMs: 0, maxMs: 1, multiplier: 2 }), RangeError)
})

t.test('with the default configuration, a gateway is back within 10 s of a broker that restarted', async t => {
  // The issue this answers: a 30 s broker restart took 38-44 s to come back from (a 60 s cap).
  const config = await loadConfig({ env: {}, overrides: ['uplink.url=mqtts://127.0.0.1:8883'] })
  const { backoff } = uplinkOptions(config, { credentials: () => { throw new Error('not used') }, nextBatchSeq: () => 1 })
  let seed = 42
  const random = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
  const backAfter: number[] = []
  for (let g = 0; g < 1000; g++) {
    // The session's schedule: an attempt at once, then one after each wait; all fail while away.
    const b = new Backoff(backoff, random)
    let t = 0
    while (t < 30_000) t += b.next()
    backAfter.push(t - 30_000)
  }
  t.ok(Math.max(...backAfter) <= 10_000, `the slowest of 1000 gateways back ${Math.max(...backAfter)} ms after the broker`)
  t.equal(new Backoff(backoff, () => 0).next('refused'), 30_000, 'a refusal still waits uplink.backoff.refusedMin (30 s), above the 10 s cap')
})
