/**
 * The uplink session: drains the store to the broker over MQTT with mutual TLS, deleting events
 * only on the broker's PUBACK.
 *
 * ## States (logged on every change)
 * idle → connecting → online → (link lost) → backoff → connecting … ; stop() → closing → idle.
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
 * - A store ack that fails after the PUBACK (an I/O error) is retried (ACK_ATTEMPTS, growing
 *   waits); if it still fails the lease is nacked, so its events are sent again (the receiver
 *   drops the duplicates) rather than left leased until a restart. Each failure is counted.
 * - Reconnect: p-retry drives the attempts (abortable by stop()); the waits are full-jitter
 *   exponential (backoff.ts), longer after a broker refusal; a TLS failure is logged with its
 *   specific EDGEFWD_ERR_TLS_* code (pki/tls-errors.ts).
 * - Status: `online` retained on connect; `offline` as the MQTT will and on a clean stop.
 */
import type { TLSSocket } from 'node:tls'
import type { MqttClient } from 'mqtt'
import pRetry, { AbortError } from 'p-retry'
import { isEdgefwdError } from '../errors.js'
import type { Logger } from '../observe/log.js'
import type { TlsCredentials } from '../pki/tls-options.js'
import type { BatchSource, Lease } from '../contracts.js'
import type { DeadLinkReason } from '../types.js'
import { Backoff, type BackoffOptions } from './backoff.js'
import { connectBroker, connectFailureReason, describeError, type BrokerAddress } from './connect.js'
import { systemClock, withTimeout, type Clock } from './clock.js'
import { encodeLeaseEnvelope, type CompressionOptions } from './envelope.js'
import { InFlightBatches, type InFlightCounts } from './in-flight.js'
import { UplinkSendLimits, type LiveUplinkSettings } from './send-limits.js'
import { UplinkStatusChannel } from './status-channel.js'

export { ACK_ATTEMPTS } from './in-flight.js'
export type { LiveUplinkSettings } from './send-limits.js'

export type UplinkState = 'idle' | 'connecting' | 'online' | 'backoff' | 'closing'

export interface UplinkOptions {
  address: BrokerAddress
  credentials: () => TlsCredentials
  gatewayId: string
  protocolVersion: 4 | 5
  topics: { events: string, status: string }
  /** Batches in flight at most (also capped by the broker's Receive Maximum). */
  window: number
  batch: { maxEvents: number, maxBytes: number }
  /**
   * After a batch that was not full, wait this long before leasing the next, so a trickle of
   * events goes out in fewer, fuller batches; also how often an empty store is asked again.
   */
  lingerMs: number
  compression: CompressionOptions
  pubackTimeoutMs: number
  connectTimeoutMs: number
  keepaliveS: number
  backoff: BackoffOptions
  /** Envelope bytes per second at most (a metered link); undefined: no cap. */
  rateLimitBytesPerSecond?: number
  /** Envelope bytes per UTC day after which only `critical` events are sent; undefined: none. */
  dailyBudgetBytes?: number
  /** Batch sequence numbers: unique per gateway, increasing, never reused across restarts. */
  nextBatchSeq: () => number
  /** The time, timers and waits of the session; the real ones by default. */
  clock?: Clock
  random?: () => number
  /** Told of deliveries and failed connection attempts (metrics); never on the uplink's own state. */
  observer?: UplinkObserver
}

export interface UplinkObserver {
  /** A batch's PUBACK came and the store deleted its events; `pubackMs` from publish to PUBACK. */
  batchAcked?: (lease: Lease, pubackMs: number) => void
  /** A connection attempt failed; `reason` is connectFailureReason()'s label. */
  connectFailed?: (reason: string) => void
}

export interface UplinkStats extends InFlightCounts {
  state: UplinkState
  connects: number
  disconnects: number
  /** Connections found dead, by what found them (each connection at most once). */
  deadLinks: Record<DeadLinkReason, number>
  published: number
  /** Events in published batches (resends included). */
  eventsPublished: number
  bytesSent: number
  inFlight: number
  lastError: string | undefined
  /** Failed connection attempts by connectFailureReason(). */
  connectFailures: Record<string, number>
  /** The wait before the next attempt while in backoff, else 0. */
  backoffMs: number
  /** Since when the session has not been online (Unix ms); undefined while online. */
  offlineSinceMs: number | undefined
  /** Envelope bytes sent in the current UTC day, and whether the daily budget is spent. */
  bytesToday: number
  budgetExhausted: boolean
  /** Times the rate cap made the session wait, and for how long in all. */
  rateWaits: number
  rateWaitMs: number
}

