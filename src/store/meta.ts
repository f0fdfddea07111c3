import { DROP_REASONS, PRIORITY_COUNT } from '../types.js'
import type { DropReasonName, Priority } from '../types.js'

/**
 * The meta record: everything the store must know at open without scanning events. It is written
 * in the same atomic batch as the event writes and deletes it describes, so it always matches the
 * events on disk. JSON: a few hundred bytes per group commit, negligible next to the events.
 */
export interface StoreMeta {
  nextSeq: number
  nextReportId: number
  /** Live events (leased included) per priority. */
  live: Array<{ count: number, bytes: number }>
  /** Cumulative drops since the store was created, by "priority:reason". */
  drops: Map<string, { count: number, bytes: number }>
}

export function emptyMeta (): StoreMeta {
  return { nextSeq: 1, nextReportId: 1, live: Array.from({ length: PRIORITY_COUNT }, () => ({ count: 0, bytes: 0 })), drops: new Map() }
}

export function dropKey (priority: Priority, reason: DropReasonName): string {
  return `${priority}:${reason}`
}

export function encodeMeta (m: StoreMeta): Uint8Array {
  return Buffer.from(JSON.stringify({
    v: 1,
    nextSeq: m.nextSeq,
    nextReportId: m.nextReportId,
    live: m.live.map(l => [l.count, l.bytes]),
    drops: Object.fromEntries([...m.drops].map(([k, v]) => [k, [v.count, v.bytes]]))
  }))
}

/** Parses a meta record; undefined when it is missing or damaged (the store then rebuilds it). */
export function decodeMeta (bytes: Uint8Array | undefined): StoreMeta | undefined {
  if (bytes === undefined || bytes.byteLength === 0) return undefined
  try {
    const raw = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as {
      v?: unknown, nextSeq?: unknown, nextReportId?: unknown, live?: unknown, drops?: unknown
    }
    if (raw.v !== 1 || !isCount(raw.nextSeq) || !isCount(raw.nextReportId) || !Array.isArray(raw.live) || raw.live.length !== PRIORITY_COUNT) return undefined
    const live = raw.live.map((l: unknown) => Array.isArray(l) && isCount(l[0]) && isCount(l[1]) ? { count: l[0], bytes: l[1] } : undefined)
    if (live.some(l => l === undefined)) return undefined
    const drops = new Map<string, { count: number, bytes: number }>()
    for (const [k, v] of Object.entries(raw.drops ?? {})) {
      const [p, reason] = k.split(':')
      if (!Array.isArray(v) || !isCount(v[0]) || !isCount(v[1]) || Number(p) >= PRIORITY_COUNT || !DROP_REASONS.includes(reason as DropReasonName)) return undefined
      drops.set(k, { count: v[0], bytes: v[1] })
    }
    return { nextSeq: raw.nextSeq, nextReportId: raw.nextReportId, live: live as StoreMeta['live'], drops }
  } catch {
    return undefined
  }
}

function isCount (n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
}
