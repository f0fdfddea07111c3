/**
 * A Map bounded to `capacity` entries that forgets the least recently used one when full.
 *
 * Ingest keeps per-device state keyed by ids that devices choose, so every such table must be
 * bounded: otherwise a device (or noise) sending ever-new ids grows memory without limit.
 * A JS Map iterates in insertion order, so "touch" is delete + set and the oldest is first.
 */
export class LruMap<K, V> {
  private readonly map = new Map<K, V>()
  /** Entries dropped to make room since creation. */
  evicted = 0

  constructor (readonly capacity: number, private readonly onEvict?: (key: K, value: V) => void) {
    if (!(capacity >= 1)) throw new RangeError(`LruMap capacity must be at least 1, got ${capacity}`)
  }

  get size (): number { return this.map.size }

  /** The value, marked most recently used. */
  get (key: K): V | undefined {
    const value = this.map.get(key)
    if (value !== undefined) {
      this.map.delete(key)
      this.map.set(key, value)
    }
    return value
  }

  /** Adds or replaces `key` as the most recently used entry, evicting the oldest when full. */
  set (key: K, value: V): void {
    if (this.map.has(key)) {
      this.map.delete(key)
    } else if (this.map.size >= this.capacity) {
      const oldest = this.map.entries().next()
      if (oldest.done !== true) {
        this.map.delete(oldest.value[0])
        this.evicted++
        this.onEvict?.(oldest.value[0], oldest.value[1])
      }
    }
    this.map.set(key, value)
  }

  delete (key: K): boolean {
    return this.map.delete(key)
  }

  clear (): void {
    this.map.clear()
  }

  entries (): IterableIterator<[K, V]> {
    return this.map.entries()
  }
}
