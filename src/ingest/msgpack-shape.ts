/**
 * A structural check of an event-msgpack body (firmware-bridge/PROTOCOL.md §3.2) before msgpackr
 * decodes it. msgpackr is a general decoder: from untrusted bytes it would build Dates, Sets,
 * RegExps, Errors, typed arrays and record structures (its extension types, some of which change
 * how later bytes are read), and coerce integer map keys to strings. An event needs none of that,
 * so the body must be exactly:
 *
 *   one map of  str key → scalar | map of str → scalar
 *   scalar = nil | bool | int | float | str | bin
 *
 * with every str valid UTF-8 and no bytes after the map. Only the types are checked here; which
 * keys and values an event may have is msgpack-event.ts's job. A repeated key is allowed and the
 * last value wins, as PROTOCOL.md §3 says for every encoding.
 */
import { isValidUtf8 } from '../proto/utf8.js'

class Cursor {
  constructor (readonly buf: Uint8Array, public pos: number, readonly end: number) {}

  /** A big-endian unsigned length of n bytes, or -1 when truncated. */
  length (n: number): number {
    if (this.end - this.pos < n) return -1
    let v = 0
    for (let i = 0; i < n; i++) v = v * 256 + (this.buf[this.pos + i] as number)
    this.pos += n
    return v
  }

  skip (n: number): string | undefined {
    if (n < 0 || this.end - this.pos < n) return `truncated at byte ${this.pos}`
    this.pos += n
    return undefined
  }
}

/** Undefined when buf[start, end) has the shape above, else what is wrong. */
export function msgpackShapeProblem (buf: Uint8Array, start: number, end: number): string | undefined {
  const c = new Cursor(buf, start, end)
  const first = start < end ? buf[start] as number : -1
  if (!((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf)) return 'not a msgpack map'
  const problem = scanValue(c, 0)
  if (problem !== undefined) return problem
  if (c.pos !== end) return `${end - c.pos} bytes after the map`
  return undefined
}

function scanValue (c: Cursor, depth: number): string | undefined {
  if (c.pos >= c.end) return `truncated at byte ${c.pos}`
  const at = c.pos
  const t = c.buf[c.pos++] as number
  if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) return undefined
  if (t >= 0xa0 && t <= 0xbf) return scanStr(c, t & 0x1f)
  if (t >= 0x80 && t <= 0x8f) return scanMap(c, t & 0x0f, depth, at)
  switch (t) {
    case 0xcc: case 0xd0: return c.skip(1)
    case 0xcd: case 0xd1: return c.skip(2)
    case 0xce: case 0xd2: case 0xca: return c.skip(4)
    case 0xcf: case 0xd3: case 0xcb: return c.skip(8)
    case 0xd9: return scanStr(c, c.length(1))
    case 0xda: return scanStr(c, c.length(2))
    case 0xdb: return scanStr(c, c.length(4))
    case 0xc4: return c.skip(c.length(1))
    case 0xc5: return c.skip(c.length(2))
    case 0xc6: return c.skip(c.length(4))
    case 0xde: return scanMap(c, c.length(2), depth, at)
    case 0xdf: return scanMap(c, c.length(4), depth, at)
    case 0xc1: return `byte 0xc1 (never used) at byte ${at}`
    default:
      // 0x90-0x9f, 0xdc, 0xdd: arrays; 0xc7-0xc9, 0xd4-0xd8: extension types.
      return (t >= 0x90 && t <= 0x9f) || t === 0xdc || t === 0xdd
        ? `array at byte ${at}: an event has no arrays`
        : `extension type at byte ${at}: not allowed in an event`
  }
}

function scanStr (c: Cursor, n: number): string | undefined {
  const start = c.pos
  const problem = c.skip(n)
  if (problem !== undefined) return problem
  return isValidUtf8(c.buf, start, c.pos) ? undefined : `string at byte ${start} is not valid UTF-8`
}

function scanMap (c: Cursor, count: number, depth: number, at: number): string | undefined {
  if (count < 0) return `truncated at byte ${c.pos}`
  if (depth >= 2) return `map at byte ${at} nested too deep`
  for (let i = 0; i < count; i++) {
    if (c.pos >= c.end) return `truncated at byte ${c.pos}`
    const keyAt = c.pos
    const t = c.buf[c.pos++] as number
    let n: number
    if (t >= 0xa0 && t <= 0xbf) n = t & 0x1f
    else if (t === 0xd9) n = c.length(1)
    else if (t === 0xda) n = c.length(2)
    else if (t === 0xdb) n = c.length(4)
    else return `map key at byte ${keyAt} is not a string`
    const problem = scanStr(c, n)
    if (problem !== undefined) return problem
    const valueProblem = scanValue(c, depth + 1)
    if (valueProblem !== undefined) return valueProblem
  }
  return undefined
}
