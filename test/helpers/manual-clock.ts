/**
 * A Clock (src/clock.ts) whose time moves only when the test says: `advance(ms)` fires the
 * timers that fall due, in order, letting promise reactions run after each, so code under test
 * sees exactly the waits it asked for and a test never sleeps.
 */
import { abortableSleep, type Clock, type ClockTimer } from '../../src/clock.js'

interface Timer { at: number, seq: number, fn: () => void }

/** Lets pending promise reactions and immediates run (a few rounds: chains of awaits). */
export async function settle (rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>(resolve => { setImmediate(resolve) })
}

export class ManualClock implements Clock {
  private time: number
  private seq = 0
  private timers: Timer[] = []

  constructor (startMs = Date.UTC(2026, 0, 1, 12)) { this.time = startMs }

  readonly now = (): number => this.time

  readonly setTimer = (fn: () => void, ms: number): ClockTimer => {
    const timer: Timer = { at: this.time + Math.max(0, ms), seq: this.seq++, fn }
    this.timers.push(timer)
    return timer
  }

  readonly clearTimer = (timer: ClockTimer | undefined): void => {
    this.timers = this.timers.filter(t => t !== timer)
  }

  readonly sleep = async (ms: number, signal?: AbortSignal): Promise<void> => { await abortableSleep(this, ms, signal) }

  /** Timers not yet fired, and how far ahead the next one is (Infinity: none). */
  get pending (): number { return this.timers.length }
  get nextInMs (): number { return this.timers.reduce((min, t) => Math.min(min, t.at - this.time), Infinity) }

  /**
   * Time jumps forward by `ms` at once (a suspended machine, a clock step): the timers that fell
   * due meanwhile fire late, at the new time. Cheaper than advance() over hours of polling.
   */
  async jump (ms: number): Promise<void> {
    this.time += ms
    await this.advance(0)
  }

  /** Moves time forward by `ms`, firing each timer that falls due at its own time. */
  async advance (ms: number): Promise<void> {
    const until = this.time + ms
    await settle()
    for (;;) {
      const due = this.timers.filter(t => t.at <= until).sort((a, b) => a.at - b.at || a.seq - b.seq)[0]
      if (due === undefined) break
      this.timers = this.timers.filter(t => t !== due)
      this.time = Math.max(this.time, due.at)
      due.fn()
      await settle()
    }
    this.time = until
    await settle()
  }
}
