/**
 * The uplink's side channel: everything on the broker connection that is not a batch.
 *
 * - Status: `online` retained on connect; `offline` as the MQTT will and on a clean stop.
 * - Subscriptions (remote configuration): renewed on every connection; retained messages come
 *   again on each (re)subscribe, so the handler must be idempotent.
 * - Publishes aside (the heartbeat, configuration acks): on the current connection only, never
 *   queued.
 */
import type { MqttClient } from 'mqtt'
import type { Logger } from '../observe/log.js'
import { describeError } from './connect.js'
import { withTimeout, type Clock } from './clock.js'

export interface StatusChannel {
  /** The MQTT will of each connection: `offline`, retained. */
  will: (nowMs: number) => { topic: string, payload: Buffer, qos: 1, retain: true }
  /** A connection is online: `online` retained, and the subscription renewed on it. */
  online: (client: MqttClient, nowMs: number) => void
  /** `offline`, retained, before a clean DISCONNECT; bounded. */
  offline: (client: MqttClient, nowMs: number) => Promise<void>
  /** Subscribes on every connection from now on; on `client` at once when online. */
  subscribe: (topics: string[], onMessage: (topic: string, payload: Buffer) => void, client: MqttClient | undefined) => void
  /** Publishes on `client` (the connection online, if any); false when there is none. */
  publishAside: (client: MqttClient | undefined, topic: string, payload: Uint8Array | string, options: { qos: 0 | 1, retain?: boolean }) => boolean
  /** QoS 1 on `client`; true on its PUBACK, false offline, on an error or after `timeoutMs`. */
  publishConfirmed: (client: MqttClient | undefined, topic: string, payload: Uint8Array | string, options: { retain?: boolean, timeoutMs: number }) => Promise<boolean>
}

export class UplinkStatusChannel implements StatusChannel {
  private subscription: { topics: string[], onMessage: (topic: string, payload: Buffer) => void } | undefined

  constructor (private readonly statusTopic: string, private readonly clock: Clock, private readonly logger: Logger) {}

  will (nowMs: number): { topic: string, payload: Buffer, qos: 1, retain: true } {
    return { topic: this.statusTopic, payload: Buffer.from(statusPayload('offline', nowMs)), qos: 1, retain: true }
  }

  online (client: MqttClient, nowMs: number): void {
    client.publish(this.statusTopic, statusPayload('online', nowMs), { qos: 1, retain: true })
    this.subscribeOn(client)
  }

  async offline (client: MqttClient, nowMs: number): Promise<void> {
    await withTimeout(this.clock, client.publishAsync(this.statusTopic, statusPayload('offline', nowMs), { qos: 1, retain: true }), 1000).catch(() => {})
  }

  subscribe (topics: string[], onMessage: (topic: string, payload: Buffer) => void, client: MqttClient | undefined): void {
    this.subscription = { topics: [...topics], onMessage }
    if (client?.connected === true) this.subscribeOn(client)
  }

  private subscribeOn (client: MqttClient): void {
    const sub = this.subscription
    if (sub === undefined || sub.topics.length === 0) return
    client.removeAllListeners('message')
    client.on('message', (topic, payload) => {
      try { sub.onMessage(topic, payload) } catch (err) { this.logger.error({ err, topic }, 'a subscribed message handler failed') }
    })
    client.subscribe(sub.topics, { qos: 1 }, (err) => {
      if (err !== undefined && err !== null) this.logger.warn({ err, topics: sub.topics }, `uplink could not subscribe to ${sub.topics.join(', ')}: ${describeError(err)}`)
    })
  }

  publishAside (client: MqttClient | undefined, topic: string, payload: Uint8Array | string, options: { qos: 0 | 1, retain?: boolean }): boolean {
    if (client?.connected !== true) return false
    client.publish(topic, typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
      { qos: options.qos, retain: options.retain ?? false }, () => {})
    return true
  }

  async publishConfirmed (client: MqttClient | undefined, topic: string, payload: Uint8Array | string, options: { retain?: boolean, timeoutMs: number }): Promise<boolean> {
    if (client?.connected !== true) return false
    const body = typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
    const acked = await withTimeout(this.clock, client.publishAsync(topic, body, { qos: 1, retain: options.retain ?? false }).then(() => true, () => false), options.timeoutMs)
    return acked === true
  }
}

function statusPayload (status: 'online' | 'offline', nowMs: number): string {
  return JSON.stringify({ status, time: new Date(nowMs).toISOString() })
}
