/**
 * An in-process TCP proxy for network-fault tests and the simulation: it sits between the
 * forwarder and the broker and can blackhole, refuse, reset or throttle the link. node:net only;
 * TLS passes through untouched (the proxy never terminates it), so `url('mqtts')` works.
 *
 * Modes (one value for the whole proxy, applied to every connection pair at once):
 * - `pass`: forward both ways.
 * - `blackhole`: every socket stays open, nothing is forwarded in either direction. The proxy
 *   STOPS READING (it does not drop): each direction holds at most one chunk already read (plus
 *   what the paused stream buffers, up to its highWaterMark), the kernel receive buffers then fill
 *   and the sender's writes stop completing, as with a link that carries nothing. Memory is so
 *   bounded per direction per pair. The bytes written
 *   meanwhile are delivered, in order, after `setMode('pass')` (what TCP does after an outage
 *   shorter than its retransmission limit). New connections are accepted and dialled upstream but
 *   get nothing through. A FIN or RST from a peer is usually not noticed while reading is stopped.
 * - `refuse`: new connections are accepted and closed at once (FIN) without dialling upstream;
 *   pairs already open keep forwarding (the listener is "down", established flows are not).
 * - `reset`: every open pair is destroyed now with a TCP RST on both sides (`resetAndDestroy`),
 *   and new connections are reset at once, until another mode is set.
 *
 * `throttle(bytesPerSecond)` caps each direction of each pair separately (not the sum over pairs):
 * data is released in slices of bytesPerSecond/20 bytes on a schedule, so a transfer of N bytes
 * takes about N/bytesPerSecond seconds; reading stops while a slice waits, so memory stays bounded.
 *
 * `delay(ms)` adds latency: each chunk read is forwarded no earlier than `ms` after it was read,
 * in each direction. As one chunk is held at a time, a delayed link also carries at most one
 * chunk (up to 64 KiB) per `ms` and direction, like a real link's bandwidth-delay limit.
 *
 * Every wait of the proxy is a socket event or a throttle or delay timer; `close()` destroys every socket,
 * clears every timer and closes the server, so the process can exit.
 */
import { createServer, connect } from 'node:net'
import type { AddressInfo, Server, Socket } from 'node:net'

export type ProxyMode = 'pass' | 'blackhole' | 'refuse' | 'reset'

export interface ChaosProxyStats {
  /** Connections accepted since start, including refused and reset ones. */
  connections: number
  /** Connection pairs open now. */
  open: number
  /** Bytes forwarded client -> target, and target -> client. */
  bytesUp: number
  bytesDown: number
}

export interface ChaosProxy {
  readonly host: string
  readonly port: number
  /** `url('mqtts')` -> 'mqtts://127.0.0.1:PORT'. */
  readonly url: (scheme: string) => string
  mode: () => ProxyMode
  setMode: (mode: ProxyMode) => void
  /** Cap each direction of each pair; undefined removes the cap. */
  throttle: (bytesPerSecond: number | undefined) => void
  /** Hold each chunk this long before forwarding it; undefined or 0 removes the delay. */
  delay: (ms: number | undefined) => void
  stats: () => ChaosProxyStats
  close: () => Promise<void>
}

export interface ChaosProxyOptions {
  target: { host: string, port: number }
  /** Default '127.0.0.1'. */
  host?: string
  /** 0 (the default) picks a free port. */
  port?: number
}

const MODES: readonly ProxyMode[] = ['pass', 'blackhole', 'refuse', 'reset']

/** What a pump needs from its proxy, read at every step so a mode or throttle change applies at once. */
interface PumpControl {
  forwarding: () => boolean
  bytesPerSecond: () => number | undefined
  delayMs: () => number
  count: (n: number) => void
}

/** One direction of a pair: reads src, holds at most one chunk, writes dst. */
class Pump {
  private held: Buffer | undefined
  /** When the held chunk may go (its read time plus the delay). */
  private readyAt = 0
  private ended = false
  private nextAt = 0
  private timer: NodeJS.Timeout | undefined
  private waitingDrain = false

  constructor (private readonly src: Socket, private readonly dst: Socket, private readonly control: PumpControl) {
    src.on('data', (chunk: Buffer) => {
      // The held chunk is always written out before reading resumes, so here held is empty.
      this.held = chunk
      this.readyAt = Date.now() + this.control.delayMs()
      src.pause()
      this.flush()
    })
    src.on('end', () => {
      this.ended = true
      this.flush()
    })
  }

