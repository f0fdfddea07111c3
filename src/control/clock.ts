/**
 * The clock the control plane reads and waits on: real time in production, one driven by hand in
 * tests. Kept to control/ for now under its own name; it has the shape a clock for the uplink
 * would need too, so the two can become one later.
 */
export interface ControlClock {
  /** Milliseconds since the Unix epoch. */
  now: () => number
  /** Resolves after `ms`, or as soon as `signal` aborts. */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>
  /** Calls `fn` every `ms` until the returned function is called; does not keep the process alive. */
  every: (ms: number, fn: () => void) => () => void
}

export const systemControlClock: ControlClock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    if (signal?.aborted === true) return
    await new Promise<void>(resolve => {
      const done = (): void => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve() }
      const timer = setTimeout(done, ms).unref()
      signal?.addEventListener('abort', done, { once: true })
    })
  },
  every: (ms, fn) => {
    const timer = setInterval(fn, ms).unref()
    return () => { clearInterval(timer) }
  }
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
