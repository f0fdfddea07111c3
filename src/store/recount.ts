import type { Priority } from '../types.js'
import { PRIORITY_COUNT } from '../types.js'
import type { ExpiryEntry, StoreBackend } from './backend.js'
import { deadlineOf, storedBytes } from './keys.js'
import { emptyMeta } from './meta.js'
import type { StoreMeta } from './meta.js'

const CHUNK = 4096

/**
 * When the meta record cannot be trusted (missing, damaged, or the database was repaired): count
 * what is really there. The only full scan the store ever does. Drop totals and the sequence are
 * carried over from `previous` where there is one; the sequence never goes back.
 *
 * It also puts back the expiry index entry of every event that carries a deadline, in case the
 * damage took some (entries without an event are removed by the sweep when they come due).
 */
export async function recountMeta (backend: StoreBackend, previous: StoreMeta | undefined): Promise<StoreMeta> {
  const meta = emptyMeta()
  if (previous !== undefined) meta.drops = previous.drops
  let maxSeq = 0
  for (let p = 0; p < PRIORITY_COUNT; p++) {
    const live = meta.live[p] as { count: number, bytes: number }
    for (let from: number | undefined, done = false; !done;) {
      const chunk = await backend.scan(p as Priority, { from, reverse: false, limit: CHUNK })
      const expiryPuts: ExpiryEntry[] = []
      for (const e of chunk) {
        const expiresAt = deadlineOf(e.value)
        if (expiresAt !== undefined) expiryPuts.push({ expiresAt, priority: p as Priority, seq: e.seq })
        live.count++
        live.bytes += storedBytes(e.value.byteLength, expiresAt !== undefined)
        maxSeq = Math.max(maxSeq, e.seq)
      }
      if (expiryPuts.length > 0) await backend.write({ puts: [], dels: [], reportPuts: [], reportDels: [], expiryPuts, expiryDels: [] }, false)
      done = chunk.length < CHUNK
      from = chunk[chunk.length - 1]?.seq
    }
  }
  meta.nextSeq = Math.max(previous?.nextSeq ?? 1, maxSeq + 1)
  meta.nextReportId = previous?.nextReportId ?? 1
  return meta
}
