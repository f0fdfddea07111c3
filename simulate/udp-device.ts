/**
 * A simulated UDP device: one raw frame (encodeFrame) per datagram, no acks; a send that fails is
 * counted in sendErrors and its event is one the device lost itself.
 */
import { createSocket, type Socket as DatagramSocket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import { encodeDeviceFrame, encodeFrame } from '../src/index.js'
import type { DeviceSpec, DeviceStats, EventMaker, SimDevice } from './device-events.js'

export class UdpDevice implements SimDevice {
  private readonly socket: DatagramSocket
  private closed = false
  private readonly counts = { sent: 0, sendErrors: 0 }

  constructor (readonly spec: DeviceSpec, readonly maker: EventMaker, private readonly target: { host: string, port: number }) {
    this.socket = createSocket(isIPv6(target.host) ? 'udp6' : 'udp4')
    this.socket.on('error', () => { this.counts.sendErrors++ })
  }

  produce (): void {
    const p = this.maker.next()
    const frame = encodeFrame({ type: 'event', body: encodeDeviceFrame(p.event) })
    this.counts.sent++
    try {
      this.socket.send(frame, this.target.port, this.target.host, (err) => {
        if (err == null) return
        this.counts.sendErrors++
        this.maker.lost.add(p.seq)
      })
    } catch {
      this.counts.sendErrors++
      this.maker.lost.add(p.seq)
    }
  }

  unacked (): number {
    return 0
  }

  stats (): DeviceStats {
    return { id: this.spec.id, transport: 'udp', ...this.counts, resent: 0, acked: 0, unacked: 0, dropped: 0, connects: 0, connectFailures: 0, connected: !this.closed }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await new Promise<void>((resolve) => this.socket.close(() => resolve()))
  }
}