export class Uplink {
  private stateNow: UplinkState = 'idle'
  private readonly counts = { connects: 0, disconnects: 0, published: 0, eventsPublished: 0, bytesSent: 0 }
  private readonly deadLinks: Record<DeadLinkReason, number> = { puback_timeout: 0, keepalive: 0 }
  /** The connection last found dead: a dead link is counted once per connection. */
  private deadClient: MqttClient | undefined
  private readonly connectFailures: Record<string, number> = {}
  private backoffMs = 0
  private offlineSinceMs: number | undefined
  private lastError: string | undefined
  private readonly options: UplinkOptions
  private readonly abort = new AbortController()
  private loop: Promise<void> | undefined
  private client: MqttClient | undefined
  private readonly inFlight: InFlightBatches
  private readonly limits: UplinkSendLimits
  private readonly status: UplinkStatusChannel
  private readonly backoff: Backoff
  private readonly clock: Clock

  constructor (private readonly store: BatchSource, options: UplinkOptions, private readonly logger: Logger) {
    this.options = { ...options }
    this.backoff = new Backoff(options.backoff, options.random)
    this.clock = options.clock ?? systemClock
    this.offlineSinceMs = this.now()
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
    this.status.subscribe(topics, onMessage, this.onlineClient())
  }

  /** The connection while online, else undefined. */
  private onlineClient (): MqttClient | undefined {
    return this.stateNow === 'online' ? this.client : undefined
  }

  state (): UplinkState { return this.stateNow }

  stats (): UplinkStats {
    return {
      state: this.stateNow,
      ...this.counts,
      ...this.inFlight.counts,
      deadLinks: { ...this.deadLinks },
      inFlight: this.inFlight.size,
      lastError: this.lastError,
      connectFailures: { ...this.connectFailures },
      backoffMs: this.stateNow === 'backoff' ? this.backoffMs : 0,
      offlineSinceMs: this.offlineSinceMs,
      ...this.limits.stats()
    }
  }

  /**
   * Publishes a message that is not a batch (the heartbeat) on the current connection; false
   * when offline. Never queued: the next one replaces it.
   */
  publishAside (topic: string, payload: Uint8Array | string, options: { qos: 0 | 1, retain?: boolean } = { qos: 0 }): boolean {
    return this.status.publishAside(this.onlineClient(), topic, payload, options)
  }

  /**
   * Publishes with QoS 1 on the current connection and resolves true on its PUBACK; false when
   * offline, on an error, or after `timeoutMs` without PUBACK. Never queued.
   */
  async publishConfirmed (topic: string, payload: Uint8Array | string, options: { retain?: boolean, timeoutMs?: number } = {}): Promise<boolean> {
    return await this.status.publishConfirmed(this.onlineClient(), topic, payload, { ...options, timeoutMs: options.timeoutMs ?? this.options.pubackTimeoutMs })
  }

  start (): void {
    if (this.loop !== undefined) return
    this.loop = this.run().catch(err => { this.logger.error({ err }, 'uplink stopped on an unexpected error') })
  }

  /**
   * Stops: no new batch is leased; in-flight batches get until `deadlineMs` for their PUBACK,
   * the rest are nacked (they stay in the store); `offline` is published; the client closes.
   */
  async stop (deadlineMs = 5000): Promise<void> {
    if (this.abort.signal.aborted) { await this.loop; return }
    this.setState('closing')
    const until = this.now() + deadlineMs
    while (this.inFlight.size > 0 && this.now() < until && this.client?.connected === true && !this.abort.signal.aborted) await this.clock.sleep(10)
    this.abort.abort()
    const client = this.client
    if (client?.connected === true) {
      // A clean DISCONNECT: the broker then discards the will, so `offline` is published once.
      // Bounded: on a dead link the PUBACK never comes (the will then says offline instead).
      await this.status.offline(client, this.now())
      await withTimeout(this.clock, client.endAsync(false), 2000).catch(() => {})
    }
    this.dropConnection('stop')
    await this.loop
    this.setState('idle')
  }

