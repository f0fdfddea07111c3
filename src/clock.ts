/**
 * The clock of the parts that wait: the time and every timer and wait of src/uplink and
 * src/control behind one small interface, so that tests drive time instead of waiting for it
 * (test/helpers/manual-clock.ts). Neither calls Date.now or setTimeout directly.
 */

/** A pending timer of a Clock, to cancel it. */
export type ClockTimer = object

export interface Clock {
  /** Unix time in ms. */
  now: () => number
  /** Calls `fn` once after `ms`. */
  setTimer: (fn: () => void, ms: number) => ClockTimer
  clearTimer: (timer: ClockTimer | undefined) => void
  /** Resolves after `ms`; rejects once `signal` aborts. */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: timer => { clearTimeout(timer as NodeJS.Timeout | undefined) },
  sleep: async (ms, signal) => { await abortableSleep(systemClock, ms, signal) }
}

/** `p`, or undefined once `ms` passed first. */
export async function withTimeout<T> (clock: Clock, p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ClockTimer | undefined
  try {
    return await Promise.race([p, new Promise<undefined>(resolve => { timer = clock.setTimer(() => { resolve(undefined) }, ms) })])
  } finally {
    clock.clearTimer(timer)
  }
}

/** A sleep on the clock's timers that rejects once `signal` aborts (Clock.sleep for a clock that has only timers). */
export async function abortableSleep (clock: Pick<Clock, 'setTimer' | 'clearTimer'>, ms: number, signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) { reject(new Error('aborted')); return }
    const timer = clock.setTimer(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    const onAbort = (): void => { clock.clearTimer(timer); reject(new Error('aborted')) }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
