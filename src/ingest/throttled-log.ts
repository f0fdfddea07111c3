/**
 * Log lines about things devices do wrong, at most one per key (a reason, a transport error
 * kind) per interval. A device sending garbage 10,000 times a second must not turn the log into
 * the bottleneck or fill the SD card; the counters hold the exact totals. The first occurrence
 * is logged at once; later ones inside the interval are counted and reported as `suppressed`
 * on the next line for that key.
 */
import type { Logger } from '../observe/log.js'

export class ThrottledLog {
  private readonly keys = new Map<string, { at: number, suppressed: number }>()

  constructor (private readonly logger: Logger, private readonly intervalMs: number, private readonly now: () => number) {}

  /**
   * `key` must come from a small fixed set (reasons, transport names): it is kept forever.
   * `fields` is called only when a line is written, so a suppressed occurrence allocates nothing.
   */
  warn (key: string, fields: () => Record<string, unknown>, message: string): void {
    this.write('warn', key, fields, message)
  }

  info (key: string, fields: () => Record<string, unknown>, message: string): void {
    this.write('info', key, fields, message)
  }

  error (key: string, fields: () => Record<string, unknown>, message: string): void {
    this.write('error', key, fields, message)
  }

  private write (level: 'info' | 'warn' | 'error', key: string, fields: () => Record<string, unknown>, message: string): void {
    const now = this.now()
    const state = this.keys.get(key)
    if (state !== undefined && now - state.at < this.intervalMs) {
      state.suppressed++
      return
    }
    const suppressed = state?.suppressed ?? 0
    this.keys.set(key, { at: now, suppressed: 0 })
    if (!this.logger.isLevelEnabled(level)) return
    this.logger[level](suppressed > 0 ? { ...fields(), suppressed } : fields(), message)
  }
}
