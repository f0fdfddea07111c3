/**
 * The broker connection as the uplink sees it: exactly what the session, the in-flight window and
 * the status channel use of an MQTT client, and nothing else. The real one wraps an mqtt.js
 * MqttClient opened by connectBroker() (connect.ts); tests inject an in-memory peer
 * (test/helpers/memory-broker-peer.ts) through UplinkOptions.connect.
 */
import type { TLSSocket } from 'node:tls'
import type { MqttClient } from 'mqtt'
import type { TlsCredentials } from '../pki/tls-options.js'
import { connectBroker, type BrokerAddress, type ConnectOptions } from './connect.js'

/** How a connection went away, once. */
export interface LinkLoss {
  /** `connection closed`, `connection error` or `offline`: the client's event. */
  reason: string
  /** The error it came with, if any. */
  err: unknown
  /** No PINGRESP within the keepalive: a dead link found by the keepalive. */
  keepalive: boolean
}

/** A failure answer to a publish; `code` is the PUBACK's failure reason code (MQTT 5) when the broker refused it. */
export type PublishError = Error & { code?: unknown }

export interface BrokerConnection {
  /** The broker's Receive Maximum from its CONNACK (MQTT 5), if it sent one. */
  readonly receiveMaximum: number | undefined
  /** True while the connection is up. */
  readonly connected: boolean
  /**
   * QoS 0: `done` once written. QoS 1: `done` on the PUBACK; with an error when the broker
   * refused it (a numeric `code`) or the connection went away first.
   */
  publish: (topic: string, payload: Buffer | string, options: { qos: 0 | 1, retain?: boolean }, done: (err?: PublishError | null) => void) => void
  /** Subscribes with QoS 1; `done` on the SUBACK. */
  subscribe: (topics: string[], done: (err?: Error | null) => void) => void
  /** The handler of PUBLISHes on subscribed topics; replaces the previous one. */
  onMessage: (handler: (topic: string, payload: Buffer) => void) => void
  /** Tells `listener` once, when the connection closes, fails or goes offline. */
  onceLost: (listener: (loss: LinkLoss) => void) => void
  /** A clean DISCONNECT (the broker then discards the will). */
  end: () => Promise<void>
  /** Cuts the link at once (the socket destroyed): publishes in flight fail, `onceLost` is told. */
  destroy: () => void
  /** Forgets the connection: no listener is told anything more, and the socket is destroyed. */
  release: () => void
}

/** Opens one connection and resolves on its CONNACK; throws the classified error (connect.ts) otherwise. */
export type ConnectBroker = (address: BrokerAddress, credentials: () => TlsCredentials, options: ConnectOptions) => Promise<BrokerConnection>

/** The real connection: mqtt.js over mutual TLS. */
export const connectMqtt: ConnectBroker = async (address, credentials, options) => {
  const { client, connack } = await connectBroker(address, credentials, options)
  return new MqttBrokerConnection(client, connack.properties?.receiveMaximum)
}

class MqttBrokerConnection implements BrokerConnection {
  constructor (private readonly client: MqttClient, readonly receiveMaximum: number | undefined) {}

  get connected (): boolean { return this.client.connected }

  publish (topic: string, payload: Buffer | string, options: { qos: 0 | 1, retain?: boolean }, done: (err?: PublishError | null) => void): void {
    this.client.publish(topic, payload, { qos: options.qos, retain: options.retain ?? false }, done)
  }

  subscribe (topics: string[], done: (err?: Error | null) => void): void {
    this.client.subscribe(topics, { qos: 1 }, done)
  }

  onMessage (handler: (topic: string, payload: Buffer) => void): void {
    this.client.removeAllListeners('message')
    this.client.on('message', handler)
  }

  onceLost (listener: (loss: LinkLoss) => void): void {
    let told = false
    const tell = (reason: string) => (err?: unknown): void => {
      if (told) return
      told = true
      // mqtt.js gives up on a PINGRESP with this error, after failing every publish in flight.
      listener({ reason, err, keepalive: err instanceof Error && err.message === 'Keepalive timeout' })
    }
    this.client.once('close', tell('connection closed'))
    this.client.once('error', tell('connection error'))
    this.client.once('offline', tell('offline'))
  }

  async end (): Promise<void> { await this.client.endAsync(false) }

  destroy (): void { (this.client.stream as TLSSocket | undefined)?.destroy() }

  release (): void {
    const { client } = this
    client.removeAllListeners()
    client.on('error', () => {})
    client.end(true)
    // On a dead link the socket may never finish closing: destroy it, or it keeps the process up.
    ;(client.stream as TLSSocket | undefined)?.destroy()
  }
}
