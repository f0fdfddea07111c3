/**
 * A set of non-negative integers held as sorted, disjoint, non-adjacent inclusive intervals, so
 * memory grows with the number of holes, not of members. Adding at or just past the end (the
 * common in-order case) is O(1); elsewhere O(log n) to find plus O(n) to splice.
 */
export class IntervalSet {
  readonly #starts: number[] = []
  readonly #ends: number[] = []

  get intervalCount (): number {
    return this.#starts.length
  }

  /** Members in total. */
  get size (): number {
    let n = 0
    for (let k = 0; k < this.#starts.length; k++) n += (this.#ends[k] as number) - (this.#starts[k] as number) + 1
    return n
  }

  get min (): number | undefined {
    return this.#starts[0]
  }

  get max (): number | undefined {
    return this.#ends[this.#ends.length - 1]
  }

  /** Adds [lo, hi] and returns how many of its members were not in the set before. */
  add (lo: number, hi: number = lo): number {
    if (!(lo <= hi)) throw new RangeError(`bad interval [${lo}, ${hi}]`)
    const n = this.#starts.length
    const lastEnd = this.#ends[n - 1]
    if (lastEnd === undefined || lo > lastEnd + 1) {
      this.#starts.push(lo)
      this.#ends.push(hi)
      return hi - lo + 1
    }
    if (lo === lastEnd + 1) {
      this.#ends[n - 1] = hi
      return hi - lo + 1
    }
    // i: first interval that touches or follows lo; j: last interval that touches or precedes hi.
    const i = this.#firstEndAtLeast(lo - 1)
    let j = i - 1
    while (j + 1 < n && (this.#starts[j + 1] as number) <= hi + 1) j++
    if (j < i) {
      this.#starts.splice(i, 0, lo)
      this.#ends.splice(i, 0, hi)
      return hi - lo + 1
    }
    let covered = 0
    for (let k = i; k <= j; k++) {
      const a = Math.max(lo, this.#starts[k] as number)
      const b = Math.min(hi, this.#ends[k] as number)
      if (a <= b) covered += b - a + 1
    }
    const start = Math.min(lo, this.#starts[i] as number)
    const end = Math.max(hi, this.#ends[j] as number)
    this.#starts.splice(i, j - i + 1, start)
    this.#ends.splice(i, j - i + 1, end)
    return hi - lo + 1 - covered
  }

  has (x: number): boolean {
    const i = this.#firstEndAtLeast(x)
    return i < this.#starts.length && (this.#starts[i] as number) <= x
  }

  /** The intervals in ascending order, as [start, end] pairs. */
  * intervals (): IterableIterator<[number, number]> {
    for (let k = 0; k < this.#starts.length; k++) yield [this.#starts[k] as number, this.#ends[k] as number]
  }

  #firstEndAtLeast (x: number): number {
    let lo = 0
    let hi = this.#ends.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((this.#ends[mid] as number) < x) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

/** The parts of [lo, hi] not in `set`, ascending. */
export function * holes (set: IntervalSet, lo: number, hi: number): IterableIterator<[number, number]> {
  let next = lo
  for (const [s, e] of set.intervals()) {
    if (e < next) continue
    if (s > hi) break
    if (s > next) yield [next, s - 1]
    next = e + 1
    if (next > hi) return
  }
  if (next <= hi) yield [next, hi]
}
