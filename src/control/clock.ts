/**
 * What the control plane needs on top of the shared Clock (src/clock.ts): a repeating timer that
 * does not keep the process alive, a sleep that ends early (without an error) when the rollout is
 * closed, and a wait that gives up on abort.
 */
import type { Clock, ClockTimer } from '../clock.js'

/** Calls `fn` every `ms` on `clock` until the returned function is called; does not keep the process alive. */
export function every (clock: Clock, ms: number, fn: () => void): () => void {
  let timer: ClockTimer | undefined
  let stopped = false
  const arm = (): void => {
    timer = clock.setTimer(() => { if (!stopped) { arm(); fn() } }, ms)
    // The system clock's timers are Node timers: a retry loop alone must not hold the process.
    ;(timer as { unref?: () => void }).unref?.()
  }
  arm()
  return () => { stopped = true; clock.clearTimer(timer) }
}

/** Resolves after `ms`, or as soon as `signal` aborts (without rejecting). */
export async function sleepUnlessAborted (clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  await clock.sleep(ms, signal).catch(() => {})
}

/** `work`'s result, or undefined as soon as `signal` aborts (`work` then goes on unobserved). */
export async function unlessAborted<T> (work: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) { work.catch(() => {}); return undefined }
  let stop = (): void => {}
  const aborted = new Promise<undefined>(resolve => {
    stop = () => { resolve(undefined) }
    signal.addEventListener('abort', stop, { once: true })
  })
  try {
    return await Promise.race([work, aborted])
  } finally {
    signal.removeEventListener('abort', stop)
  }
}
