/**
 * A simulated TCP device: COBS stream frames (encodeStreamFrame) to the forwarder's TCP listener,
 * acks read with cobsDecode + parseAck, as firmware-bridge/PROTOCOL.md describes.
 *
 * Lifecycle (one value): connecting → online → (close) → backoff → connecting … → closed.
 * Reconnect delays are jittered between 200 ms and a cap that doubles per consecutive failure
 * from 400 ms up to 2 s; a successful connect resets it. A connect attempt that takes over 2 s is
 * abandoned.
 *
 * The device's outgoing ring (`queue`, in seq order, at most MAX_QUEUED entries):
 * - with acks: an event stays until an ack with seq ≥ its seq arrives (PROTOCOL.md §4). On every
 *   new connection the whole ring is written again in seq order, and so it is when written events
 *   got no ack for ACK_TIMEOUT_MS; entries written before count as `resent`. Events produced while
 *   disconnected wait in the ring.
 * - without acks: an entry leaves the ring once written to the socket. Events produced while not
 *   connected are lost (`dropped`), as are entries still unwritten when the connection drops.
 * - full: the oldest entry is dropped and counted in `dropped` (a device's ring buffer).
 * - backpressure: when socket.write returns false, writing pauses until 'drain'; production goes on
 *   into the ring.
 */
import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { cobsDecode, encodeDeviceFrame, encodeStreamFrame, parseAck, type PriorityName } from '../src/index.js'
import type { DeviceSpec, DeviceStats, EventMaker, SimDevice } from './device-events.js'

/** A device's ring of unacknowledged events (PROTOCOL.md §4 suggests a small one). */
export const MAX_QUEUED = 10000
const RECONNECT_MIN_MS = 200
const RECONNECT_MAX_MS = 2000
const CONNECT_TIMEOUT_MS = 2000
/**
 * A device with acks that has written events and heard no ack for this long writes its unacked
 * events again, on the same connection. The gateway acks only what it stored: an event it
 * refused (a full store keeping higher priorities) is never acked, and when it is the device's
 * last, no later ack covers it either.
 */
const ACK_TIMEOUT_MS = 2000
const ACK_CHECK_MS = 250
/** An ack frame is under 100 bytes; more than this without a 0x00 is garbage. */
const MAX_ACK_PENDING = 4096

interface Outgoing { seq: number, priority: PriorityName, timeMs: number, frame: Uint8Array, written: boolean }

type TcpState =
  | { kind: 'connecting', socket: Socket }
  | { kind: 'online', socket: Socket, blocked: boolean }
  | { kind: 'backoff', timer: NodeJS.Timeout }
  | { kind: 'closed' }

export class TcpDevice implements SimDevice {
  private state: TcpState
  private queue: Outgoing[] = []
  /** queue[0, nextWrite) has been written on the current connection. */
  private nextWrite = 0
  private failures = 0
  private pending: Buffer = Buffer.alloc(0)
  private readonly counts = { sent: 0, resent: 0, acked: 0, dropped: 0, connects: 0, connectFailures: 0 }
  /** The last ack that freed events, or the last (re)connect or resend. */
  private lastProgress = performance.now()
  private readonly ackTimer: NodeJS.Timeout | undefined

  constructor (readonly spec: DeviceSpec, readonly maker: EventMaker, private readonly target: { host: string, port: number }, private readonly jitter: () => number) {
    this.state = { kind: 'connecting', socket: this.dial() }
    if (spec.acks) this.ackTimer = setInterval(() => { this.resendIfUnacked() }, ACK_CHECK_MS)
  }

  /** No ack for ACK_TIMEOUT_MS although events were written: write the unacked ones again. */
  private resendIfUnacked (): void {
    const st = this.state
    if (st.kind !== 'online' || st.blocked || this.nextWrite === 0 || this.queue.length === 0) return
    if (performance.now() - this.lastProgress < ACK_TIMEOUT_MS) return
    this.lastProgress = performance.now()
    this.nextWrite = 0
    this.flush()
  }

  produce (): void {
    const p = this.maker.next()
    if (!this.spec.acks && this.state.kind !== 'online') {
      this.counts.dropped++
      this.maker.lost.add(p.seq)
      return
    }
    this.queue.push({ seq: p.seq, priority: p.priority, timeMs: p.timeMs, frame: encodeStreamFrame({ type: 'event', body: encodeDeviceFrame(p.event) }), written: false })
    if (this.queue.length > MAX_QUEUED) this.removeFront(this.queue.length - MAX_QUEUED, true)
    this.flush()
  }

