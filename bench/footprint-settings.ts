/**
 * bench/footprint-bench.ts's settings, from the environment (its module comment documents each),
 * the targets it reports against, and its progress line on stderr.
 */
import { MIN_MEMORY_BUDGET } from '../src/config/memory-budget.js'
import { parseSize } from '../src/config/units.js'

export const MB = 1024 * 1024
export const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000)
export const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 10)
export const SOAK_S = Number(process.env.BENCH_SOAK_S ?? 600)
export const RATE = Number(process.env.BENCH_RATE ?? 5000)
export const GARBAGE = Number(process.env.BENCH_GARBAGE ?? 1_200_000)
export const BUDGET_MIB = budgetMiB(process.env.BENCH_BUDGET)
export const RUN_SEA = process.env.BENCH_SEA !== '0'
export const RUN_OFF = process.env.BENCH_OFF !== '0'
/** Node options added to the budget's, for trying one (e.g. --v8-pool-size=1). */
export const EXTRA_NODE_OPTIONS = process.env.BENCH_NODE_OPTIONS ?? ''
/** The targets, for the budgeted run at the default 96 MiB. */
export const TARGETS = { rssMbPeak: 96, anonMbPeak: 48, rssMbIdle: 64, growthMbPerMin: 0.5, drainRatio: 0.8 }

export const GATEWAY = 'gw-footprint'
export const EVENTS_TOPIC = `edgefwd/${GATEWAY}/events`

function budgetMiB (text: string | undefined): number {
  if (text === undefined || text === '') return 96
  // A bare number is MiB (BENCH_BUDGET=128); anything else is a size as the config takes it.
  const bytes = /^\d+(\.\d+)?$/.test(text) ? Number(text) * MB : (() => {
    const parsed = parseSize(text)
    if (!parsed.ok) throw new Error(`BENCH_BUDGET: ${parsed.message}`)
    return parsed.value
  })()
  if (bytes < MIN_MEMORY_BUDGET) throw new Error(`BENCH_BUDGET: at least ${MIN_MEMORY_BUDGET / MB} MiB, got ${text}`)
  return bytes / MB
}

export const began = Date.now()
export function progress (message: string): void {
  console.error(`[footprint ${((Date.now() - began) / 1000).toFixed(0).padStart(4)} s] ${message}`)
}
export const mb = (bytes: number): number => bytes / MB
