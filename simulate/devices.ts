/**
 * A fleet of simulated devices for `edgefwd simulate`: each device produces events at its rate
 * and sends them to the forwarder's real ingest listeners, TCP (COBS stream frames, with acks) or
 * UDP (one raw frame per datagram), as firmware-bridge/PROTOCOL.md describes. The frames come from
 * the project's own encoders (encodeDeviceFrame, encodeFrame, encodeStreamFrame); acks are read
 * with cobsDecode + parseAck.
 *
 * Determinism: at start every device draws one 32-bit seed from `options.random` (in the order of
 * `options.devices`) and then makes all its choices (priority, stream, payload bytes) from its own
 * PRNG. So the event of a given (device, seq) is the same in two fleets with the same seed, however
 * the ticks fall and however many devices there are. Timing itself (ticks, reconnect jitter) is
 * not deterministic; the jitter comes from a separate PRNG so it never shifts event choices.
 *
 * Scheduling: one setInterval per fleet. Each tick every device adds rate × elapsed to its due
 * count (the fraction carries over) and sends floor(due) events; due is capped at max(rate, 1), so
 * a stalled event loop yields at most one second's worth of events in one tick, not a flood.
 * Elapsed time is measured with performance.now(); `options.now` only stamps events.
 *
 * TCP device lifecycle (one value): connecting → online → (close) → backoff → connecting … →
 * closed. Reconnect delays are jittered between 200 ms and a cap that doubles per consecutive
 * failure from 400 ms up to 2 s; a successful connect resets it. A connect attempt that takes
 * over 2 s is abandoned.
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
 *
 * `sent()` lists every event a device produced, with sentAtMs = deviceTimeMs = now() when it was
 * produced; `lost()` the seqs of those it gave up itself: dropped while disconnected, left
 * unwritten when a no-ack connection dropped, pushed out of a full ring before they were acked,
 * or a UDP send that failed. So the simulation can tell a device's own losses from the
 * gateway's, event by event. (`DeviceStats.sent` counts first writes to a socket.)
 */
import { createSocket, type Socket as DatagramSocket } from 'node:dgram'
import { connect, isIPv6, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  cobsDecode, deviceIdProblem, encodeDeviceFrame, encodeFrame, encodeStreamFrame, eventProblem, parseAck, PRIORITIES,
  type DeviceEvent, type Priority, type PriorityName
} from '../src/index.js'
import { seededRandom } from './random.js'

export interface DeviceSpec {
  id: string
  transport: 'tcp' | 'udp'
  /** tcp only: keep unacknowledged events and resend them (same seqs) after reconnecting. */
  acks: boolean
  ratePerSecond: number
  /** Weights; need not sum to 1. */
  priorities: Array<[PriorityName, number]>
  /** Picked uniformly. */
  streams: string[]
  payloadBytes: number
}

export interface SentEvent { seq: number, priority: PriorityName, sentAtMs: number }

export interface DeviceStats {
  id: string
  transport: 'tcp' | 'udp'
  /** Events written to a socket for the first time (= sent().get(id).length). */
  sent: number
  /** Writes of events already written before (after a reconnect). */
  resent: number
  /** The highest seq acked, 0 if none. */
  acked: number
  /** Events in the ring waiting for an ack (devices with acks; 0 otherwise). */
  unacked: number
  /** Events lost inside the device: produced while disconnected (no acks), unwritten at a cut (no acks), or pushed out of a full ring. */
  dropped: number
  /** UDP sends that failed (socket errors). */
  sendErrors: number
  connects: number
  connectFailures: number
  /** TCP: a connection is open now. UDP: always true until close. */
  connected: boolean
}

export interface FleetStats { sent: number, resent: number, unacked: number, dropped: number, devices: DeviceStats[] }

export interface FleetOptions {
  devices: DeviceSpec[]
  /** Required when any device uses tcp. */
  tcp?: { host: string, port: number }
  /** Required when any device uses udp. */
  udp?: { host: string, port: number }
  /** Seeded; every device's choices are derived from it (see the module comment). */
  random: () => number
  /** ms clock for deviceTimeMs and sentAtMs; default Date.now. */
  now?: () => number
  /** Scheduling granularity, default 20. */
  tickMs?: number
}

