/**
 * The uplink's send limits: when the next batch may be leased and sent.
 *
 * - Rate cap (`rateLimitBytesPerSecond`, a metered link): each batch sent pushes the earliest
 *   time of the next one by its bytes / rate.
 * - Daily byte budget (`dailyBudgetBytes`, per UTC day): once spent, only `critical` events are
 *   leased; the rest stay buffered until 00:00 UTC.
 * - Linger (`lingerMs`): after a batch that was not full, the next lease waits, so a trickle of
 *   events goes out in fewer, fuller batches.
 *
 * Pure bookkeeping on the clock's `now`: the session does the waiting.
 */
import type { Logger } from '../observe/log.js'

/** The settings a remote configuration update may change while the session runs. */
export interface LiveUplinkSettings {
  batch: { maxEvents: number, maxBytes: number }
  lingerMs: number
  rateLimitBytesPerSecond: number | undefined
  dailyBudgetBytes: number | undefined
}

export interface SendLimits {
  /** The settings in use. */
  readonly settings: Readonly<LiveUplinkSettings>
  /** New settings from now on (batches in flight are not touched). */
  reconfigure: (settings: LiveUplinkSettings) => void
  /** How long the rate cap holds the next batch back (counted as a rate wait when > 0), else <= 0. */
  rateWaitMs: () => number
  /** How long linger holds the next lease back, else <= 0. */
  lingerMs: () => number
  /** Whether today's budget is spent (critical events only). */
  budgetSpent: () => boolean
  /** A batch of `bytes` with `events` events (`leaseBytes` of them) was sent. */
  sent: (bytes: number, events: number, leaseBytes: number) => void
  stats: () => { bytesToday: number, budgetExhausted: boolean, rateWaits: number, rateWaitMs: number }
}

export class UplinkSendLimits implements SendLimits {
  private current: LiveUplinkSettings
  /** Rate cap: the earliest time the next batch may be sent. */
  private nextSendAt = 0
  /** Linger: a batch that was not full holds the next lease back until then. */
  private lingerUntil = 0
  private readonly rate = { waits: 0, waitMs: 0 }
  private budgetDay = -1
  private bytesToday = 0

  constructor (settings: LiveUplinkSettings, private readonly now: () => number, private readonly logger: Logger) {
    this.current = { ...settings, batch: { ...settings.batch } }
  }

  get settings (): Readonly<LiveUplinkSettings> { return this.current }

  reconfigure (settings: LiveUplinkSettings): void {
    this.current = { ...settings, batch: { ...settings.batch } }
    if (settings.rateLimitBytesPerSecond === undefined) this.nextSendAt = 0
    this.lingerUntil = Math.min(this.lingerUntil, this.now() + settings.lingerMs)
  }

  rateWaitMs (): number {
    const wait = this.nextSendAt - this.now()
    if (wait > 0) {
      this.rate.waits++
      this.rate.waitMs += wait
    }
    return wait
  }

  lingerMs (): number { return this.lingerUntil - this.now() }

  budgetSpent (): boolean {
    const budget = this.current.dailyBudgetBytes
    return budget !== undefined && this.rollDay() >= budget
  }

  sent (bytes: number, events: number, leaseBytes: number): void {
    const now = this.now()
    const { rateLimitBytesPerSecond: rate, batch, lingerMs } = this.current
    if (rate !== undefined && rate > 0) this.nextSendAt = Math.max(now, this.nextSendAt) + bytes * 1000 / rate
    this.rollDay()
    this.bytesToday += bytes
    if (events < batch.maxEvents && leaseBytes < batch.maxBytes * 0.9) this.lingerUntil = now + lingerMs
  }

  stats (): { bytesToday: number, budgetExhausted: boolean, rateWaits: number, rateWaitMs: number } {
    return { bytesToday: this.rollDay(), budgetExhausted: this.budgetSpent(), rateWaits: this.rate.waits, rateWaitMs: this.rate.waitMs }
  }

  /** Starts a new budget day at 00:00 UTC; returns the bytes sent today. */
  private rollDay (): number {
    const day = Math.floor(this.now() / 86_400_000)
    if (day !== this.budgetDay) {
      if (this.budgetDay >= 0 && this.bytesToday > 0) this.logger.info({ bytes: this.bytesToday }, 'uplink: a new budget day')
      this.budgetDay = day
      this.bytesToday = 0
    }
    return this.bytesToday
  }
}
