/**
 * Delivery SLIs over the last hour and the last day, against the objectives of mcp.objectives.
 *
 * The registry's counters are cumulative; a window's figures are the difference between now and
 * a sample taken about a window ago. Samples are kept in two rings: one a minute apart for the
 * hour (60), one five minutes apart for the day (288), about 60 KB at most. A process younger
 * than a window reports over what it has seen, and says so (`coveredS`).
 *
 * Per window:
 * - accepted, delivered (PUBACKed), lost (dropped after acceptance, every reason), and the change
 *   of what is buffered; unexplained = accepted − delivered − lost − buffered change: events that
 *   went nowhere the counters know of. It should be 0 (a batch in flight at a window's edge can
 *   move it by its size for a moment);
 * - delivery ratio = delivered / (delivered + lost), the heartbeat's SLI, against the delivery
 *   objective; its error budget is the loss the objective allows, (1 − objective) × (delivered +
 *   lost + unexplained), and `budgetLeft` = 1 − bad / allowed (negative once overspent);
 * - lag p50 and p99 of delivered events (device time to PUBACK) from the lag histogram's buckets,
 *   against lagP99: 1 % of deliveries may be slower; the budget left is 1 − slow / (1 % of them).
 */
import { bucketQuantile, type CumulativeBucket } from '../observe/exposition.js'

export interface SloSample {
  atMs: number
  accepted: number
  delivered: number
  lost: number
  buffered: number
  /** The lag histogram's cumulative bucket counts (every priority), ascending, +Inf last. */
  lag: readonly CumulativeBucket[]
}

export interface SloObjectives {
  /** Delivery ratio objective, e.g. 0.999. */
  delivery: number
  lagP99Ms: number
}

export interface SloWindowReport {
  window: '1h' | '24h'
  /** How much of the window the figures cover (less for a younger process). */
  coveredS: number
  accepted: number
  delivered: number
  lost: number
  bufferedChange: number
  unexplained: number
  deliveryRatio: number
  deliveryObjectiveMet: boolean
  deliveryBudgetLeft: number
  /** Undefined when nothing was delivered in the window. */
  lagP50S: number | undefined
  lagP99S: number | undefined
  lagObjectiveMet: boolean
  lagBudgetLeft: number
}

export interface SloReport {
  objectives: { delivery: number, lagP99S: number }
  windows: SloWindowReport[]
}

class SampleRing {
  private readonly samples: SloSample[] = []

  constructor (private readonly capacity: number, private readonly everyMs: number) {}

  push (s: SloSample): void {
    const last = this.samples[this.samples.length - 1]
    if (last !== undefined && s.atMs - last.atMs < this.everyMs) return
    this.samples.push(s)
    if (this.samples.length > this.capacity) this.samples.shift()
  }

  /** The oldest sample taken at or after `sinceMs`, else the oldest one. */
  baseFor (sinceMs: number): SloSample | undefined {
    return this.samples.find(s => s.atMs >= sinceMs) ?? this.samples[this.samples.length - 1]
  }
}

const HOUR_MS = 3_600_000

export class SloWindows {
  private readonly hour = new SampleRing(61, 60_000)
  private readonly day = new SampleRing(289, 300_000)

  constructor (private readonly objectives: SloObjectives) {}

  /** Takes a sample (the agent does so every minute; closer ones are skipped). */
  sample (s: SloSample): void {
    this.hour.push(s)
    this.day.push(s)
  }

  report (current: SloSample): SloReport {
    return {
      objectives: { delivery: this.objectives.delivery, lagP99S: this.objectives.lagP99Ms / 1000 },
      windows: [this.window('1h', HOUR_MS, this.hour, current), this.window('24h', 24 * HOUR_MS, this.day, current)],
    }
  }

  private window (name: '1h' | '24h', spanMs: number, ring: SampleRing, now: SloSample): SloWindowReport {
    const base = ring.baseFor(now.atMs - spanMs) ?? now
    const accepted = now.accepted - base.accepted
    const delivered = now.delivered - base.delivered
    const lost = now.lost - base.lost
    const bufferedChange = now.buffered - base.buffered
    const unexplained = accepted - delivered - lost - bufferedChange
    const bad = lost + Math.max(0, unexplained)
    const eligible = delivered + bad
    const deliveryRatio = eligible === 0 ? 1 : delivered / eligible
    const lag = now.lag.map((b, i) => ({ le: b.le, count: b.count - (base.lag[i]?.count ?? 0) }))
    const lagCount = lag[lag.length - 1]?.count ?? 0
    const slow = lagCount - countAtOrBelow(lag, this.objectives.lagP99Ms / 1000)
    const p99 = lagCount > 0 ? bucketQuantile(0.99, lag) : undefined
    return {
      window: name,
      coveredS: Math.round((now.atMs - base.atMs) / 1000),
      accepted,
      delivered,
      lost,
      bufferedChange,
      unexplained,
      deliveryRatio,
      deliveryObjectiveMet: deliveryRatio >= this.objectives.delivery,
      deliveryBudgetLeft: budgetLeft(bad, (1 - this.objectives.delivery) * eligible),
      lagP50S: lagCount > 0 ? bucketQuantile(0.5, lag) : undefined,
      lagP99S: p99,
      lagObjectiveMet: p99 === undefined || p99 <= this.objectives.lagP99Ms / 1000,
      lagBudgetLeft: budgetLeft(slow, 0.01 * lagCount),
    }
  }
}

/** 1 − bad / allowed: 1 untouched, 0 spent, negative overspent; with nothing allowed, 1 or 0. */
function budgetLeft (bad: number, allowed: number): number {
  if (allowed <= 0) return bad > 0 ? 0 : 1
  return 1 - bad / allowed
}

/** Observations at or below `x`, interpolated linearly inside its bucket (as quantiles are). */
function countAtOrBelow (buckets: readonly CumulativeBucket[], x: number): number {
  let lower = 0
  let below = 0
  for (const b of buckets) {
    if (x >= b.le) {
      lower = b.le
      below = b.count
      continue
    }
    if (b.le === Infinity) return below
    return below + (b.count - below) * (x - lower) / (b.le - lower)
  }
  return below
}