export interface Fleet {
  /** Every event each device produced, by device id, in seq order (resends do not add entries). */
  sent: () => ReadonlyMap<string, readonly SentEvent[]>
  /** The seqs each device gave up itself (see the module comment): lost before the gateway. */
  lost: () => ReadonlyMap<string, ReadonlySet<number>>
  stats: () => FleetStats
  /** Stop producing new events; tcp devices keep their connections (to get acks and resend). */
  stopSending: () => void
  /** Resolves when every tcp-with-acks device has no unacked event, or after timeoutMs; returns the number still unacked. */
  settle: (timeoutMs: number) => Promise<number>
  /** Closes every socket and timer. */
  close: () => Promise<void>
}

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
const SETTLE_POLL_MS = 25
/** An ack frame is under 100 bytes; more than this without a 0x00 is garbage. */
const MAX_ACK_PENDING = 4096
const MAX_PAYLOAD_BYTES = 8192

function pickWeighted<T> (random: () => number, weights: ReadonlyArray<readonly [T, number]>, total: number): T {
  let r = random() * total
  for (const [value, w] of weights) {
    if (r < w) return value
    r -= w
  }
  // Rounding can leave r just above the last weight: the last positive entry.
  for (let i = weights.length - 1; i >= 0; i--) if ((weights[i] as readonly [T, number])[1] > 0) return (weights[i] as readonly [T, number])[0]
  throw new RangeError('no positive weight')
}

interface Produced { seq: number, priority: PriorityName, timeMs: number, event: DeviceEvent }

/** One device's event source: seq counter and seeded choices. */
class EventMaker {
  private seq = 0
  private readonly total: number
  readonly sent: SentEvent[] = []
  readonly lost = new Set<number>()

  constructor (private readonly spec: DeviceSpec, private readonly random: () => number, private readonly now: () => number) {
    this.total = spec.priorities.reduce((sum, [, w]) => sum + w, 0)
  }

  next (): Produced {
    const seq = ++this.seq
    const priority = pickWeighted(this.random, this.spec.priorities, this.total)
    const stream = this.spec.streams[Math.min(this.spec.streams.length - 1, Math.floor(this.random() * this.spec.streams.length))] as string
    const raw = new Uint8Array(this.spec.payloadBytes)
    for (let i = 0; i < raw.length; i += 4) {
      let v = Math.floor(this.random() * 4294967296)
      for (let j = i; j < Math.min(i + 4, raw.length); j++, v >>>= 8) raw[j] = v & 0xff
    }
    const timeMs = Math.floor(this.now())
    const event: DeviceEvent = {
      deviceId: this.spec.id, seq, deviceTimeMs: timeMs, priority: PRIORITIES.indexOf(priority) as Priority, stream, value: { kind: 'raw', raw }
    }
    this.sent.push({ seq, priority, sentAtMs: timeMs })
    return { seq, priority, timeMs, event }
  }
}

interface SimDevice {
  readonly spec: DeviceSpec
  readonly maker: EventMaker
  /** Produce one new event and send or queue it. */
  produce: () => void
  unacked: () => number
  stats: () => DeviceStats
  close: () => Promise<void>
}

interface Outgoing { seq: number, priority: PriorityName, timeMs: number, frame: Uint8Array, written: boolean }

type TcpState =
  | { kind: 'connecting', socket: Socket }
  | { kind: 'online', socket: Socket, blocked: boolean }
  | { kind: 'backoff', timer: NodeJS.Timeout }
  | { kind: 'closed' }