  private stopping (): boolean { return this.stateNow === 'closing' || this.abort.signal.aborted }

  private now (): number { return this.clock.now() }

  private setState (next: UplinkState, detail: object = {}): void {
    if (next === this.stateNow) return
    const from = this.stateNow
    this.stateNow = next
    if (next === 'online') this.offlineSinceMs = undefined
    else if (this.offlineSinceMs === undefined) this.offlineSinceMs = this.now()
    this.logger.info({ from, to: next, ...detail }, `uplink ${next}`)
  }

  private async run (): Promise<void> {
    const signal = this.abort.signal
    // The first attempt's set-up (TLS context, MQTT client) costs tens of ms of a cold start: let
    // the caller finish starting first (listeners open, systemd told READY=1).
    await new Promise<void>(resolve => { setImmediate(resolve) })
    while (!this.stopping()) {
      try {
        const { client, window } = await pRetry(async () => await this.connectOnce(), {
          retries: Number.POSITIVE_INFINITY,
          minTimeout: 0,
          maxTimeout: 0,
          signal,
          // p-retry drives the attempts and aborts; the wait is ours: full jitter (backoff.ts).
          onFailedAttempt: async ({ error }) => {
            const refused = isEdgefwdError(error, 'EDGEFWD_ERR_UPLINK_REFUSED')
            const wait = this.backoff.next(refused ? 'refused' : 'failure')
            this.lastError = isEdgefwdError(error) ? error.code : error.message
            const reason = connectFailureReason(error)
            this.connectFailures[reason] = (this.connectFailures[reason] ?? 0) + 1
            this.backoffMs = wait
            this.options.observer?.connectFailed?.(reason)
            this.setState('backoff')
            this.logger.warn({ code: isEdgefwdError(error) ? error.code : undefined, err: error, waitMs: wait, failures: this.backoff.failures },
              `uplink cannot connect: ${error.message}; next attempt in ${wait} ms`)
            await this.clock.sleep(wait, signal)
          }
        })
        this.backoff.reset()
        await this.pump(client, window)
      } catch (err) {
        if (this.stopping()) return
        this.logger.error({ err }, 'uplink connection loop failed')
        this.dropConnection('unexpected error')
        await this.clock.sleep(this.backoff.next(), signal).catch(() => {})
      }
    }
  }

  /** One connection attempt: resolves online with the window to use, or throws a classified error. */
  private async connectOnce (): Promise<{ client: MqttClient, window: number }> {
    if (this.stopping()) throw new AbortError('stopping')
    this.setState('connecting')
    const { options } = this
    const { client, connack } = await connectBroker(options.address, options.credentials, {
      clientId: options.gatewayId,
      protocolVersion: options.protocolVersion,
      timeoutMs: options.connectTimeoutMs,
      keepaliveS: options.keepaliveS,
      clock: this.clock,
      will: this.status.will(this.now()),
    })
    this.client = client
    this.counts.connects++
    const receiveMaximum = connack.properties?.receiveMaximum
    const window = Math.max(1, Math.min(options.window, receiveMaximum ?? Number.POSITIVE_INFINITY))
    this.setState('online', { broker: options.address.url, window, ...(receiveMaximum === undefined ? {} : { receiveMaximum }) })
    this.status.online(client, this.now())
    return { client, window }
  }

  /** Publishes batches while the connection lives; returns when it is lost (or on stop). */
  private async pump (client: MqttClient, window: number): Promise<void> {
    const signal = this.abort.signal
    let lost = false
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
    const onLost = (reason: string) => (err?: unknown): void => {
      if (lost) return
      lost = true
      this.lastError = err === undefined ? reason : describeError(err)
      // mqtt.js gives up on a PINGRESP with this error, after failing every publish in flight.
      if (err instanceof Error && err.message === 'Keepalive timeout') this.deadLink(client, 'keepalive')
      interrupt()
    }
    client.once('close', onLost('connection closed'))
    client.once('error', onLost('connection error'))
    client.once('offline', onLost('offline'))
    signal.addEventListener('abort', interrupt)
    try {
      await this.publishWhileOnline(client, window, () => lost, pause, onAck)
    } finally {
      signal.removeEventListener('abort', interrupt)
    }
    // Stopping: the connection stays up for the PUBACKs stop() waits for.
    if (lost && !this.stopping()) {
      this.counts.disconnects++
      this.dropConnection(this.lastError ?? 'connection lost')
    }
  }

