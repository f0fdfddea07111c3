/**
 * What simulated devices send: a valid event body, and rounds of malformed frames for the
 * ingest's reject paths. Pure: sockets are bench/lib/device-senders.ts's.
 */
import { encodeFrame, toStreamFrame } from '../../src/ingest/frame.js'
import { encodeDeviceFrame } from '../../src/proto/codec.js'

/** Comfortably above ingest.maxFrameSize (16 KiB by default), well below a UDP datagram's 64 KiB. */
export const OVERSIZE_BYTES = 17_000

/** The protobuf body of a ~150-byte event frame: 8 numbers and 2 tags, priority normal. */
export function deviceEventBody (deviceId: string, seq: number): Uint8Array {
  return encodeDeviceFrame({
    deviceId,
    seq,
    deviceTimeMs: Date.now(),
    priority: 1,
    stream: 'telemetry',
    value: { kind: 'numbers', numbers: { t: 21.5 + (seq % 7) / 10, rh: 40.1, p: 1013.2, v: 3.3, i: 0.12, co2: 415 + (seq % 50), pm25: 7.5, lux: 300 } },
    tags: { site: 'greenhouse-2', fw: '1.4.2' }
  })
}

const randomBytes = (n: number, nonZero: boolean): Buffer => {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = nonZero ? 1 + Math.floor(Math.random() * 255) : Math.floor(Math.random() * 256)
  return b
}
const randomLength = (): number => 1 + Math.floor(Math.random() * 300)

/**
 * 100 malformed frames, each alone rejected once: 40 random, 35 bad CRC, 24 truncated, 1
 * oversize. A UDP frame is a datagram. A TCP frame is bytes without 0x00 and one 0x00 after them,
 * so that the gateway sees exactly one frame per frame sent: random bytes are drawn from 1–255,
 * and the oversize frame is random non-zero bytes (valid COBS blocks that decode past the limit).
 */
export function malformedFrameRound (kind: 'udp' | 'tcp'): Buffer[] {
  const frames: Buffer[] = []
  for (let i = 0; i < 100; i++) {
    const valid = encodeFrame({ type: 'event', body: deviceEventBody(`junk-${i % 10}`, i + 1) })
    if (i < 40) {
      frames.push(kind === 'udp' ? randomBytes(randomLength(), false) : Buffer.concat([randomBytes(randomLength(), true), Buffer.from([0])]))
    } else if (i < 75) {
      const bad = Buffer.from(valid)
      bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 0xff
      frames.push(kind === 'udp' ? bad : Buffer.from(toStreamFrame(bad)))
    } else if (i < 99) {
      if (kind === 'udp') frames.push(Buffer.from(valid.subarray(0, 1 + Math.floor(Math.random() * (valid.length - 1)))))
      else {
        // The COBS encoding cut short, then the delimiter: a block whose code points past the 0x00.
        const stream = toStreamFrame(valid)
        frames.push(Buffer.concat([stream.subarray(0, 1 + Math.floor(Math.random() * (stream.length - 2))), Buffer.from([0])]))
      }
    } else {
      frames.push(kind === 'udp' ? randomBytes(OVERSIZE_BYTES, false) : Buffer.concat([randomBytes(OVERSIZE_BYTES, true), Buffer.from([0])]))
    }
  }
  return frames
}
