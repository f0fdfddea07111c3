/**
 * Per-device token buckets for events/s and bytes/s (PROTOCOL.md section 7, `rate_limited`).
 *
 * A frame passes only if both buckets hold enough; then both are charged. Excess frames are
 * dropped, never queued: queuing would let one babbling device hold memory and delay others.
 * Buckets refill continuously from the injected (wall) clock. A clock that steps back refills
 * nothing and re-anchors the bucket there: otherwise an NTP step back of an hour would leave
 * every bucket without refill for that hour.
 */

export interface RateLimit {
  /** 0 = no limit. */
  eventsPerSecond: number
  /** 0 = no limit. */
  bytesPerSecond: number
  /** How much of each rate a bucket holds: a device idle this long may send this long at once. */
  burstMs: number
}

export class TokenBucket {
  private events: number
  private bytes: number
  private readonly eventCap: number
  private readonly byteCap: number

  /**
   * `minBytes` is the largest frame: a byte bucket smaller than one frame would refuse that
   * frame forever, so the capacity is raised to it.
   */
  constructor (private readonly limit: RateLimit, minBytes: number, private last: number) {
    this.eventCap = limit.eventsPerSecond === 0 ? Infinity : Math.max(1, limit.eventsPerSecond * limit.burstMs / 1000)
    this.byteCap = limit.bytesPerSecond === 0 ? Infinity : Math.max(minBytes, limit.bytesPerSecond * limit.burstMs / 1000)
    this.events = this.eventCap
    this.bytes = this.byteCap
  }

  /** Charges one event of `bytes` if both buckets allow it; false (and no charge) otherwise. */
  take (now: number, bytes: number): boolean {
    const elapsed = now - this.last
    if (elapsed < 0) {
      this.last = now
    } else if (elapsed > 0) {
      this.last = now
      this.events = Math.min(this.eventCap, this.events + this.limit.eventsPerSecond * elapsed / 1000)
      this.bytes = Math.min(this.byteCap, this.bytes + this.limit.bytesPerSecond * elapsed / 1000)
    }
    if (this.events < 1 || this.bytes < bytes) return false
    this.events -= 1
    this.bytes -= bytes
    return true
  }
}
