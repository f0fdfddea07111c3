/**
 * Modbus RTU response framing, as a pure codec (tty-port.ts is the thin stream around it).
 *
 * RTU has no length prefix and no start marker: a frame ends with 3.5 character times of
 * silence (Modbus over Serial Line v1.02 §2.5.1.1). Timing silences from Node is unreliable
 * (a tty read returns whatever the kernel buffered), so, like modbus-serial's RTUBufferedPort,
 * the framer knows from the request which response may come: same unit id and function code,
 * and its length (FC 1/2: 5 + ceil(n/8) bytes, FC 3/4: 5 + 2n bytes), or a 5-byte exception
 * (function code | 0x80). Unlike RTUBufferedPort it also checks the byte count and the CRC
 * before it hands a frame on, and keeps scanning past a candidate that fails them: garbage on
 * the line, an echo, or another master's traffic that happens to start with the right two bytes
 * does not end the wait; the request then times out, which is what the serial line spec asks of
 * a master that received no valid frame.
 *
 * Memory: one 512-byte buffer per port (the largest ADU is 256 bytes); bytes that arrive while
 * no response is expected are dropped, and on overflow only the newest 256 bytes are kept.
 */

const MAX_ADU = 256
const EXCEPTION_LENGTH = 5

/** CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF) of bytes[start, end). */
export function crc16 (bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0xffff
  for (let i = start; i < end; i++) {
    crc ^= bytes[i] as number
    for (let b = 0; b < 8; b++) crc = (crc & 1) !== 0 ? (crc >>> 1) ^ 0xa001 : crc >>> 1
  }
  return crc
}

export interface ExpectedResponse {
  unitId: number
  functionCode: number
  /** The whole normal response, CRC included. */
  length: number
}

/** What a read request (FC 1-4, 8 bytes with CRC) will be answered with; undefined for anything else. */
export function expectedResponse (request: Uint8Array): ExpectedResponse | undefined {
  if (request.length < 6) return undefined
  const unitId = request[0] as number
  const functionCode = request[1] as number
  const count = ((request[4] as number) << 8) | (request[5] as number)
  switch (functionCode) {
    case 1:
    case 2: return { unitId, functionCode, length: 5 + Math.ceil(count / 8) }
    case 3:
    case 4: return { unitId, functionCode, length: 5 + 2 * count }
    default: return undefined
  }
}

export class RtuResponseFramer {
  private readonly buffer = Buffer.alloc(2 * MAX_ADU)
  private filled = 0
  private expected: ExpectedResponse | undefined

  /** A request went out: forget what came before, wait for its response. */
  expect (response: ExpectedResponse | undefined): void {
    this.expected = response
    this.filled = 0
  }

  /** Feeds bytes from the line; returns the response (a copy) once it is complete and valid. */
  push (chunk: Uint8Array): Buffer | undefined {
    if (this.expected === undefined) return undefined
    let from = 0
    if (chunk.length > this.buffer.length - this.filled) {
      // Keep the newest MAX_ADU bytes: a response is at most that long, and it is the latest bytes.
      const total = this.filled + chunk.length
      const keep = Math.min(MAX_ADU, total)
      const fromOld = Math.max(0, keep - chunk.length)
      this.buffer.copy(this.buffer, 0, this.filled - fromOld, this.filled)
      this.filled = fromOld
      from = chunk.length - (keep - fromOld)
    }
    this.buffer.set(chunk.subarray(from), this.filled)
    this.filled += chunk.length - from
    const frame = this.find(this.expected)
    if (frame !== undefined) this.expect(undefined)
    return frame
  }

  private find (e: ExpectedResponse): Buffer | undefined {
    const b = this.buffer
    for (let i = 0; i + EXCEPTION_LENGTH <= this.filled; i++) {
      if (b[i] !== e.unitId) continue
      const fc = b[i + 1]
      let length: number
      if (fc === e.functionCode) {
        if (b[i + 2] !== e.length - 5) continue
        length = e.length
      } else if (fc === (e.functionCode | 0x80)) {
        length = EXCEPTION_LENGTH
      } else {
        continue
      }
      if (i + length > this.filled) continue
      if (crc16(b, i, i + length - 2) !== b.readUInt16LE(i + length - 2)) continue
      return Buffer.from(b.subarray(i, i + length))
    }
    return undefined
  }
}
