/**
 * The uplink session: drains the store to the broker over MQTT with mutual TLS, deleting events
 * only on the broker's PUBACK. This module is the connection loop; the lifecycle value
 * (lifecycle.ts), the send limits (send-limits.ts), the in-flight window (in-flight.ts) and the
 * status side channel (status-channel.ts) are their own modules.
 *
 * ## Rules
 * - One mqtt.js client per connection, `reconnectPeriod: 0`, clean start: mqtt.js keeps no
 *   offline queue and never resends on its own. The store is the only queue.
 * - At most `window` batches in flight, never more than the broker's Receive Maximum (MQTT 5).
 * - PUBACK → ack exactly that lease. The link lost, or a publish without PUBACK for
 *   `pubackTimeoutMs` (a dead link: no RST, keepalive not yet expired) → the socket is destroyed,
 *   every lease in flight is nacked (sent again after reconnect) and the session backs off.
 *   Nothing is ever deleted because it was written to a socket.
 * - A dead link is counted once per connection, with what found it: `puback_timeout` (our timer)
 *   or `keepalive` (mqtt.js's PINGRESP wait). A connection that closes (RST, broker restart) is a
 *   disconnect, not a dead link; the publishes it fails are its batches in flight, nacked once.
 * - A batch refused by the broker (a PUBACK with a failure reason code) drops the connection; the
 *   batch is nacked and sent again on the next one, after a jittered backoff like any failure.
 * - Reconnect: p-retry drives the attempts (abortable by stop()); the waits are full-jitter
 *   exponential (backoff.ts), longer after a broker refusal; a TLS failure is logged with its
 *   specific EDGEFWD_ERR_TLS_* code (pki/tls-errors.ts).
 * - stop(): no new lease; batches in flight and store acks (retries included) get the grace for
 *   their PUBACK and delete, woken by the window emptying, not by polling; then `offline`, a clean
 *   DISCONNECT, and `closed` for good. Concurrent stops are one stop; a shorter grace shortens it.
 */
import pRetry, { AbortError } from 'p-retry'
import { EdgefwdError, isEdgefwdError } from '../errors.js'
import type { Logger } from '../observe/log.js'
import type { BatchSource } from '../contracts.js'
import type { DeadLinkReason } from '../types.js'
import { Backoff } from '../backoff.js'
import { BrokerRotation } from './brokers.js'
import { connectMqtt, type BrokerConnection, type LinkLoss } from './broker-connection.js'
import { connectFailureReason, describeError } from './connect.js'
import { systemClock, withTimeout, type Clock } from '../clock.js'
import { encodeLeaseEnvelope } from './envelope.js'
import { InFlightBatches } from './in-flight.js'
import type { Closing, Lifecycle, Link, Offline, UplinkState } from './lifecycle.js'
import type { UplinkOptions, UplinkStats } from './options.js'
import { UplinkSendLimits, type LiveUplinkSettings } from './send-limits.js'
import { UplinkStatusChannel } from './status-channel.js'

export { ACK_ATTEMPTS } from './in-flight.js'
export type { LiveUplinkSettings } from './send-limits.js'
export type { UplinkState } from './lifecycle.js'
export type { UplinkObserver, UplinkOptions, UplinkStats } from './options.js'

export class Uplink {
  private life: Lifecycle
  private readonly counts = { connects: 0, disconnects: 0, published: 0, eventsPublished: 0, bytesSent: 0 }
  private readonly deadLinks: Record<DeadLinkReason, number> = { puback_timeout: 0, keepalive: 0 }
  private readonly connectFailures: Record<string, number> = {}
  private readonly options: UplinkOptions
  /** Aborted when a stop's grace is over: waits end, no lease is taken, ack retries give up. */
  private readonly abort = new AbortController()
  private loop: Promise<void> | undefined
  private readonly inFlight: InFlightBatches
  private readonly limits: UplinkSendLimits
  private readonly status: UplinkStatusChannel
  private readonly backoff: Backoff
  private readonly brokers: BrokerRotation
  private readonly clock: Clock
  /** The last offline span between two connections (stats().lastOutage). */
  private lastOutage: UplinkStats['lastOutage']
  /** Aborted by reconnectNow() to end the backoff wait under way. */
  private backoffWake: AbortController | undefined

