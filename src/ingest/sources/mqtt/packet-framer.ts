/**
 * Splits the bytes a broker sends into MQTT packets, in bounded memory, before mqtt-packet parses
 * them. The broker decides a PUBLISH's size (up to 256 MiB), and the parser would buffer all of
 * it: here a packet is buffered only up to `maxPacketBytes`. A larger PUBLISH is read for its
 * head (topic, QoS, packet id: enough to acknowledge it), its rest is skipped as it arrives, and
 * it is reported as `oversize`, so the broker is acknowledged and does not send it again. (MQTT 5
 * has a Maximum Packet Size the client could announce instead, but the broker then drops such
 * messages without a trace on the gateway: the issue asks for a counted reason.) Any other packet
 * type that large is a protocol error: the connection is dropped.
 *
 * Fixed header [MQTT-2.2]: type and flags in byte 0, then the remaining length as a variable
 * byte integer of at most 4 bytes [MQTT-1.5.5]. PUBLISH variable header [MQTT-3.3.2]: topic
 * length (2 bytes), topic, and a packet id (2 bytes) when QoS > 0.
 */

export type FramedItem =
  | { kind: 'packet', bytes: Buffer }
  | { kind: 'oversize', qos: number, messageId: number | undefined, topic: string, size: number }

const PUBLISH = 3

type State =
  | { kind: 'header', bytes: number[] }
  | { kind: 'body', buffer: Buffer, filled: number }
  | { kind: 'head', flags: number, size: number, head: number[], left: number }
  | { kind: 'skip', left: number }

export class MqttFramer {
  private state: State = { kind: 'header', bytes: [] }

  constructor (private readonly maxPacketBytes: number) {}

  /** Feeds one chunk; calls `out` for each complete item, in stream order. Throws on a protocol error. */
  push (chunk: Buffer, out: (item: FramedItem) => void): void {
    let i = 0
    while (i < chunk.length) {
      const s = this.state
      switch (s.kind) {
        case 'header': {
          s.bytes.push(chunk[i++] as number)
          const length = remainingLength(s.bytes)
          if (length === undefined) break
          const headerLength = s.bytes.length
          const type = (s.bytes[0] as number) >> 4
          if (length + headerLength <= this.maxPacketBytes) {
            const buffer = Buffer.allocUnsafe(headerLength + length)
            for (let k = 0; k < headerLength; k++) buffer[k] = s.bytes[k] as number
            this.state = { kind: 'body', buffer, filled: headerLength }
            if (length === 0) this.complete(out)
          } else if (type === PUBLISH) {
            this.state = { kind: 'head', flags: (s.bytes[0] as number) & 0x0f, size: headerLength + length, head: [], left: length }
          } else {
            throw new Error(`the broker sent a packet of type ${type} and ${length} bytes, over the ${this.maxPacketBytes}-byte bound`)
          }
          break
        }
        case 'body': {
          const n = Math.min(chunk.length - i, s.buffer.length - s.filled)
          chunk.copy(s.buffer, s.filled, i, i + n)
          s.filled += n
          i += n
          if (s.filled === s.buffer.length) this.complete(out)
          break
        }
        case 'head': {
          s.head.push(chunk[i++] as number)
          s.left--
          const qos = (s.flags >> 1) & 0x03
          if (s.head.length < 2) break
          const topicLength = ((s.head[0] as number) << 8) | (s.head[1] as number)
          const need = 2 + topicLength + (qos > 0 ? 2 : 0)
          if (need > s.size) throw new Error('a PUBLISH packet shorter than its own topic')
          if (s.head.length < need) break
          const topic = Buffer.from(s.head.slice(2, 2 + topicLength)).toString('utf8')
          const messageId = qos > 0 ? ((s.head[need - 2] as number) << 8) | (s.head[need - 1] as number) : undefined
          out({ kind: 'oversize', qos, messageId, topic, size: s.size })
          this.state = s.left === 0 ? { kind: 'header', bytes: [] } : { kind: 'skip', left: s.left }
          break
        }
        case 'skip': {
          const n = Math.min(chunk.length - i, s.left)
          s.left -= n
          i += n
          if (s.left === 0) this.state = { kind: 'header', bytes: [] }
          break
        }
      }
    }
  }

  private complete (out: (item: FramedItem) => void): void {
    const s = this.state as Extract<State, { kind: 'body' }>
    this.state = { kind: 'header', bytes: [] }
    out({ kind: 'packet', bytes: s.buffer })
  }
}

/** The remaining length once its last byte has arrived; undefined before. Throws past 4 bytes. */
function remainingLength (header: readonly number[]): number | undefined {
  let value = 0
  let multiplier = 1
  for (let k = 1; k < header.length; k++) {
    const b = header[k] as number
    value += (b & 0x7f) * multiplier
    if ((b & 0x80) === 0) return value
    if (k === 4) throw new Error('malformed remaining length (more than 4 bytes) [MQTT-1.5.5]')
    multiplier *= 128
  }
  return undefined
}
