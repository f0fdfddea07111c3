/**
 * `npm run bench:reconnect`: how a fleet comes back after its broker was away, with the uplink's
 * own backoff (src/backoff.ts), on simulated time.
 *
 * BENCH_GATEWAYS (1000) gateways lose the broker at t = 0 (a restart: the port is closed, so
 * each attempt fails at once, as it does against a stopped Mosquitto) and it listens again at t =
 * OUTAGE. Each gateway does what the session does: an attempt at once, then after each failure a
 * wait of Backoff.next(). Printed per backoff setting and outage, one JSON line each:
 * `online_p50_s`, `online_p99_s`, `online_max_s` (from the broker's return to the gateway's
 * successful attempt), `peak_connects_per_s` (successful attempts in the busiest second after the
 * return: the TLS handshakes the broker must take at once), `attempts_per_s_during` (failed
 * attempts per second over the outage's second half).
 *
 * Simulated rather than measured on sockets because the figures are about the schedule: the real
 * session's waits are exactly Backoff.next()'s (test/integration/uplink-reconnect.test.ts checks
 * that with an injected sleep), and 1000 real mTLS clients would measure this machine's CPU.
 */
import { Backoff, type BackoffOptions } from '../src/backoff.js'

const GATEWAYS = Number(process.env.BENCH_GATEWAYS ?? 1000)
const OUTAGES_S = [30, 300, 3600]
const SETTINGS: Array<{ name: string, backoff: BackoffOptions }> = [
  { name: 'before: max 60s', backoff: { initialMs: 500, maxMs: 60_000, multiplier: 2 } },
  { name: 'default: max 10s', backoff: { initialMs: 500, maxMs: 10_000, multiplier: 2 } }
]

/** A seeded generator, so runs compare. */
function lcg (seed: number): () => number {
  let s = seed
  return () => { s = (s * 1103515245 + 12345) % 2 ** 31; return s / 2 ** 31 }
}

function quantile (sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
}

for (const { name, backoff } of SETTINGS) {
  for (const outageS of OUTAGES_S) {
    const random = lcg(42)
    const outageMs = outageS * 1000
    const online: number[] = []
    const connectsPerSecond = new Map<number, number>()
    let failedLate = 0
    for (let g = 0; g < GATEWAYS; g++) {
      const b = new Backoff(backoff, random)
      // Gateways notice the loss within their keepalive: spread the first attempt over 1 s.
      let t = Math.floor(random() * 1000)
      while (t < outageMs) {
        if (t >= outageMs / 2) failedLate++
        t += b.next()
      }
      online.push(t - outageMs)
      const second = Math.floor(t / 1000)
      connectsPerSecond.set(second, (connectsPerSecond.get(second) ?? 0) + 1)
    }
    online.sort((a, b) => a - b)
    console.log(JSON.stringify({
      backoff: name,
      outage_s: outageS,
      gateways: GATEWAYS,
      online_p50_s: +(quantile(online, 0.5) / 1000).toFixed(2),
      online_p99_s: +(quantile(online, 0.99) / 1000).toFixed(2),
      online_max_s: +((online[online.length - 1] as number) / 1000).toFixed(2),
      peak_connects_per_s: Math.max(...connectsPerSecond.values()),
      attempts_per_s_during: +(failedLate / (outageS / 2)).toFixed(1)
    }))
  }
}