  constructor (private readonly store: BatchSource, options: UplinkOptions, private readonly logger: Logger) {
    this.options = { ...options }
    this.backoff = new Backoff(options.backoff, options.random)
    this.brokers = new BrokerRotation(options.brokers, options.failover ?? 'ordered', options.random)
    this.clock = options.clock ?? systemClock
    this.life = { kind: 'idle', sinceMs: this.now(), lastError: undefined }
    const { batch, lingerMs, rateLimitBytesPerSecond, dailyBudgetBytes } = options
    this.limits = new UplinkSendLimits({ batch, lingerMs, rateLimitBytesPerSecond, dailyBudgetBytes }, () => this.now(), logger)
    this.inFlight = new InFlightBatches(store, logger, this.clock, this.abort.signal, options.observer?.batchAcked)
    this.status = new UplinkStatusChannel(options.topics.status, this.clock, logger)
  }

  /**
   * Applies new batch, linger, rate cap and budget settings (a remote configuration update);
   * the next lease uses them, batches in flight are not touched.
   */
  reconfigure (settings: LiveUplinkSettings): void {
    this.limits.reconfigure(settings)
  }

  /**
   * Subscribes to these topics (QoS 1) on every connection from now on, the current one included;
   * messages go to `onMessage`. Retained messages arrive on each (re)subscribe: the handler must
   * be idempotent. One subscription per session; a second call replaces the first.
   */
  subscribe (topics: string[], onMessage: (topic: string, payload: Buffer) => void): void {
    this.status.subscribe(topics, onMessage, this.onlineConnection())
  }

  /** The connection while online, else undefined. */
  private onlineConnection (): BrokerConnection | undefined {
    return this.life.kind === 'online' ? this.life.link.connection : undefined
  }

  state (): UplinkState { return this.life.kind }

  stats (): UplinkStats {
    const life = this.life
    return {
      state: life.kind,
      ...this.counts,
      ...this.inFlight.counts,
      deadLinks: { ...this.deadLinks },
      inFlight: this.inFlight.size,
      lastError: life.kind === 'online' ? life.link.lastError : life.lastError,
      connectFailures: { ...this.connectFailures },
      backoffMs: life.kind === 'backoff' ? life.delayMs : 0,
      offlineSinceMs: life.kind === 'online' ? undefined : life.sinceMs,
      lastOutage: this.lastOutage,
      ...this.limits.stats()
    }
  }

  /**
   * Publishes a message that is not a batch (the heartbeat) on the current connection; false
   * when offline. Never queued: the next one replaces it.
   */
  publishAside (topic: string, payload: Uint8Array | string, options: { qos: 0 | 1, retain?: boolean } = { qos: 0 }): boolean {
    return this.status.publishAside(this.onlineConnection(), topic, payload, options)
  }

  /**
   * Publishes with QoS 1 on the current connection and resolves true on its PUBACK; false when
   * offline, on an error, or after `timeoutMs` without PUBACK. Never queued.
   */
  async publishConfirmed (topic: string, payload: Uint8Array | string, options: { retain?: boolean, timeoutMs?: number } = {}): Promise<boolean> {
    return await this.status.publishConfirmed(this.onlineConnection(), topic, payload, { ...options, timeoutMs: options.timeoutMs ?? this.options.pubackTimeoutMs })
  }

