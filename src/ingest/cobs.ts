/**
 * COBS (Consistent Overhead Byte Stuffing, Cheshire & Baker 1999), the byte-stream framing of
 * firmware-bridge/PROTOCOL.md §1: the encoding has no 0x00, so 0x00 delimits frames.
 *
 * The variant is the common one (Wikipedia's reference code, nanopb-style firmware libraries): a
 * block holds at most 254 data bytes (code 0xFF, no implied zero after it), and a frame that ends
 * with a full 254-byte block gets no extra trailing 0x01 block. The decoder also accepts that
 * trailing 0x01 (it decodes to nothing), as some encoders write it. The golden vectors pin it down
 * (test/vectors/event-cobs-long-block.bin).
 *
 * No exceptions: decoders return -1 / undefined for invalid input, as a stream of line noise
 * must not cost a throw per frame.
 */

/** Upper bound of the encoded length (without the 0x00 delimiter) of an n-byte frame. */
export function cobsMaxEncodedLength (n: number): number {
  return n + Math.floor(n / 254) + 1
}

/**
 * Encodes src[start, end) into dst at `at`; dst needs cobsMaxEncodedLength(end - start) bytes
 * from there. Returns the number of bytes written. Writes no delimiter.
 */
export function cobsEncodeInto (src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): number {
  let codeAt = at
  let o = at + 1
  let code = 1
  for (let i = start; i < end; i++) {
    const b = src[i] as number
    if (b !== 0) {
      dst[o++] = b
      code++
      if (code !== 0xff) continue
      // A full block: close it. A new code byte is reserved only if input remains, so a frame
      // ending on a full block has no trailing 0x01.
      dst[codeAt] = code
      code = 1
      codeAt = o
      if (i + 1 < end) o++
      else return o - at
    } else {
      dst[codeAt] = code
      code = 1
      codeAt = o++
    }
  }
  dst[codeAt] = code
  return o - at
}

/** The COBS encoding of `frame`, without the trailing 0x00. */
export function cobsEncode (frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(cobsMaxEncodedLength(frame.length))
  const n = cobsEncodeInto(frame, 0, frame.length, out, 0)
  return out.slice(0, n)
}

/**
 * Decodes src[start, end) into dst at `at` and returns the decoded length, or -1 when the input
 * is not COBS: a code byte of 0 or a 0x00 inside a block (a misplaced zero), or a block whose
 * code points past `end`. dst may be src with at <= start: the output never overtakes the input,
 * so the stream deframer decodes in place. Empty input decodes to 0 bytes (callers that must
 * reject it check first).
 */
export function cobsDecodeInto (src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): number {
  let i = start
  let o = at
  while (i < end) {
    const code = src[i++] as number
    if (code === 0) return -1
    const blockEnd = i + code - 1
    if (blockEnd > end) return -1
    while (i < blockEnd) {
      const b = src[i++] as number
      if (b === 0) return -1
      dst[o++] = b
    }
    if (code !== 0xff && i < end) dst[o++] = 0
  }
  return o - at
}

/** Decodes a COBS encoding (without its delimiter); undefined when it is not valid COBS or empty. */
export function cobsDecode (encoded: Uint8Array): Uint8Array | undefined {
  if (encoded.length === 0) return undefined
  const out = new Uint8Array(encoded.length)
  const n = cobsDecodeInto(encoded, 0, encoded.length, out, 0)
  return n < 0 ? undefined : out.slice(0, n)
}
