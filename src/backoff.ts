/**
 * Reconnect backoff shared by the uplink and the ingest sources that connect out (MQTT, Modbus).
 *
 * Reconnect delays: exponential with full jitter (AWS Architecture Blog, "Exponential Backoff And
 * Jitter"): attempt n waits a uniformly random time in [0, min(max, initial * multiplier^n)).
 * Full jitter spreads a fleet that lost its broker at the same moment over the whole window, so
 * the broker does not meet every gateway again at the same instants. A refusal by the broker
 * (not authorized, bad credentials, quota, server busy) waits at least `refusedMinMs`, even above
 * `maxMs`: trying again soon would not change its answer and would only add load.
 *
 * The cap (uplink.backoff.max, 10 s) is the trade between how soon a gateway is back once its
 * broker is, and how many gateways come back in the same second. bench/reconnect-bench.ts, 1000
 * gateways whose broker restarts (30 s, 5 min or 1 h away), the uplink's own Backoff on simulated
 * time: with a 60 s cap (the default before) a gateway was back 13.6-18.3 s after the broker
 * (median; p99 53-55 s: a 30 s restart took the 38-44 s), the busiest second 38-63
 * connections; with 10 s, 2.5-3.0 s (p99 8.7-9.3 s, never above the cap), 187-251 connections
 * in the busiest second, ~200 refused attempts a second while it is away (TCP SYNs to a closed
 * port). A few hundred mTLS handshakes a second is what one Mosquitto takes; a larger fleet
 * raises the cap (the window must grow with the fleet to keep the peak).
 */
export interface BackoffOptions {
  initialMs: number
  maxMs: number
  multiplier: number
  /** Least wait after the broker refused the connection, even above maxMs; default initialMs * 20 (at most maxMs). */
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
    if (kind === 'refused') return Math.max(delay, this.options.refusedMinMs ?? Math.min(maxMs, initialMs * 20))
    return delay
  }

  /** A connection succeeded: the next failure starts from the beginning. */
  reset (): void { this.attempt = 0 }

  /** Failures since the last reset. */
  get failures (): number { return this.attempt }
}