  /**
   * An operator's "reconnect now" (a remediation): online, the connection is dropped (its batches
   * in flight go back to the store and are sent again) and the next attempt starts at once;
   * in backoff, the wait ends now. The backoff's failure count is kept, so a broker that still
   * fails is not hammered. Says what it did, in a few words.
   */
  reconnectNow (): string {
    const life = this.life
    switch (life.kind) {
      case 'online':
        this.logger.info({ broker: this.brokers.current().url }, 'uplink: reconnect requested, dropping the connection')
        life.link.connection.destroy()
        return 'the connection was dropped; connecting again now'
      case 'backoff':
        this.logger.info({ waitMs: life.delayMs }, 'uplink: reconnect requested, the backoff wait ends now')
        this.backoffWake?.abort()
        return `the backoff wait (${Math.round(life.delayMs / 1000)} s) was cut short; connecting now`
      case 'idle': case 'connecting':
        return 'already connecting; nothing changed'
      default:
        return 'the uplink is stopping; nothing changed'
    }
  }

  /** A backoff wait: ends early on reconnectNow() (resolves) or stop() (rejects, like clock.sleep). */
  private async backoffSleep (ms: number): Promise<void> {
    const signal = this.abort.signal
    const wake = new AbortController()
    this.backoffWake = wake
    try {
      await this.clock.sleep(ms, AbortSignal.any([signal, wake.signal]))
    } catch (err) {
      if (signal.aborted) throw err
    } finally {
      if (this.backoffWake === wake) this.backoffWake = undefined
    }
  }

  /** Starts connecting (once; again is a no-op). A stopped session never starts again: that throws. */
  start (): void {
    if (this.stopping()) {
      throw new EdgefwdError('EDGEFWD_ERR_UPLINK_CLOSED', 'this uplink session was stopped: start() after stop() is refused', { hint: 'create a new Uplink to connect again' })
    }
    if (this.loop !== undefined) return
    this.loop = this.run().catch(err => { this.logger.error({ err }, 'uplink stopped on an unexpected error') })
  }

  /**
   * Stops, for good: no new batch is leased; batches in flight get until `graceMs` for their
   * PUBACK and store acks being retried until then to succeed; the rest are nacked (they stay in
   * the store); `offline` is published; the client closes; the state is `closed`.
   * A second call returns the stop in progress; with a shorter grace it brings the deadline closer
   * (a second SIGTERM), never further.
   */
  async stop (graceMs = 5000): Promise<void> {
    const life = this.life
    if (life.kind === 'closed') return
    const deadlineAt = this.now() + graceMs
    if (life.kind === 'closing') {
      if (deadlineAt < life.deadlineAt) {
        life.deadlineAt = deadlineAt
        life.wake.abort()
      }
      await life.done
      return
    }
    const closing: Closing = { kind: 'closing', link: life.kind === 'online' ? life.link : undefined, deadlineAt, wake: new AbortController(), done: Promise.resolve(), ...this.offline() }
    this.enter(closing, { graceMs })
    closing.done = this.close(closing)
    await closing.done
  }

  private async close (closing: Closing): Promise<void> {
    // Woken when the window empties (in-flight.ts), the deadline moves, or the link is lost.
    while (!this.inFlight.isIdle && this.now() < closing.deadlineAt) {
      const wake = closing.wake = new AbortController()
      await Promise.race([this.inFlight.idle(), this.clock.sleep(closing.deadlineAt - this.now(), wake.signal).catch(() => {})])
      wake.abort() // ends the sleep's timer if the window emptied first
    }
    this.abort.abort()
    const link = closing.link
    if (link !== undefined && !link.lost && !link.dropped && link.connection.connected) {
      // A clean DISCONNECT: the broker then discards the will, so `offline` is published once.
      // Bounded: on a dead link the PUBACK never comes (the will then says offline instead).
      await this.status.offline(link.connection, this.now())
      await withTimeout(this.clock, link.connection.end(), 2000).catch(() => {})
    }
    this.dropConnection(link, 'stop')
    await this.loop
    // An ack retry cut short makes one last attempt before it returns its lease to the store.
    await withTimeout(this.clock, this.inFlight.idle(), 1000)
    this.enter({ kind: 'closed', sinceMs: closing.sinceMs, lastError: closing.lastError })
  }

