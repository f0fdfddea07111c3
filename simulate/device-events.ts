/**
 * What a simulated device is and produces: its spec, its counters, the SimDevice interface the
 * TCP and UDP devices implement (tcp-device.ts, udp-device.ts), and EventMaker, a device's seq
 * counter and seeded choices.
 *
 * Determinism: at start every device draws one 32-bit seed from the fleet's `random` (in the
 * order of its devices) and then makes all its choices (priority, stream, payload bytes) from its
 * own PRNG. So the event of a given (device, seq) is the same in two fleets with the same seed,
 * however the ticks fall and however many devices there are. Timing itself (ticks, reconnect
 * jitter) is not deterministic; the jitter comes from a separate PRNG so it never shifts event
 * choices.
 */
import { PRIORITIES, type DeviceEvent, type Priority, type PriorityName } from '../src/index.js'

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

export interface Produced { seq: number, priority: PriorityName, timeMs: number, event: DeviceEvent }

/** One device's event source: seq counter and seeded choices. */
export class EventMaker {
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

export interface SimDevice {
  readonly spec: DeviceSpec
  readonly maker: EventMaker
  /** Produce one new event and send or queue it. */
  produce: () => void
  unacked: () => number
  stats: () => DeviceStats
  close: () => Promise<void>
}
