/**
 * The optional authentication tag (firmware-bridge/PROTOCOL.md §5): the first 16 bytes of
 * HMAC-SHA256(key, version ‖ type ‖ body), between body and CRC.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'

export const AUTH_TAG_LENGTH = 16
/** §5: a device's pre-shared key is 16 to 64 bytes. */
export const MIN_KEY_LENGTH = 16
export const MAX_KEY_LENGTH = 64

/** The tag over buf[start, end) (version, type and body). */
export function computeAuthTag (key: Uint8Array, buf: Uint8Array, start: number, end: number): Uint8Array {
  return createHmac('sha256', key).update(buf.subarray(start, end)).digest().subarray(0, AUTH_TAG_LENGTH)
}

/** True when buf[end, end + 16) is the tag of buf[start, end). Constant time in the tag's content. */
export function authTagMatches (key: Uint8Array, buf: Uint8Array, start: number, end: number): boolean {
  return timingSafeEqual(computeAuthTag(key, buf, start, end), buf.subarray(end, end + AUTH_TAG_LENGTH))
}
