/**
 * The memory budget: one number (`process.memory`, RSS the whole forwarder should stay within)
 * from which every bound edgefwd holds in memory is derived. docs/config.md "process" has the
 * same table for operators.
 *
 * What a budget B holds (96 MiB, the default, in brackets):
 *
 * | part                          | derived bound                         | at 96 MiB     |
 * | ----------------------------- | ------------------------------------- | ------------- |
 * | Node, its code and modules    | not ours to bound: ~42 MB empty Node, | ~48 MB        |
 * |                               | ~71 MB with every module and TLS      |               |
 * | V8 young generation           | semi-space 1 MiB (young = 3 × semi)   | 3 MiB         |
 * | V8 old generation             | B × 5/16, at least 24 MiB             | 30 MiB        |
 * | LevelDB write buffer          | B / 24, 1–4 MiB (LevelDB holds two)   | 4 MiB         |
 * | LevelDB block cache           | B / 48, 512 KiB–8 MiB                 | 2 MiB         |
 * | LevelDB open tables (mmapped) | 74 files of 1 MiB (its floor)         | ≤ 64 MiB file |
 * | ingest, events not yet stored | B / 16, 2 × frame bytes + 512 B each  | 6 MiB         |
 * | uplink, batches in flight     | window × batch.maxBytes ≤ B / 32      | 3 MiB         |
 * | disk-full memory fallback     | B / 8                                 | 12 MiB        |
 *
 * The parts overlap in time rather than add up: the heap holds the ingest and uplink queues and
 * the fallback; LevelDB's buffers and tables live outside it. The V8 heap limit is what makes
 * the budget hard, and it is only safe because every queue in front of it is bounded in bytes:
 * when ingest's bound is reached, stream connections stop being read (the device's writes block)
 * and UDP datagrams are dropped unread and counted (`overloaded`). A configured key that is
 * already smaller than its derived bound is kept; the budget only ever lowers a bound.
 *
 * The old generation's share is a trade measured on a 1M-event drain at 96 MiB (bench:footprint,
 * two runs each): 36 MiB gave 117–140k events/s with 51 MB anonymous at the peak, 30 MiB
 * 105–121k and 47–50 MB, 24 MiB 76–98k and 43 MB (more full collections). 30 keeps the drain
 * near the unbudgeted rate; below it V8 spends the difference in mark-compact.
 *
 * V8 takes its heap limits only when the process starts (v8.setFlagsFromString afterwards
 * changes nothing: measured, a 40 MiB flag set at run time still let the heap grow to 4 GB). So
 * the limits travel as Node options: the systemd unit and the single executable start with
 * them, and `edgefwd run` started without them re-executes itself with them where Node can
 * (process.execve, Node ≥ 22.15) or says how to set them where it cannot (Node 20).
 * `MALLOC_ARENA_MAX=2` goes with them: glibc's per-thread malloc arenas held ~11 MB more after
 * 5 minutes at 2,000 events/s (sea-bench soak) for no throughput.
 */

const KiB = 1024
const MiB = 1024 * KiB

/** The smallest budget accepted: below it Node with edgefwd's modules alone does not fit. */
export const MIN_MEMORY_BUDGET = 64 * MiB
export const DEFAULT_MEMORY_BUDGET = 96 * MiB

export interface MemoryBudget {
  /** The budget, bytes of RSS. */
  totalBytes: number
  v8: { oldSpaceMiB: number, semiSpaceMiB: number }
  level: { writeBufferSize: number, cacheSize: number }
  /** pendingEventCost() of the events handed to the store, not yet stored. */
  ingestPendingBytes: number
  /** window × batch.maxBytes at most. */
  uplinkInFlightBytes: number
  memoryFallbackBytes: number
}

/**
 * What one event waiting for the store costs: its parsed frame and EventRecord on the heap and
 * its encoded copy in the store's commit group, about twice its frame bytes plus 512 B. Measured
 * (Node 20, 192-byte frames with an 8-number map and two tags, 20,000 pending): 536 B of heap
 * for the parsed frame and the record, ~860 B with the encoded value.
 */
export const PENDING_EVENT_OVERHEAD = 512
export function pendingEventCost (frameBytes: number): number {
  return 2 * frameBytes + PENDING_EVENT_OVERHEAD
}

export function memoryBudget (memory: number | 'off'): MemoryBudget | undefined {
  if (memory === 'off') return undefined
  const b = memory
  return {
    totalBytes: b,
    v8: { oldSpaceMiB: Math.max(24, Math.floor(b * 5 / 16 / MiB)), semiSpaceMiB: 1 },
    level: { writeBufferSize: clamp(Math.floor(b / 24), MiB, 4 * MiB), cacheSize: clamp(Math.floor(b / 48), 512 * KiB, 8 * MiB) },
    ingestPendingBytes: Math.floor(b / 16),
    uplinkInFlightBytes: Math.floor(b / 32),
    memoryFallbackBytes: Math.floor(b / 8),
  }
}

/** The V8 options that apply the budget's heap limits at start (NODE_OPTIONS, execArgv). */
export function budgetNodeOptions (budget: MemoryBudget | undefined): string[] {
  if (budget === undefined) return []
  return [`--max-old-space-size=${budget.v8.oldSpaceMiB}`, `--max-semi-space-size=${budget.v8.semiSpaceMiB}`]
}

/** The environment a process needs to start within the budget: NODE_OPTIONS and MALLOC_ARENA_MAX. */
export function budgetEnvironment (budget: MemoryBudget | undefined, env: Readonly<Record<string, string | undefined>> = {}): Record<string, string> {
  const options = budgetNodeOptions(budget)
  if (options.length === 0) return {}
  // Only the heap options are taken out; the rest (quoted values included) is kept as written.
  const kept = (env.NODE_OPTIONS ?? '').replace(/(^|\s)--max-(?:old|semi)-space-size[= ]\S+/g, ' ').replace(/\s+/g, ' ').trim()
  return { NODE_OPTIONS: [kept, ...options].filter(o => o !== '').join(' '), MALLOC_ARENA_MAX: '2' }
}

/** V8's heap_size_limit under the budget's options: old space + 3 semi-spaces (measured, Node 20 and 24). */
export function budgetHeapLimitBytes (budget: MemoryBudget): number {
  return (budget.v8.oldSpaceMiB + 3 * budget.v8.semiSpaceMiB) * MiB
}

function clamp (n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n))
}
