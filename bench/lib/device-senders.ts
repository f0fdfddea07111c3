/**
 * Simulated devices on the forwarder's TCP and UDP listeners (127.0.0.1): a TCP device that reads
 * the gateway's acks back, a connected UDP socket, and senders of malformed frames as fast as the
 * bench can push them. Frames are bench/lib/device-frames.ts's.
 */
import dgram from 'node:dgram'
import net from 'node:net'
import { parseAck } from '../../src/ingest/ack.js'
import { cobsDecode } from '../../src/ingest/cobs.js'
import { malformedFrameRound } from './device-frames.js'

/** A TCP device: one connection, COBS frames out, the gateway's ack frames read back. */
export class TcpDevice {
  sent = 0
  acked = 0
  private pending = Buffer.alloc(0)
  private readonly closed: Promise<void>
  private constructor (readonly id: string, readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => { this.read(chunk) })
    socket.on('error', () => {})
    this.closed = new Promise<void>(resolve => { socket.once('close', () => { resolve() }) })
  }

  static async connect (id: string, port: number): Promise<TcpDevice> {
    const socket = net.connect(port, '127.0.0.1')
    socket.setNoDelay(true)
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    return new TcpDevice(id, socket)
  }

  /** Acks are 0x00-terminated COBS frames; each says "stored, up to this seq". */
  private read (chunk: Buffer): void {
    let data = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    for (let end = data.indexOf(0); end >= 0; end = data.indexOf(0)) {
      const frame = end === 0 ? undefined : cobsDecode(data.subarray(0, end))
      const ack = frame === undefined ? undefined : parseAck(frame)
      if (ack?.ok === true && ack.deviceId === this.id) this.acked = Math.max(this.acked, ack.seq)
      data = data.subarray(end + 1)
    }
    this.pending = Buffer.from(data)
  }

  send (frames: Uint8Array[]): void {
    this.socket.write(Buffer.concat(frames))
  }

  /** end(), then destroy() after 5 s; resolves once the socket is closed. */
  async close (): Promise<void> {
    this.socket.end()
    const timer = setTimeout(() => { this.socket.destroy() }, 5000)
    await this.closed
    clearTimeout(timer)
  }
}

export interface UdpDevice { id: string, socket: dgram.Socket, sent: number }

/** A UDP socket connected to 127.0.0.1:port, its errors ignored (UDP carries no acks anyway). */
export async function udpSocket (port: number): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4')
  socket.on('error', () => {})
  // Connected: send() then skips the address lookup it otherwise does per datagram.
  await new Promise<void>(resolve => { socket.connect(port, '127.0.0.1', resolve) })
  return socket
}

/** `count` malformed frames over 4 TCP connections, as fast as the gateway takes them. */
export async function sendMalformedTcp (port: number, count: number): Promise<void> {
  const roundFrames = malformedFrameRound('tcp')
  const whole = Buffer.concat(roundFrames)
  const connections = 4
  await Promise.all(Array.from({ length: connections }, async (_, c) => {
    const quota = Math.floor(count / connections) + (c < count % connections ? 1 : 0)
    const socket = net.connect(port, '127.0.0.1')
    socket.on('error', () => {})
    socket.resume() // nothing comes back for garbage, but never let an ack block the gateway
    let isClosed = false
    const closed = new Promise<void>(resolve => { socket.once('close', () => { isClosed = true; resolve() }) })
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    // A connection the gateway closes ends the sending (the frames not sent show as unaccounted).
    for (let left = quota; left > 0 && !isClosed; left -= roundFrames.length) {
      const chunk = left >= roundFrames.length ? whole : Buffer.concat(roundFrames.slice(0, left))
      if (!socket.write(chunk)) await Promise.race([new Promise(resolve => socket.once('drain', resolve)), closed])
    }
    socket.end()
    const timer = setTimeout(() => { socket.destroy() }, 30_000)
    await closed
    clearTimeout(timer)
  }))
}

/** `count` malformed datagrams from 4 sockets. */
export async function sendMalformedUdp (port: number, count: number): Promise<void> {
  const roundFrames = malformedFrameRound('udp')
  const sockets = await Promise.all(Array.from({ length: 4 }, async () => await udpSocket(port)))
  // Rounds of 64 datagrams per socket, each round waiting for its sends: as fast as the bench
  // can, without queueing unbounded sends in this process.
  let sent = 0
  while (sent < count) {
    const n = Math.min(count - sent, 64 * sockets.length)
    await Promise.all(Array.from({ length: n }, async (_, k) => {
      const frame = roundFrames[(sent + k) % roundFrames.length] as Buffer
      const socket = sockets[k % sockets.length] as dgram.Socket
      await new Promise<void>(resolve => { socket.send(frame, () => { resolve() }) })
    }))
    sent += n
  }
  for (const s of sockets) s.close()
}
