import type { Priority } from '../types.js'
import { PRIORITY_COUNT } from '../types.js'
import type { StoreBackend } from './backend.js'
import { EVENT_KEY_BYTES } from './keys.js'
import { emptyMeta } from './meta.js'
import type { StoreMeta } from './meta.js'

const CHUNK = 4096

/**
 * When the meta record cannot be trusted (missing, damaged, or the database was repaired): count
 * what is really there. The only full scan the store ever does. Drop totals and the sequence are
 * carried over from `previous` where there is one; the sequence never goes back.
 */
export async function recountMeta (backend: StoreBackend, previous: StoreMeta | undefined): Promise<StoreMeta> {
  const meta = emptyMeta()
  if (previous !== undefined) meta.drops = previous.drops
  let maxSeq = 0
  for (let p = 0; p < PRIORITY_COUNT; p++) {
    const live = meta.live[p] as { count: number, bytes: number }
    for (let from: number | undefined, done = false; !done;) {
      const chunk = await backend.scan(p as Priority, { from, reverse: false, limit: CHUNK })
      for (const e of chunk) {
        live.count++
        live.bytes += EVENT_KEY_BYTES + e.value.byteLength
        maxSeq = Math.max(maxSeq, e.seq)
      }
      done = chunk.length < CHUNK
      from = chunk[chunk.length - 1]?.seq
    }
  }
  meta.nextSeq = Math.max(previous?.nextSeq ?? 1, maxSeq + 1)
  meta.nextReportId = previous?.nextReportId ?? 1
  return meta
}
