/**
 * Splits a byte stream into JSON lines (PROTOCOL.md section 3.3) and parses each with
 * parseJsonLine. A line longer than maxFrameSize is reported once as `oversize` as soon as it is
 * detected and skipped up to the next '\n' without being buffered, so memory per connection
 * stays at most maxFrameSize whatever the peer sends. "\r\n" endings and empty lines are accepted.
 */
import { parseJsonLine } from '../json-line.js'
import { reject, type FrameOptions, type FrameResult } from '../frame.js'

const NEWLINE = 0x0a
const CR = 0x0d

export class JsonLineSplitter {
  /** Pieces of the current unfinished line (references to chunks, not copies). */
  private parts: Buffer[] = []
  private partBytes = 0
  private skipping = false

  constructor (private readonly opts: FrameOptions, private readonly onFrame: (r: FrameResult) => void) {}

  push (chunk: Uint8Array): void {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    let start = 0
    while (start < buf.length) {
      const nl = buf.indexOf(NEWLINE, start)
      const end = nl === -1 ? buf.length : nl
      if (this.skipping) {
        if (nl !== -1) this.skipping = false
      } else if (this.partBytes + (end - start) > this.opts.maxFrameSize + 1) {
        // +1: a "\r" before the "\n" is not part of the line's limit.
        this.onFrame(reject('oversize', `line longer than ${this.opts.maxFrameSize} bytes`, this.partBytes + end - start))
        this.parts = []
        this.partBytes = 0
        this.skipping = nl === -1
      } else if (nl === -1) {
        this.parts.push(buf.subarray(start))
        this.partBytes += buf.length - start
      } else {
        const piece = buf.subarray(start, end)
        const line = this.parts.length === 0 ? piece : Buffer.concat([...this.parts, piece])
        this.parts = []
        this.partBytes = 0
        this.emit(line)
      }
      start = end + 1
    }
  }

  /** End of input: a last line without '\n' still counts. */
  end (): void {
    if (!this.skipping && this.partBytes > 0) this.emit(Buffer.concat(this.parts))
    this.reset()
  }

  reset (): void {
    this.parts = []
    this.partBytes = 0
    this.skipping = false
  }

  private emit (line: Buffer): void {
    const length = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length
    if (length === 0) return
    if (length > this.opts.maxFrameSize) {
      this.onFrame(reject('oversize', `line of ${length} bytes, at most ${this.opts.maxFrameSize}`, length))
      return
    }
    this.onFrame(parseJsonLine(line.toString('utf8', 0, length), this.opts))
  }
}
