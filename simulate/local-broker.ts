/**
 * The gateway's local broker in a simulation: a second aedes, plain MQTT on 127.0.0.1, where the
 * Tasmota-like devices publish and the forwarder's `ingest.mqtt` subscribes. Unlike the uplink's
 * broker (embedded-broker.ts) it has no TLS and is not behind the chaos proxy: on a gateway the
 * local Mosquitto runs on the same box, and a scenario's outages are of the uplink. aedes speaks
 * MQTT 3.1.1 only, so the forwarder's entry sets `mqttVersion: "3.1.1"`.
 *
 * Sessions live as long as the broker: the forwarder's (clean session off) keeps its
 * subscription and the QoS 1 messages it has not acknowledged while a power cut holds it down,
 * and gets them again when it reconnects, as from Mosquitto.
 *
 * What the simulation watches: which client subscribed to what (the devices start only once the
 * forwarder has, or aedes would drop their first messages: no subscriber, nothing kept), and the
 * QoS 1 messages a subscriber acknowledged (PUBACK), to know when the forwarder has taken all.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { Aedes } from 'aedes'
import type { Client, PublishPacket, PubrelPacket, Subscription } from 'aedes'

export interface LocalBroker {
  readonly port: number
  /** `mqtt://127.0.0.1:PORT` */
  readonly url: string
  /** Resolves once `clientId` has subscribed to exactly `filter` (now or before); rejects after timeoutMs. */
  subscribed: (clientId: string, filter: string, timeoutMs: number) => Promise<void>
  /** Calls `listener` for each QoS 1 message a subscriber acknowledged; returns an unsubscribe function. */
  onAck: (listener: (ack: { clientId: string, topic: string, payload: Buffer }) => void) => () => void
  close: () => Promise<void>
}

export async function startLocalBroker (): Promise<LocalBroker> {
  const broker = await Aedes.createBroker()
  const subscriptions = new Set<string>()
  const waiters = new Set<() => void>()
  const acks = new Set<(ack: { clientId: string, topic: string, payload: Buffer }) => void>()
  broker.on('subscribe', (subs: Subscription[], client: Client) => {
    for (const s of subs) subscriptions.add(`${client.id}\u0000${s.topic}`)
    for (const wake of waiters) wake()
  })
  // aedes emits 'ack' with the packet it had stored for the subscriber (undefined for an unknown message id).
  broker.on('ack', (packet: PublishPacket | PubrelPacket | undefined, client: Client) => {
    if (packet?.cmd !== 'publish') return
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    for (const listener of acks) listener({ clientId: client.id, topic: packet.topic, payload })
  })

  const sockets = new Set<Socket>()
  const server = createServer(socket => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    broker.handle(socket)
  })
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve() })
    })
  } catch (err) {
    await new Promise<void>(resolve => broker.close(() => resolve()))
    throw err
  }
  const port = (server.address() as AddressInfo).port

  let closing: Promise<void> | undefined
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    subscribed: async (clientId, filter, timeoutMs) => {
      const key = `${clientId}\u0000${filter}`
      if (subscriptions.has(key)) return
      await new Promise<void>((resolve, reject) => {
        const done = (): void => { clearTimeout(timer); waiters.delete(check) }
        const check = (): void => { if (subscriptions.has(key)) { done(); resolve() } }
        const timer = setTimeout(() => { done(); reject(new Error(`${clientId} did not subscribe to ${filter} on the local broker within ${timeoutMs} ms`)) }, timeoutMs)
        waiters.add(check)
      })
    },
    onAck: listener => {
      acks.add(listener)
      return () => { acks.delete(listener) }
    },
    close: async () => {
      closing ??= (async () => {
        const serverClosed = new Promise<void>(resolve => server.close(() => resolve()))
        for (const socket of sockets) socket.destroy()
        await new Promise<void>(resolve => broker.close(() => resolve()))
        await serverClosed
      })()
      await closing
    },
  }
}
