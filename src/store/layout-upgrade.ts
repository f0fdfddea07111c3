import type { ClassicLevel } from 'classic-level'
import type { Logger } from '../observe/log.js'
import type { Priority } from '../types.js'
import { eventKey, expiryKey, reportKey } from './keys.js'

/**
 * Key layout 1, written by builds before layout 2 (keys.ts) made every key text:
 *   'e' | priority byte 0..3 | seq (8 bytes big-endian)
 *   'r' | report id (8 bytes big-endian)
 *   'x' | expires at ms (8 bytes big-endian) | priority byte | seq (8 bytes big-endian)
 * Their second byte is below '0' (0x30), where no layout-2 key has one, so both layouts can be
 * told apart, and lie side by side, in one database.
 *
 * upgradeLayout1 converts such keys in place, in chunks: each chunk is one atomic batch that puts
 * the new keys and deletes the old, so a crash half-way leaves a store whose next open converts
 * the rest, never an event in both layouts or in neither. Values are the same in both layouts.
 */

type Db = ClassicLevel<string, Buffer>

const CHUNK = 4096
const E = 0x65
const R = 0x72
const X = 0x78
const LOW = 0x30

const u64 = (k: Buffer, offset: number): number => k.readUInt32BE(offset) * 0x1_0000_0000 + k.readUInt32BE(offset + 4)

/** The layout-2 key of a layout-1 key; undefined for a key of no known shape (left alone). */
function convert (k: Buffer): string | undefined {
  if (k[0] === E && k.length === 10 && (k[1] as number) < 4) return eventKey(k[1] as Priority, u64(k, 2))
  if (k[0] === R && k.length === 9) return reportKey(u64(k, 1))
  if (k[0] === X && k.length === 18 && (k[9] as number) < 4) return expiryKey({ expiresAt: u64(k, 1), priority: k[9] as Priority, seq: u64(k, 10) })
  return undefined
}

/**
 * Converts every layout-1 key; returns how many. Zero (one short read per prefix) on a layout-2
 * store. A key in a layout-1 range of no known shape is left where it is, and counted in the log.
 */
export async function upgradeLayout1 (db: Db, logger: Logger): Promise<number> {
  let converted = 0
  let unknown = 0
  for (const prefix of [E, R, X]) {
    let after: Buffer | undefined
    for (;;) {
      const range = after === undefined ? { gte: Buffer.from([prefix]) } : { gt: after }
      const entries = await db.iterator({ ...range, lt: Buffer.from([prefix, LOW]), keyEncoding: 'buffer', limit: CHUNK }).all()
      if (entries.length === 0) break
      if (converted === 0) logger.warn({ path: db.location }, 'store written by an earlier edgefwd (key layout 1): converting its keys in place')
      const batch = db.batch()
      for (const [key, value] of entries) {
        const next = convert(key)
        if (next === undefined) { unknown++; continue }
        batch.put(next, value)
        batch.del(key, { keyEncoding: 'buffer' })
        converted++
      }
      if (batch.length > 0) await batch.write({ sync: true })
      else await batch.close()
      after = (entries[entries.length - 1] as [Buffer, Buffer])[0]
    }
  }
  if (converted > 0) logger.warn({ path: db.location, converted, unknown }, 'store keys converted to layout 2; its totals are recounted')
  return converted
}
