/**
 * The uplink session's lifecycle as one value: a discriminated union whose variants carry the
 * data that exists only in that state (the connection while online, the wait while backing off,
 * the deadline while closing), so no field can disagree with the state.
 *
 *   idle → connecting → online → (link lost, dead, or a batch refused) → backoff → connecting …
 *   stop(), from any state → closing → closed
 *
 * `closed` is terminal: a stopped session never connects again, and start() after stop() is
 * refused (EDGEFWD_ERR_UPLINK_CLOSED). `closing` is entered once: a second stop() joins it and
 * may only bring its deadline closer.
 */
import type { BrokerConnection } from './broker-connection.js'
import type { DeadLinkReason } from '../types.js'

/** The externally visible states (metrics, status, logs): the `kind` of the lifecycle. */
export type UplinkState = Lifecycle['kind']

/** Why the session is not online. */
export interface Offline {
  /** Since when (Unix ms). */
  sinceMs: number
  /** What ended the last connection or attempt; undefined before the first failure. */
  lastError: string | undefined
}

/** One broker connection, from its CONNACK until it is dropped. */
export interface Link {
  readonly connection: BrokerConnection
  /** Batches in flight at most on it: the configured window capped by the broker's Receive Maximum. */
  readonly window: number
  readonly sinceMs: number
  /** The connection's close, error or offline event came. */
  lost: boolean
  /** What ended the last connection or attempt (this one's once it is lost). */
  lastError: string | undefined
  /** We found it dead, or the broker refused a batch on it: counted once per connection. */
  condemned: DeadLinkReason | 'refused' | undefined
  /** Forgotten: its batches returned to the store and its socket destroyed. */
  dropped: boolean
}

export interface Closing extends Offline {
  kind: 'closing'
  /** The connection whose PUBACKs the stop waits for, if it was online. */
  link: Link | undefined
  /** Until when batches in flight and store acks are waited for; a second stop() may bring it closer. */
  deadlineAt: number
  /** Aborted to end the current wait early: the deadline moved, or there is nothing left to wait for. */
  wake: AbortController
  /** The stop in progress: every stop() call returns it. */
  done: Promise<void>
}

export type Lifecycle =
  | { kind: 'idle' } & Offline
  | { kind: 'connecting', attempt: number, afterRefusedBatch: boolean } & Offline
  | { kind: 'online', link: Link }
  /** `afterRefusedBatch`: the broker refused a batch on the last connection, so its CONNACK alone does not reset the backoff. */
  | { kind: 'backoff', delayMs: number, afterRefusedBatch: boolean } & Offline
  | Closing
  | { kind: 'closed' } & Offline
