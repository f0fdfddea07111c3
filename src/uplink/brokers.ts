/**
 * Which broker the next connection attempt goes to, when `uplink.url` lists the nodes of a
 * cluster (one broker is the list of one).
 *
 * - A gateway stays on a broker while it works: a delivered batch, a connection that lives.
 * - A failed attempt or a lost connection moves the next attempt to another node, so a gateway
 *   rides through the loss of one node on its first retry. The waits between attempts are the
 *   session's jittered backoff, unchanged: moving to another node is not a reason to hurry, or a
 *   fleet that lost one node would land on the next one in the same millisecond.
 * - `ordered`: the list in its order, from the first, wrapping around (a primary and its standbys).
 * - `random`: starts at a random node and moves to a random other one, so a fleet spreads over
 *   the cluster instead of all starting on its first node.
 */
import type { BrokerAddress } from './connect.js'

export type FailoverOrder = 'ordered' | 'random'

export class BrokerRotation {
  private index: number

  constructor (private readonly brokers: readonly BrokerAddress[], private readonly order: FailoverOrder, private readonly random: () => number = Math.random) {
    if (brokers.length === 0) throw new RangeError('BrokerRotation needs at least one broker')
    this.index = order === 'random' ? this.pick(brokers.length) : 0
  }

  /** The broker of the next attempt. */
  current (): BrokerAddress { return this.brokers[this.index] as BrokerAddress }

  /** The current broker failed (an attempt, or its connection was lost): the next attempt goes to another one. */
  failed (): void {
    const n = this.brokers.length
    if (n === 1) return
    // random: one of the n - 1 others, uniformly.
    this.index = this.order === 'ordered' ? (this.index + 1) % n : (this.index + 1 + this.pick(n - 1)) % n
  }

  private pick (n: number): number { return Math.min(n - 1, Math.floor(this.random() * n)) }
}