  /** Read through a method: TypeScript would keep `life` narrowed across an await. */
  private stopping (): boolean { return this.life.kind === 'closing' || this.life.kind === 'closed' }

  private now (): number { return this.clock.now() }

  /** Why the session is not online, carried from state to state until it is online again. */
  private offline (): Offline {
    const life = this.life
    if (life.kind === 'online') return { sinceMs: this.now(), lastError: life.link.lastError }
    return { sinceMs: life.sinceMs, lastError: life.lastError }
  }

  /** Changes the state (logged when its kind changes). Once closing, only `closed` follows. */
  private enter (next: Lifecycle, detail: object = {}): void {
    const from = this.life.kind
    if ((from === 'closing' && next.kind !== 'closed') || from === 'closed') return
    this.life = next
    if (next.kind !== from) this.logger.info({ from, to: next.kind, ...detail }, `uplink ${next.kind}`)
  }

  private async run (): Promise<void> {
    const signal = this.abort.signal
    // The first attempt's set-up (TLS context, MQTT client) costs tens of ms of a cold start: let
    // the caller finish starting first (listeners open, systemd told READY=1).
    await new Promise<void>(resolve => { setImmediate(resolve) })
    while (!this.stopping()) {
      try {
        const link = await pRetry(async () => await this.connectOnce(), {
          retries: Number.POSITIVE_INFINITY,
          minTimeout: 0,
          maxTimeout: 0,
          signal,
          // p-retry drives the attempts and aborts; the wait is ours: full jitter (backoff.ts).
          onFailedAttempt: async ({ error }) => {
            const refused = isEdgefwdError(error, 'EDGEFWD_ERR_UPLINK_REFUSED')
            const wait = this.backoff.next(refused ? 'refused' : 'failure')
            const reason = connectFailureReason(error)
            this.brokers.failed()
            this.connectFailures[reason] = (this.connectFailures[reason] ?? 0) + 1
            this.options.observer?.connectFailed?.(reason)
            this.enter({ kind: 'backoff', delayMs: wait, afterRefusedBatch: this.afterRefusedBatch(), sinceMs: this.offline().sinceMs, lastError: isEdgefwdError(error) ? error.code : error.message })
            this.logger.warn({ code: isEdgefwdError(error) ? error.code : undefined, err: error, waitMs: wait, failures: this.backoff.failures },
              `uplink cannot connect: ${error.message}; next attempt in ${wait} ms`)
            await this.backoffSleep(wait)
          }
        })
        await this.pump(link)
        // The connection is gone (lost, dead, or a batch refused): the next attempt goes to another node.
        this.brokers.failed()
        if (link.condemned === 'refused' && !this.stopping()) {
          // Like any failed connection: a jittered wait, growing while refusals follow each other.
          const wait = this.backoff.next('failure')
          this.enter({ kind: 'backoff', delayMs: wait, afterRefusedBatch: true, ...this.offline() })
          this.logger.warn({ waitMs: wait, failures: this.backoff.failures }, `uplink: a batch was refused; next attempt in ${wait} ms`)
          await this.backoffSleep(wait).catch(() => {})
        }
      } catch (err) {
        if (this.stopping()) return
        this.logger.error({ err }, 'uplink connection loop failed')
        const life = this.life
        this.dropConnection(life.kind === 'online' ? life.link : undefined, 'unexpected error')
        const wait = this.backoff.next()
        this.enter({ kind: 'backoff', delayMs: wait, afterRefusedBatch: this.afterRefusedBatch(), ...this.offline() })
        await this.backoffSleep(wait).catch(() => {})
      }
    }
  }

  private afterRefusedBatch (): boolean {
    const life = this.life
    return (life.kind === 'backoff' || life.kind === 'connecting') && life.afterRefusedBatch
  }

