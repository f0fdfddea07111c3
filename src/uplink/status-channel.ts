/**
 * The uplink's side channel: everything on the broker connection that is not a batch.
 *
 * - Status: `online` retained on connect; `offline` as the MQTT will and on a clean stop.
 * - Subscriptions (remote configuration): renewed on every connection; retained messages come
 *   again on each (re)subscribe, so the handler must be idempotent.
 * - Publishes aside (the heartbeat, configuration acks): on the current connection only, never
 *   queued.
 */
import type { BrokerConnection } from './broker-connection.js'
import type { Logger } from '../observe/log.js'
import { describeError } from './connect.js'
import { withTimeout, type Clock } from '../clock.js'

export interface StatusChannel {
  /** The MQTT will of each connection: `offline`, retained. */
  will: (nowMs: number) => { topic: string, payload: Buffer, qos: 1, retain: true }
  /** A connection is online: `online` retained, and the subscription renewed on it. */
  online: (connection: BrokerConnection, nowMs: number) => void
  /** `offline`, retained, before a clean DISCONNECT; bounded. */
  offline: (connection: BrokerConnection, nowMs: number) => Promise<void>
  /** Subscribes on every connection from now on; on `connection` at once when online. */
  subscribe: (topics: string[], onMessage: (topic: string, payload: Buffer) => void, connection: BrokerConnection | undefined) => void
  /** Publishes on `connection` (the connection online, if any); false when there is none. */
  publishAside: (connection: BrokerConnection | undefined, topic: string, payload: Uint8Array | string, options: { qos: 0 | 1, retain?: boolean }) => boolean
  /** QoS 1 on `connection`; true on its PUBACK, false offline, on an error or after `timeoutMs`. */
  publishConfirmed: (connection: BrokerConnection | undefined, topic: string, payload: Uint8Array | string, options: { retain?: boolean, timeoutMs: number }) => Promise<boolean>
}

export class UplinkStatusChannel implements StatusChannel {
  private subscription: { topics: string[], onMessage: (topic: string, payload: Buffer) => void } | undefined

  constructor (private readonly statusTopic: string, private readonly clock: Clock, private readonly logger: Logger) {}

  will (nowMs: number): { topic: string, payload: Buffer, qos: 1, retain: true } {
    return { topic: this.statusTopic, payload: Buffer.from(statusPayload('offline', nowMs)), qos: 1, retain: true }
  }

  online (connection: BrokerConnection, nowMs: number): void {
    connection.publish(this.statusTopic, statusPayload('online', nowMs), { qos: 1, retain: true }, ignore)
    this.subscribeOn(connection)
  }

  async offline (connection: BrokerConnection, nowMs: number): Promise<void> {
    await withTimeout(this.clock, publishQos1(connection, this.statusTopic, statusPayload('offline', nowMs), true), 1000)
  }

  subscribe (topics: string[], onMessage: (topic: string, payload: Buffer) => void, connection: BrokerConnection | undefined): void {
    this.subscription = { topics: [...topics], onMessage }
    if (connection?.connected === true) this.subscribeOn(connection)
  }

  private subscribeOn (connection: BrokerConnection): void {
    const sub = this.subscription
    if (sub === undefined || sub.topics.length === 0) return
    connection.onMessage((topic, payload) => {
      try { sub.onMessage(topic, payload) } catch (err) { this.logger.error({ err, topic }, 'a subscribed message handler failed') }
    })
    connection.subscribe(sub.topics, (err) => {
      if (err !== undefined && err !== null) this.logger.warn({ err, topics: sub.topics }, `uplink could not subscribe to ${sub.topics.join(', ')}: ${describeError(err)}`)
    })
  }

  publishAside (connection: BrokerConnection | undefined, topic: string, payload: Uint8Array | string, options: { qos: 0 | 1, retain?: boolean }): boolean {
    if (connection?.connected !== true) return false
    connection.publish(topic, typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
      { qos: options.qos, retain: options.retain ?? false }, ignore)
    return true
  }

  async publishConfirmed (connection: BrokerConnection | undefined, topic: string, payload: Uint8Array | string, options: { retain?: boolean, timeoutMs: number }): Promise<boolean> {
    if (connection?.connected !== true) return false
    const body = typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
    const acked = await withTimeout(this.clock, publishQos1(connection, topic, body, options.retain ?? false), options.timeoutMs)
    return acked === true
  }
}

const ignore = (): void => {}

/** True on the PUBACK, false on an error; never rejects. */
async function publishQos1 (connection: BrokerConnection, topic: string, payload: Buffer | string, retain: boolean): Promise<boolean> {
  return await new Promise<boolean>(resolve => { connection.publish(topic, payload, { qos: 1, retain }, err => { resolve(err === undefined || err === null) }) })
}

function statusPayload (status: 'online' | 'offline', nowMs: number): string {
  return JSON.stringify({ status, time: new Date(nowMs).toISOString() })
}
