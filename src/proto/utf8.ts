/**
 * Strict UTF-8 validation (RFC 3629): no overlong forms, no surrogates (U+D800..U+DFFF), nothing
 * above U+10FFFF. Device strings must be valid UTF-8 (proto3 requires it of `string` fields and
 * protoc's parsers reject it otherwise); TextDecoder would silently substitute U+FFFD instead.
 */

/** True when buf[start, end) is valid UTF-8. ASCII-only input, the usual case, costs one pass. */
export function isValidUtf8 (buf: Uint8Array, start: number, end: number): boolean {
  let p = start
  while (p < end && (buf[p] as number) < 0x80) p++
  while (p < end) {
    const c = buf[p] as number
    if (c < 0x80) {
      p++
      continue
    }
    let need: number
    let min: number
    let cp: number
    if (c >= 0xc2 && c <= 0xdf) { need = 1; min = 0x80; cp = c & 0x1f } else if (c >= 0xe0 && c <= 0xef) { need = 2; min = 0x800; cp = c & 0x0f } else if (c >= 0xf0 && c <= 0xf4) { need = 3; min = 0x10000; cp = c & 0x07 } else return false
    if (end - p <= need) return false
    for (let i = 1; i <= need; i++) {
      const d = buf[p + i] as number
      if ((d & 0xc0) !== 0x80) return false
      cp = (cp << 6) | (d & 0x3f)
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false
    p += need + 1
  }
  return true
}