  /** One connection attempt: resolves online with its link, or throws a classified error. */
  private async connectOnce (): Promise<Link> {
    if (this.stopping()) throw new AbortError('stopping')
    const afterRefusedBatch = this.afterRefusedBatch()
    this.enter({ kind: 'connecting', attempt: this.backoff.failures + 1, afterRefusedBatch, ...this.offline() })
    const { options } = this
    const broker = this.brokers.current()
    const connection = await (options.connect ?? connectMqtt)(broker, options.credentials, {
      clientId: options.gatewayId,
      protocolVersion: options.protocolVersion,
      timeoutMs: options.connectTimeoutMs,
      keepaliveS: options.keepaliveS,
      clock: this.clock,
      will: this.status.will(this.now()),
    })
    const previous = this.offline()
    const { receiveMaximum } = connection
    const window = Math.max(1, Math.min(options.window, receiveMaximum ?? Number.POSITIVE_INFINITY))
    const link: Link = { connection, window, sinceMs: this.now(), lost: false, lastError: previous.lastError, condemned: undefined, dropped: false }
    if (this.stopping()) {
      // stop() came during the attempt: this connection is not used (its will says offline).
      this.dropConnection(link, 'stop')
      throw new AbortError('stopping')
    }
    this.counts.connects++
    if (this.counts.connects > 1) this.lastOutage = { sinceMs: previous.sinceMs, untilMs: this.now(), lastError: previous.lastError }
    // The backoff starts over with a connection; after a refused batch, only once one is delivered.
    if (!afterRefusedBatch) this.backoff.reset()
    this.enter({ kind: 'online', link }, { broker: broker.url, window, ...(receiveMaximum === undefined ? {} : { receiveMaximum }) })
    this.status.online(connection, this.now())
    return link
  }

  /** Publishes batches while the connection lives; returns when it is lost (or on stop). */
  private async pump (link: Link): Promise<void> {
    const signal = this.abort.signal
    // Every wait ends on its own wake-up, called by whatever should end it (the link lost, stop,
    // a PUBACK). Not Promise.race against one long-lived "lost" promise: each race leaves a
    // reaction on it until it settles, i.e. for as long as the connection lives (measured: ~400 B
    // per wait; an idle gateway polling every 50 ms would grow by ~700 MB a day).
    // A timed wait (rate cap, linger) ends early only for the link lost or stop; an untimed one
    // (the window full) also for a PUBACK.
    let wake: (() => void) | undefined
    let untimed = false
    const interrupt = (): void => { const w = wake; wake = undefined; w?.() }
    const onAck = (): void => { if (untimed) interrupt() }
    const pause = async (ms?: number): Promise<void> => {
      const woken = new Promise<void>(resolve => { wake = resolve })
      untimed = ms === undefined
      await (ms === undefined ? woken : Promise.race([woken, this.clock.sleep(ms, signal).catch(() => {})]))
      wake = undefined
    }
    link.connection.onceLost(({ reason, err, keepalive }: LinkLoss): void => {
      link.lost = true
      link.lastError = err === undefined ? reason : describeError(err)
      if (keepalive) this.deadLink(link, 'keepalive')
      interrupt()
      // Stopping: no PUBACK can come any more, so stop() need not wait for one.
      if (this.stopping()) this.dropConnection(link, link.lastError)
    })
    signal.addEventListener('abort', interrupt)
    try {
      await this.publishWhileOnline(link, pause, onAck)
    } finally {
      signal.removeEventListener('abort', interrupt)
    }
    // Stopping: the connection stays up for the PUBACKs stop() waits for.
    if (link.lost && !this.stopping()) {
      this.counts.disconnects++
      this.dropConnection(link, link.lastError ?? 'connection lost')
    }
  }

