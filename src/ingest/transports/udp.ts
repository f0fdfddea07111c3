/**
 * UDP listener (PROTOCOL.md section 1, "On UDP"): one raw frame per datagram, no COBS, no acks.
 *
 * Datagrams that arrive in the same event-loop turn are parsed as they come and submitted
 * together on setImmediate: one append per burst, not per datagram. UDP has no backpressure, so
 * while more than `maxPendingEvents` events (all transports) wait for the store, datagrams are
 * dropped unparsed and counted as `overloaded`: the kernel's receive buffer would overflow
 * anyway, and this way the loss is counted. The same holds while the pending events' bytes
 * (those of this turn's datagrams included) reach the memory budget's ingest share.
 */
import dgram from 'node:dgram'
import { isIPv6 } from 'node:net'
import { pendingEventCost } from '../../config/memory-budget.js'
import { parseFrame, type FrameResult } from '../frame.js'
import { DEFAULT_STOP_TIMEOUT_MS, startError, within, type Transport, type TransportContext } from './transport.js'

export interface UdpListen {
  address: string
  port: number
  /** SO_RCVBUF; the kernel caps it at net.core.rmem_max. */
  receiveBufferSize?: number
  /** Pending events in the pipeline above which datagrams are dropped as `overloaded`. */
  maxPendingEvents: number
}

export class UdpTransport implements Transport {
  readonly name = 'udp'
  private socket: dgram.Socket | undefined
  private batch: FrameResult[] = []
  private batchBytes = 0
  private scheduled = false
  private readonly appends = new Set<Promise<unknown>>()

  constructor (private readonly listen: UdpListen, private readonly ctx: TransportContext) {}

  async start (): Promise<{ address: string }> {
    if (this.socket !== undefined) throw new Error('udp transport already started')
    const options: dgram.SocketOptions = { type: isIPv6(this.listen.address) ? 'udp6' : 'udp4' }
    if (this.listen.receiveBufferSize !== undefined) options.recvBufferSize = this.listen.receiveBufferSize
    const socket = dgram.createSocket(options)
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject)
        socket.bind(this.listen.port, this.listen.address, () => { socket.off('error', reject); resolve() })
      })
    } catch (err) {
      socket.close()
      throw startError('udp', `${this.listen.address}:${this.listen.port}`, err)
    }
    socket.on('error', (err) => this.ctx.pipeline.countError('udp', err, 'socket'))
    socket.on('message', this.onMessage)
    this.socket = socket
    const bound = socket.address()
    const address = bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`
    this.ctx.logger.info({ transport: 'udp', address }, 'ingest listening')
    return { address }
  }

  async stop (): Promise<void> {
    const socket = this.socket
    if (socket === undefined) return
    this.socket = undefined
    socket.off('message', this.onMessage)
    await new Promise<void>(resolve => socket.close(() => resolve()))
    this.flush()
    await within(Promise.allSettled([...this.appends]), this.ctx.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS)
  }

  private readonly onMessage = (msg: Buffer): void => {
    const { pipeline, pendingBytes } = this.ctx
    if (pipeline.pendingEvents + this.batch.length >= this.listen.maxPendingEvents ||
      (pendingBytes !== undefined && pipeline.pendingBytes + this.batchBytes >= pendingBytes)) {
      pipeline.countDrop('udp', 'overloaded')
      return
    }
    this.batchBytes += pendingEventCost(msg.length)
    this.batch.push(parseFrame(msg, pipeline.frameOptions))
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => this.flush())
    }
  }

  private flush (): void {
    this.scheduled = false
    if (this.batch.length === 0) return
    const frames = this.batch
    this.batch = []
    this.batchBytes = 0
    const done = this.ctx.pipeline.submit('udp', frames).finally(() => this.appends.delete(done))
    this.appends.add(done)
  }
}