class TcpDevice implements SimDevice {
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

class UdpDevice implements SimDevice {
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

function checkSpec (d: DeviceSpec, options: FleetOptions): void {
  const where = `device ${JSON.stringify(d.id)}`
  const idProblem = typeof d.id === 'string' ? deviceIdProblem(d.id) : 'id must be a string'
  if (idProblem !== undefined) throw new RangeError(`${where}: ${idProblem}`)
  if (d.transport !== 'tcp' && d.transport !== 'udp') throw new RangeError(`${where}: transport must be tcp or udp`)
  if (d.transport === 'tcp' && options.tcp === undefined) throw new RangeError(`${where} uses tcp: options.tcp is required`)
  if (d.transport === 'udp' && options.udp === undefined) throw new RangeError(`${where} uses udp: options.udp is required`)
  if (d.transport === 'udp' && d.acks) throw new RangeError(`${where}: acks need tcp (UDP has none, PROTOCOL.md §4)`)
  if (!(Number.isFinite(d.ratePerSecond) && d.ratePerSecond >= 0)) throw new RangeError(`${where}: ratePerSecond must be a finite number >= 0`)
  if (!Number.isInteger(d.payloadBytes) || d.payloadBytes < 0 || d.payloadBytes > MAX_PAYLOAD_BYTES) {
    throw new RangeError(`${where}: payloadBytes must be an integer 0..${MAX_PAYLOAD_BYTES}`)
  }
  let total = 0
  for (const [name, w] of d.priorities) {
    if (!PRIORITIES.includes(name)) throw new RangeError(`${where}: unknown priority ${JSON.stringify(name)}`)
    if (!(Number.isFinite(w) && w >= 0)) throw new RangeError(`${where}: priority weights must be finite and >= 0`)
    total += w
  }
  if (!(total > 0)) throw new RangeError(`${where}: priorities need a positive total weight`)
  if (d.streams.length === 0) throw new RangeError(`${where}: streams must not be empty`)
  for (const stream of d.streams) {
    const problem = eventProblem({ deviceId: d.id, seq: 1, deviceTimeMs: 0, priority: 1, stream, value: { kind: 'raw', raw: new Uint8Array(d.payloadBytes) } })
    if (problem !== undefined) throw new RangeError(`${where}, stream ${JSON.stringify(stream)}: ${problem}`)
  }
}

/** Starts every device now: TCP devices dial at once, events flow from the first tick. Throws RangeError for an invalid spec. */
export function startFleet (options: FleetOptions): Fleet {
  const tickMs = options.tickMs ?? 20
  if (!(Number.isFinite(tickMs) && tickMs > 0)) throw new RangeError('tickMs must be a positive number')
  const ids = new Set<string>()
  for (const d of options.devices) {
    checkSpec(d, options)
    if (ids.has(d.id)) throw new RangeError(`device ${JSON.stringify(d.id)} appears twice`)
    ids.add(d.id)
  }
  const now = options.now ?? Date.now
  const seeds = options.devices.map(() => Math.floor(options.random() * 4294967296))
  const jitter = seededRandom(Math.floor(options.random() * 4294967296))
  const devices: SimDevice[] = options.devices.map((spec, i) => {
    const maker = new EventMaker(spec, seededRandom(seeds[i] as number), now)
    return spec.transport === 'tcp'
      ? new TcpDevice(spec, maker, options.tcp as { host: string, port: number }, jitter)
      : new UdpDevice(spec, maker, options.udp as { host: string, port: number })
  })
  const sent = new Map<string, readonly SentEvent[]>(devices.map((d) => [d.spec.id, d.maker.sent]))
  const lost = new Map<string, ReadonlySet<number>>(devices.map((d) => [d.spec.id, d.maker.lost]))
  const due = devices.map(() => 0)
  let last = performance.now()
  let timer: NodeJS.Timeout | undefined = setInterval(tick, tickMs)
  let closing: Promise<void> | undefined

  function tick (): void {
    const t = performance.now()
    const elapsed = t - last
    last = t
    devices.forEach((d, i) => {
      const rate = d.spec.ratePerSecond
      let owed = Math.min((due[i] as number) + rate * elapsed / 1000, Math.max(rate, 1))
      const n = Math.floor(owed)
      owed -= n
      due[i] = owed
      for (let k = 0; k < n; k++) d.produce()
    })
  }

  function stopSending (): void {
    if (timer !== undefined) clearInterval(timer)
    timer = undefined
  }

  function unacked (): number {
    return devices.reduce((sum, d) => sum + d.unacked(), 0)
  }

  return {
    sent: () => sent,
    lost: () => lost,
    stats: () => {
      const list = devices.map((d) => d.stats())
      const sum = (k: 'sent' | 'resent' | 'unacked' | 'dropped'): number => list.reduce((s, d) => s + d[k], 0)
      return { sent: sum('sent'), resent: sum('resent'), unacked: sum('unacked'), dropped: sum('dropped'), devices: list }
    },
    stopSending,
    settle: async (timeoutMs: number) => {
      const deadline = performance.now() + timeoutMs
      for (;;) {
        const n = unacked()
        const left = deadline - performance.now()
        if (n === 0 || left <= 0 || closing !== undefined) return n
        await sleep(Math.min(SETTLE_POLL_MS, left))
      }
    },
    close: async () => {
      stopSending()
      closing ??= Promise.all(devices.map(async (d) => await d.close())).then(() => {})
      await closing
    }
  }
}