  private async publishWhileOnline (link: Link, pause: (ms?: number) => Promise<void>, wakeOnAck: () => void): Promise<void> {
    const { options } = this
    const { connection, window } = link
    while (!link.lost && !this.stopping()) {
      if (this.inFlight.size >= window) {
        await pause()
        continue
      }
      const wait = this.limits.rateWaitMs()
      if (wait > 0) {
        await pause(wait)
        continue
      }
      const linger = this.limits.lingerMs()
      if (linger > 0) {
        await pause(linger)
        continue
      }
      const { batch, lingerMs } = this.limits.settings
      // The daily budget spent: critical events only, the rest stay buffered until the next day.
      const lease = await this.store.lease(batch.maxEvents, batch.maxBytes, this.limits.budgetSpent() ? { minPriority: 3 } : {})
      if (lease === null) {
        await pause(lingerMs)
        continue
      }
      if (link.lost || this.stopping()) { this.inFlight.returnUnsent(lease.id); break }
      let bytes: Uint8Array
      try {
        bytes = encodeLeaseEnvelope(lease, { gatewayId: options.gatewayId, batchSeq: options.nextBatchSeq(), nowMs: Math.floor(this.now()) }, options.compression).bytes
      } catch (err) {
        this.store.nack(lease.id) // never strand a lease: its events go back to the queue
        throw err
      }
      const timer = this.clock.setTimer(() => { this.deadLink(link, 'puback_timeout') }, options.pubackTimeoutMs)
      this.inFlight.track(lease, timer, this.now())
      this.counts.published++
      this.counts.eventsPublished += lease.events.length
      this.counts.bytesSent += bytes.byteLength
      this.limits.sent(bytes.byteLength, lease.events.length, lease.bytes)
      connection.publish(options.topics.events, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { qos: 1 }, err => {
        // mqtt.js reports success as undefined or null.
        const failed = err !== undefined && err !== null
        if (!this.inFlight.settle(lease.id, failed, this.now())) return // already nacked with a lost connection
        if (failed) {
          // A connection going away fails every publish in flight ('Connection closed', before its
          // 'close' or 'error'); the pump counts that loss once. A PUBACK with a failure reason
          // code (MQTT 5: a number in `code`) is the broker refusing this batch on a live link.
          if (typeof (err as { code?: unknown }).code === 'number') this.refused(link, err)
          return
        }
        this.backoff.reset()
        wakeOnAck()
      })
    }
  }

  /**
   * The link is dead even if the socket says otherwise: no PUBACK in time, or no PINGRESP.
   * Counted once per connection, however many batches were in flight on it.
   */
  private deadLink (link: Link, reason: DeadLinkReason): void {
    if (link.dropped || link.condemned !== undefined) return
    link.condemned = reason
    this.deadLinks[reason]++
    const inFlight = this.inFlight.size
    if (reason === 'puback_timeout') this.logger.warn({ reason, pubackTimeoutMs: this.options.pubackTimeoutMs, inFlight }, 'no PUBACK in time: treating the link as dead')
    else this.logger.warn({ reason, keepaliveS: this.options.keepaliveS, inFlight }, 'no answer to the MQTT keepalive: the link is dead')
    // Destroying the socket makes mqtt.js emit 'close', which ends the pump and nacks what is in flight.
    link.connection.destroy()
  }

  /**
   * The broker refused a publish on a live connection: drop the connection, so the batch (nacked
   * by the caller) is sent again on the next one, after a jittered backoff (run()).
   */
  private refused (link: Link, err: unknown): void {
    if (link.dropped || link.condemned !== undefined) return
    link.condemned = 'refused'
    this.logger.warn({ err }, `the broker refused a batch: ${describeError(err)}; reconnecting to send it again`)
    link.connection.destroy()
  }

  /** Forgets the connection (if any, once): every batch in flight goes back to the store. */
  private dropConnection (link: Link | undefined, reason: string): void {
    const returned = this.inFlight.returnAll()
    if (returned > 0) this.logger.info({ reason, batches: returned }, 'batches in flight returned to the store')
    if (link === undefined || link.dropped) return
    link.dropped = true
    link.connection.release()
  }
}
