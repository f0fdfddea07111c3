/**
 * A small seeded PRNG for the simulation, so a scenario run with the same seed makes the same
 * choices (which device sends which priority, payload bytes, jitter). Not for anything secret.
 *
 * mulberry32: 32 bits of state, period 2^32, passes PractRand up to a few GB. Plenty for
 * choosing priorities; its weakness (some seeds' first outputs are correlated) does not matter
 * here. Seeds are taken modulo 2^32, so 1 and 2^32 + 1 give the same sequence.
 */

export function seededRandom (seed: number): () => number {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${String(seed)}`)
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * One item, chosen with probability weight / sum of weights. A weight of 0 is never chosen;
 * throws on an empty list, a negative or non-finite weight, or weights that are all 0.
 */
export function pick<T> (random: () => number, weights: ReadonlyArray<readonly [T, number]>): T {
  let total = 0
  for (const [, weight] of weights) {
    if (!Number.isFinite(weight) || weight < 0) throw new RangeError(`weights must be finite and >= 0, got ${String(weight)}`)
    total += weight
  }
  if (weights.length === 0) throw new RangeError('pick from an empty list')
  if (total <= 0) throw new RangeError('pick with all weights 0')
  let r = random() * total
  let last: T | undefined
  for (const [item, weight] of weights) {
    if (weight === 0) continue
    if (r < weight) return item
    r -= weight
    last = item
  }
  // Rounding in the subtraction can leave r a hair above the last weight: that is the last
  // positive-weight item (there is one, since total > 0).
  return last as T
}
