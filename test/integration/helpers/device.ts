/**
 * The device side of the protocol for transport tests: events encoded as a device would send
 * them (stream frames, datagrams or JSON lines), and acks parsed back.
 */
import { cobsDecode } from '../../../src/ingest/cobs.js'
import { parseAck } from '../../../src/ingest/ack.js'
import { encodeFrame, encodeStreamFrame, type DeviceEvent } from '../../../src/ingest/frame.js'
import { encodeJsonEvent } from '../../../src/ingest/json-line.js'
import { encodeDeviceFrame } from '../../../src/proto/codec.js'

/** How a transport carries frames. */
export type Wire = 'stream' | 'datagram' | 'jsonl'

export function event (deviceId: string, seq: number, extra: Partial<DeviceEvent> = {}): DeviceEvent {
  return { deviceId, seq, priority: 1, stream: 'telemetry', value: { kind: 'number', number: seq / 2 }, ...extra }
}

/** One event as `wire` carries it; `key` adds an authentication tag (not possible in JSON lines). */
export function encode (wire: Wire, e: DeviceEvent, key?: Uint8Array): Uint8Array {
  if (wire === 'jsonl') return Buffer.from(encodeJsonEvent(e) + '\n')
  const spec = { type: 'event' as const, body: encodeDeviceFrame(e), ...(key === undefined ? {} : { key }) }
  return wire === 'stream' ? encodeStreamFrame(spec) : encodeFrame(spec)
}

export interface Ack { deviceId: string, seq: number }

/** Collects acks from a byte stream: COBS frames (stream) or JSON lines. */
export class AckReader {
  readonly acks: Ack[] = []
  readonly problems: string[] = []
  private pending = Buffer.alloc(0)

  constructor (private readonly wire: Wire) {}

  push (chunk: Uint8Array): void {
    this.pending = Buffer.concat([this.pending, chunk])
    const delimiter = this.wire === 'jsonl' ? 0x0a : 0x00
    for (let at = this.pending.indexOf(delimiter); at !== -1; at = this.pending.indexOf(delimiter)) {
      const piece = this.pending.subarray(0, at)
      this.pending = this.pending.subarray(at + 1)
      if (piece.length === 0) continue
      if (this.wire === 'jsonl') {
        const o = JSON.parse(piece.toString()) as { ack: string, seq: number }
        this.acks.push({ deviceId: o.ack, seq: o.seq })
        continue
      }
      const frame = cobsDecode(piece)
      const ack = frame === undefined ? undefined : parseAck(frame)
      if (ack?.ok === true) this.acks.push({ deviceId: ack.deviceId, seq: ack.seq })
      else this.problems.push(ack?.ok === false ? ack.reason : 'bad_cobs')
    }
  }

  /** The highest seq acked for a device, or undefined. */
  highest (deviceId: string): number | undefined {
    let best: number | undefined
    for (const a of this.acks) if (a.deviceId === deviceId && (best === undefined || a.seq > best)) best = a.seq
    return best
  }
}
