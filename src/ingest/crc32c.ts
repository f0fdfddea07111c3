/**
 * CRC32C (Castagnoli): polynomial 0x1EDC6F41, reflected 0x82F63B78, initial value and final XOR
 * 0xFFFFFFFF, the checksum of every frame (firmware-bridge/PROTOCOL.md §1).
 * crc32c("123456789") = 0xE3069283.
 *
 * Slicing-by-8: eight 256-entry tables, eight input bytes per step. Node has no CRC32C of its
 * own (zlib.crc32 is the other polynomial, and only from Node 22). Int32Array tables keep the
 * loop on small integers.
 */

const POLY = 0x82f63b78

/** TABLES[k * 256 + b]: the CRC of byte b followed by k zero bytes. */
const TABLES = buildTables()

function buildTables (): Int32Array {
  const t = new Int32Array(8 * 256)
  for (let b = 0; b < 256; b++) {
    let c = b
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? (c >>> 1) ^ POLY : c >>> 1
    t[b] = c
  }
  for (let b = 0; b < 256; b++) {
    let c = t[b] as number
    for (let k = 1; k < 8; k++) {
      c = (t[c & 0xff] as number) ^ (c >>> 8)
      t[k * 256 + b] = c
    }
  }
  return t
}

/** The CRC32C of data[start, end), as an unsigned 32-bit number. */
export function crc32c (data: Uint8Array, start = 0, end = data.length): number {
  const t = TABLES
  let crc = -1
  let p = start
  const end8 = end - ((end - start) & 7)
  while (p < end8) {
    const a = crc ^ ((data[p] as number) | ((data[p + 1] as number) << 8) | ((data[p + 2] as number) << 16) | ((data[p + 3] as number) << 24))
    crc = (t[1792 + (a & 0xff)] as number) ^
      (t[1536 + ((a >>> 8) & 0xff)] as number) ^
      (t[1280 + ((a >>> 16) & 0xff)] as number) ^
      (t[1024 + (a >>> 24)] as number) ^
      (t[768 + (data[p + 4] as number)] as number) ^
      (t[512 + (data[p + 5] as number)] as number) ^
      (t[256 + (data[p + 6] as number)] as number) ^
      (t[data[p + 7] as number] as number)
    p += 8
  }
  while (p < end) crc = (t[(crc ^ (data[p++] as number)) & 0xff] as number) ^ (crc >>> 8)
  return ~crc >>> 0
}