  unacked (): number {
    return this.spec.acks ? this.queue.length : 0
  }

  stats (): DeviceStats {
    return { id: this.spec.id, transport: 'tcp', ...this.counts, unacked: this.unacked(), sendErrors: 0, connected: this.state.kind === 'online' }
  }

  async close (): Promise<void> {
    clearInterval(this.ackTimer)
    const st = this.state
    this.state = { kind: 'closed' }
    if (st.kind === 'backoff') clearTimeout(st.timer)
    if (st.kind !== 'connecting' && st.kind !== 'online') return
    const s = st.socket
    if (s.closed) return
    await new Promise<void>((resolve) => {
      s.once('close', () => resolve())
      s.destroy()
    })
  }

  private dial (): Socket {
    const s = connect({ host: this.target.host, port: this.target.port })
    s.setTimeout(CONNECT_TIMEOUT_MS, () => s.destroy())
    // ECONNREFUSED, ECONNRESET, EPIPE: 'close' follows and schedules the reconnect.
    s.on('error', () => {})
    s.on('connect', () => {
      if (this.state.kind !== 'connecting' || this.state.socket !== s) return
      s.setTimeout(0)
      s.setNoDelay(true)
      this.failures = 0
      this.counts.connects++
      this.state = { kind: 'online', socket: s, blocked: false }
      this.lastProgress = performance.now()
      this.nextWrite = 0
      this.pending = Buffer.alloc(0)
      this.flush()
    })
    s.on('data', (chunk: Buffer) => this.onData(chunk))
    s.on('close', () => this.onClose(s))
    return s
  }

  private onClose (s: Socket): void {
    const st = this.state
    if ((st.kind !== 'connecting' && st.kind !== 'online') || st.socket !== s) return
    if (st.kind === 'connecting') {
      this.counts.connectFailures++
      this.failures++
    }
    if (!this.spec.acks) {
      // Entries left in a no-ack ring were never written: lost with the connection.
      this.counts.dropped += this.queue.length
      for (const o of this.queue) this.maker.lost.add(o.seq)
      this.queue = []
    }
    this.nextWrite = 0
    const cap = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** (this.failures + 1))
    const delay = RECONNECT_MIN_MS + this.jitter() * (cap - RECONNECT_MIN_MS)
    this.state = {
      kind: 'backoff',
      timer: setTimeout(() => {
        if (this.state.kind === 'backoff') this.state = { kind: 'connecting', socket: this.dial() }
      }, delay)
    }
  }

  private flush (): void {
    const st = this.state
    if (st.kind !== 'online' || st.blocked) return
    const s = st.socket
    if (s.destroyed || !s.writable) return
    s.cork()
    while (this.nextWrite < this.queue.length) {
      const o = this.queue[this.nextWrite++] as Outgoing
      const ok = s.write(o.frame)
      if (o.written) {
        this.counts.resent++
      } else {
        o.written = true
        this.counts.sent++
      }
      if (!ok) {
        st.blocked = true
        s.once('drain', () => {
          if (this.state !== st) return
          st.blocked = false
          this.flush()
        })
        break
      }
    }
    s.uncork()
    if (!this.spec.acks) this.removeFront(this.nextWrite, false)
  }

  /** Removes queue[0, n), keeping nextWrite on the same entry. */
  private removeFront (n: number, drop: boolean): void {
    if (n <= 0) return
    const removed = this.queue.splice(0, n)
    this.nextWrite = Math.max(0, this.nextWrite - n)
    if (drop) {
      this.counts.dropped += n
      for (const o of removed) this.maker.lost.add(o.seq)
    }
  }

  private onData (chunk: Buffer): void {
    const buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    let start = 0
    for (let at = buf.indexOf(0, start); at !== -1; at = buf.indexOf(0, start)) {
      if (at > start) this.onAckFrame(buf.subarray(start, at))
      start = at + 1
    }
    const rest = buf.length - start
    this.pending = rest === 0 || rest > MAX_ACK_PENDING ? Buffer.alloc(0) : Buffer.from(buf.subarray(start))
  }

  private onAckFrame (encoded: Uint8Array): void {
    const frame = cobsDecode(encoded)
    if (frame === undefined) return
    const ack = parseAck(frame)
    if (!ack.ok || ack.deviceId !== this.spec.id) return
    if (ack.seq > this.counts.acked) this.counts.acked = ack.seq
    if (!this.spec.acks) return
    let n = 0
    while (n < this.queue.length && (this.queue[n] as Outgoing).seq <= ack.seq) n++
    if (n > 0) this.lastProgress = performance.now()
    this.removeFront(n, false)
  }
}
