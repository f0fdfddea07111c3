/**
 * Reconnect delays: exponential with full jitter (AWS Architecture Blog, "Exponential Backoff And
 * Jitter"): attempt n waits a uniformly random time in [0, min(max, initial * multiplier^n)).
 * Full jitter spreads a fleet that lost its broker at the same moment over the whole window, so
 * the broker does not meet every gateway again at the same instants. A refusal by the broker
 * (not authorized, bad credentials, quota, server busy) waits at least `refusedMinMs`: trying
 * again at once would not change its answer and would only add load.
 */
export interface BackoffOptions {
  initialMs: number
  maxMs: number
  multiplier: number
  /** Least wait after the broker refused the connection; default initialMs * 20, at most maxMs. */
  refusedMinMs?: number
}

export type FailureKind = 'failure' | 'refused'

export class Backoff {
  private attempt = 0

  constructor (private readonly options: BackoffOptions, private readonly random: () => number = Math.random) {
    if (!(options.initialMs > 0) || !(options.maxMs >= options.initialMs) || !(options.multiplier >= 1)) {
      throw new RangeError('backoff needs 0 < initialMs <= maxMs and multiplier >= 1')
    }
  }

  /** The wait before the next attempt, after a failure of this kind. */
  next (kind: FailureKind = 'failure'): number {
    const { initialMs, maxMs, multiplier } = this.options
    const cap = Math.min(maxMs, initialMs * multiplier ** this.attempt)
    this.attempt++
    const delay = Math.floor(this.random() * cap)
    if (kind === 'refused') return Math.min(maxMs, Math.max(delay, this.options.refusedMinMs ?? initialMs * 20))
    return delay
  }

  /** A connection succeeded: the next failure starts from the beginning. */
  reset (): void { this.attempt = 0 }

  /** Failures since the last reset. */
  get failures (): number { return this.attempt }
}
