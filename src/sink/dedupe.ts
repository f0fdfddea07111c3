/**
 * Drops redelivered batches by (gateway id, batch seq), in bounded memory.
 *
 * Per gateway: the highest batch seq seen and a ring bitmap of the `window` seqs ending at it
 * (bit `seq % window`). A seq in (highest - window, highest] is checked exactly. The uplink sends
 * batch seqs in increasing order with a small in-flight window, so redeliveries land inside a
 * window of thousands.
 *
 * Beyond the window (seq ≤ highest - window) the deduper cannot know; it answers 'beyond-window'
 * and the caller should deliver the batch: delivery stays at-least-once (a possible duplicate,
 * which SequenceVerifier counts at the event level) rather than risking a loss. That is also what
 * a gateway whose batch seq restarted from 1 (store wiped) looks like.
 *
 * Gateways: at most `maxGateways` are tracked; the least recently seen is forgotten first, and
 * its next batch is answered 'new'. Memory is therefore ≤ maxGateways × (window / 8 bytes + id).
 */

export type BatchVerdict = 'new' | 'duplicate' | 'beyond-window'

export interface BatchDeduperOptions {
  /** Batch seqs remembered below the highest, per gateway; a multiple of 32. Default 4096. */
  window?: number
  /** Gateways tracked at once. Default 10 000. */
  maxGateways?: number
}

interface GatewayWindow {
  highest: number
  bits: Uint32Array
}

export class BatchDeduper {
  readonly window: number
  readonly maxGateways: number
  // Map iteration order is insertion order: re-inserting on access makes the first key the LRU.
  readonly #gateways = new Map<string, GatewayWindow>()

  constructor (options: BatchDeduperOptions = {}) {
    this.window = options.window ?? 4096
    this.maxGateways = options.maxGateways ?? 10_000
    if (!Number.isSafeInteger(this.window) || this.window < 32 || this.window % 32 !== 0) {
      throw new RangeError(`window must be a positive multiple of 32, got ${this.window}`)
    }
    if (!Number.isSafeInteger(this.maxGateways) || this.maxGateways < 1) {
      throw new RangeError(`maxGateways must be a positive integer, got ${this.maxGateways}`)
    }
  }

  /** Records the batch and says whether it was seen before. */
  check (gatewayId: string, batchSeq: number): BatchVerdict {
    if (!Number.isSafeInteger(batchSeq) || batchSeq < 0) throw new RangeError(`batchSeq must be a non-negative safe integer, got ${batchSeq}`)
    let g = this.#gateways.get(gatewayId)
    if (g === undefined) {
      if (this.#gateways.size >= this.maxGateways) {
        const oldest = this.#gateways.keys().next().value
        if (oldest !== undefined) this.#gateways.delete(oldest)
      }
      g = { highest: batchSeq, bits: new Uint32Array(this.window / 32) }
      this.#gateways.set(gatewayId, g)
      this.#set(g, batchSeq)
      return 'new'
    }
    this.#gateways.delete(gatewayId)
    this.#gateways.set(gatewayId, g)
    if (batchSeq > g.highest) {
      this.#advance(g, batchSeq)
      this.#set(g, batchSeq)
      return 'new'
    }
    if (batchSeq <= g.highest - this.window) return 'beyond-window'
    const i = batchSeq % this.window
    const word = g.bits[i >>> 5] ?? 0
    const mask = 1 << (i & 31)
    if ((word & mask) !== 0) return 'duplicate'
    g.bits[i >>> 5] = word | mask
    return 'new'
  }

  /**
   * Takes back a 'new' verdict: the batch was not written after all (the destination failed), so
   * its redelivery must be written, not dropped as a duplicate.
   */
  forget (gatewayId: string, batchSeq: number): void {
    const g = this.#gateways.get(gatewayId)
    if (g === undefined || batchSeq > g.highest || batchSeq <= g.highest - this.window) return
    const i = batchSeq % this.window
    g.bits[i >>> 5] = (g.bits[i >>> 5] ?? 0) & ~(1 << (i & 31))
  }

  /** Sizes of what is held, for tests and metrics. */
  stats (): { gateways: number, bitmapBytes: number } {
    let bitmapBytes = 0
    for (const g of this.#gateways.values()) bitmapBytes += g.bits.byteLength
    return { gateways: this.#gateways.size, bitmapBytes }
  }

  #set (g: GatewayWindow, seq: number): void {
    const i = seq % this.window
    g.bits[i >>> 5] = (g.bits[i >>> 5] ?? 0) | (1 << (i & 31))
  }

  /** Moves the window's top to `seq`, clearing the bits of the seqs it slides over. */
  #advance (g: GatewayWindow, seq: number): void {
    if (seq - g.highest >= this.window) {
      g.bits.fill(0)
    } else {
      for (let s = g.highest + 1; s <= seq; s++) {
        const i = s % this.window
        g.bits[i >>> 5] = (g.bits[i >>> 5] ?? 0) & ~(1 << (i & 31))
      }
    }
    g.highest = seq
  }
}
