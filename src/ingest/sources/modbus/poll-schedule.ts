/**
 * When a device is polled next: the arithmetic of device-poller.ts, pure so it is tested alone.
 *
 * A healthy device is polled at a fixed rate: at anchor + k × interval, anchor being its first
 * poll (or the poll that ended a failure). A response time does not shift later polls, and a poll
 * still running when the next one falls due makes that one skipped, never queued: polls of one
 * device never overlap and never bunch up.
 *
 * A failing device (timeout, exception, no connection) is polled again after a delay doubling
 * from half its interval, capped at max(interval, 5 min), with "equal jitter" (a uniformly random
 * point in the upper half of the window): from the second failure on, at least one interval
 * passes between two attempts, so on a shared RTU bus a dead device costs the others at most one
 * `timeout` per backoff period, and the jitter keeps several dead devices of one bus
 * from retrying in step. Full jitter (src/backoff.ts, for reconnects) could retry at once.
 */

export const FAILING_MAX_MS = 5 * 60_000

/** The first tick anchor + k × interval (k ≥ 1) strictly after `after`. */
export function nextTick (anchor: number, interval: number, after: number): number {
  if (after < anchor) return anchor + interval
  return anchor + (Math.floor((after - anchor) / interval) + 1) * interval
}

/** The wait after the `failures`-th failed poll in a row (1 for the first). */
export function failureDelay (interval: number, failures: number, random: () => number): number {
  const cap = Math.max(interval, FAILING_MAX_MS)
  const window = Math.min(cap, interval * 2 ** Math.min(Math.max(failures, 1) - 1, 30))
  return Math.round(window * (0.5 + 0.5 * random()))
}