  flush (): void {
    if (this.timer !== undefined || this.waitingDrain || this.dst.destroyed) return
    if (!this.control.forwarding()) return
    while (this.held !== undefined) {
      const early = this.readyAt - Date.now()
      if (early > 0) {
        this.timer = setTimeout(() => { this.timer = undefined; this.flush() }, early)
        return
      }
      let piece = this.held
      const bps = this.control.bytesPerSecond()
      if (bps !== undefined) {
        const now = Date.now()
        if (now < this.nextAt) {
          this.timer = setTimeout(() => { this.timer = undefined; this.flush() }, this.nextAt - now)
          return
        }
        piece = piece.subarray(0, Math.max(1, Math.floor(bps / 20)))
        this.nextAt = Math.max(this.nextAt, now) + (piece.length / bps) * 1000
      }
      this.held = piece.length === this.held.length ? undefined : this.held.subarray(piece.length)
      this.control.count(piece.length)
      if (!this.dst.write(piece)) {
        this.waitingDrain = true
        this.dst.once('drain', () => { this.waitingDrain = false; this.flush() })
        return
      }
    }
    if (this.ended) {
      if (!this.dst.writableEnded) this.dst.end()
    } else {
      this.src.resume()
    }
  }

  /** A throttle or delay change: forget the old schedule. */
  reschedule (): void {
    this.stop()
    this.nextAt = 0
    this.readyAt = Math.min(this.readyAt, Date.now() + this.control.delayMs())
    this.flush()
  }

  stop (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }
}

interface Pair {
  client: Socket
  upstream: Socket
  pumps: [Pump, Pump]
}

export async function startChaosProxy (options: ChaosProxyOptions): Promise<ChaosProxy> {
  const host = options.host ?? '127.0.0.1'
  const { target } = options
  let mode: ProxyMode = 'pass'
  let bytesPerSecond: number | undefined
  let delayMs = 0
  let closed = false
  const counters = { connections: 0, bytesUp: 0, bytesDown: 0 }
  const pairs = new Set<Pair>()
  // Refused or reset sockets not yet closed, so close() can wait for them too.
  const stray = new Set<Socket>()

  const forwarding = (): boolean => mode === 'pass' || mode === 'refuse'
  const up: PumpControl = { forwarding, bytesPerSecond: () => bytesPerSecond, delayMs: () => delayMs, count: (n) => { counters.bytesUp += n } }
  const down: PumpControl = { forwarding, bytesPerSecond: () => bytesPerSecond, delayMs: () => delayMs, count: (n) => { counters.bytesDown += n } }

  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    counters.connections++
    client.on('error', () => {})
    if (closed || mode === 'refuse' || mode === 'reset') {
      stray.add(client)
      client.once('close', () => stray.delete(client))
      if (mode === 'reset' || closed) client.resetAndDestroy()
      else client.destroy()
      return
    }
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true })
    upstream.on('error', () => {})
    // Both paused until their pump has decided (nothing is read while blackholed).
    client.pause()
    upstream.pause()
    const pair: Pair = { client, upstream, pumps: [new Pump(client, upstream, up), new Pump(upstream, client, down)] }
    pairs.add(pair)
    let gone = false
    const teardown = (): void => {
      if (gone) return
      gone = true
      for (const p of pair.pumps) p.stop()
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.once('close', teardown)
    upstream.once('close', teardown)
    // pauseOnConnect: the client is read only once its pump resumes it (at once unless blackholed).
    for (const p of pair.pumps) p.flush()
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const urlHost = host.includes(':') ? `[${host}]` : host

  return {
    host,
    port,
    url: (scheme) => `${scheme}://${urlHost}:${port}`,
    mode: () => mode,
    setMode (next) {
      if (!MODES.includes(next)) throw new TypeError(`chaos proxy: unknown mode ${String(next)} (one of ${MODES.join(', ')})`)
      mode = next
      if (mode === 'reset') {
        for (const pair of [...pairs]) {
          pair.client.resetAndDestroy()
          pair.upstream.resetAndDestroy()
        }
      } else if (forwarding()) {
        for (const pair of pairs) for (const p of pair.pumps) p.flush()
      }
    },
    throttle (next) {
      if (next !== undefined && !(Number.isFinite(next) && next > 0)) throw new RangeError(`chaos proxy: bytesPerSecond must be a positive number or undefined, got ${String(next)}`)
      bytesPerSecond = next
      for (const pair of pairs) for (const p of pair.pumps) p.reschedule()
    },
    delay (next) {
      if (next !== undefined && !(Number.isFinite(next) && next >= 0)) throw new RangeError(`chaos proxy: delay must be a non-negative number of ms or undefined, got ${String(next)}`)
      delayMs = next ?? 0
      for (const pair of pairs) for (const p of pair.pumps) p.reschedule()
    },
    stats: () => ({ ...counters, open: pairs.size }),
    async close () {
      if (closed) return
      closed = true
      const waits: Array<Promise<void>> = []
      const whenClosed = (s: Socket): Promise<void> => s.closed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()))
      for (const pair of [...pairs]) {
        for (const p of pair.pumps) p.stop()
        waits.push(whenClosed(pair.client), whenClosed(pair.upstream))
        pair.client.destroy()
        pair.upstream.destroy()
      }
      for (const s of stray) { waits.push(whenClosed(s)); s.destroy() }
      waits.push(new Promise((resolve) => server.close(() => resolve())))
      await Promise.all(waits)
    }
  }
}