  private async publishWhileOnline (client: MqttClient, window: number, isLost: () => boolean,
    pause: (ms?: number) => Promise<void>, wakeOnAck: () => void): Promise<void> {
    const { options } = this
    while (!isLost() && !this.stopping()) {
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
      if (isLost() || this.stopping()) { this.inFlight.returnUnsent(lease.id); break }
      let bytes: Uint8Array
      try {
        bytes = encodeLeaseEnvelope(lease, { gatewayId: options.gatewayId, batchSeq: options.nextBatchSeq(), nowMs: Math.floor(this.now()) }, options.compression).bytes
      } catch (err) {
        this.store.nack(lease.id) // never strand a lease: its events go back to the queue
        throw err
      }
      const timer = this.clock.setTimer(() => { this.deadLink(client, 'puback_timeout') }, options.pubackTimeoutMs)
      this.inFlight.track(lease, timer, this.now())
      this.counts.published++
      this.counts.eventsPublished += lease.events.length
      this.counts.bytesSent += bytes.byteLength
      this.limits.sent(bytes.byteLength, lease.events.length, lease.bytes)
      client.publish(options.topics.events, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { qos: 1 }, err => {
        // mqtt.js reports success as undefined or null.
        const failed = err !== undefined && err !== null
        if (!this.inFlight.settle(lease.id, failed, this.now())) return // already nacked with a lost connection
        if (failed) {
          // A connection going away fails every publish in flight ('Connection closed', before its
          // 'close' or 'error'); the pump counts that loss once. A PUBACK with a failure reason
          // code (MQTT 5: a number in `code`) is the broker refusing this batch on a live link.
          if (typeof (err as { code?: unknown }).code === 'number' && this.client === client) this.refused(client, err)
          return
        }
        wakeOnAck()
      })
    }
  }

  /**
   * The link is dead even if the socket says otherwise: no PUBACK in time, or no PINGRESP.
   * Counted once per connection, however many batches were in flight on it.
   */
  private deadLink (client: MqttClient, reason: DeadLinkReason): void {
    if (this.client !== client || this.deadClient === client) return
    this.deadClient = client
    this.deadLinks[reason]++
    const inFlight = this.inFlight.size
    if (reason === 'puback_timeout') this.logger.warn({ reason, pubackTimeoutMs: this.options.pubackTimeoutMs, inFlight }, 'no PUBACK in time: treating the link as dead')
    else this.logger.warn({ reason, keepaliveS: this.options.keepaliveS, inFlight }, 'no answer to the MQTT keepalive: the link is dead')
    // Destroying the socket makes mqtt.js emit 'close', which ends the pump and nacks what is in flight.
    ;(client.stream as TLSSocket | undefined)?.destroy()
  }

  /**
   * The broker refused a publish on a live connection: drop the connection, so the batch (nacked
   * by the caller) is sent again on the next one. The reconnect is at once: the backoff starts
   * over after every successful connection.
   */
  private refused (client: MqttClient, err: unknown): void {
    if (this.deadClient === client) return
    this.deadClient = client
    this.logger.warn({ err }, `the broker refused a batch: ${describeError(err)}; reconnecting to send it again`)
    ;(client.stream as TLSSocket | undefined)?.destroy()
  }

  /** Forgets the connection: every batch in flight goes back to the store. */
  private dropConnection (reason: string): void {
    const returned = this.inFlight.returnAll()
    if (returned > 0) this.logger.info({ reason, batches: returned }, 'batches in flight returned to the store')
    const client = this.client
    this.client = undefined
    if (client !== undefined) {
      client.removeAllListeners()
      client.on('error', () => {})
      client.end(true)
      // On a dead link the socket may never finish closing: destroy it, or it keeps the process up.
      ;(client.stream as TLSSocket | undefined)?.destroy()
    }
  }
}
