/**
 * Puts the memory budget's V8 heap limits in force for `edgefwd run`.
 *
 * V8 fixes its heap limits when the process starts; setting the flags later changes nothing
 * (config/memory-budget.ts). The budget in the configuration is the authority: when the heap
 * limit in force is not the budget's, `run` re-executes itself in place (same PID, so systemd
 * and supervisors keep tracking it) with NODE_OPTIONS carrying the budget's flags and
 * MALLOC_ARENA_MAX=2, before it opens the store or a listener. process.execve exists from Node
 * 22.15 / 23.11; on older Node (20, and the armv7l single executable) it runs on with Node's
 * limits and says which NODE_OPTIONS to start it with. The systemd unit starts it with the
 * default budget's options already, so a default start pays no re-execution.
 */
import { getHeapStatistics } from 'node:v8'
import { budgetEnvironment, budgetHeapLimitBytes, type MemoryBudget } from '../config/memory-budget.js'

/** Set in the environment of the re-executed process, so a limit that still does not take (a single executable's own options win over NODE_OPTIONS) cannot loop. */
export const REEXEC_MARKER = 'EDGEFWD_HEAP_REEXEC'

export type HeapBudgetOutcome =
  | { kind: 'off' }
  | { kind: 'in-force', heapLimitBytes: number }
  | { kind: 'not-applied', heapLimitBytes: number, wantedBytes: number, nodeOptions: string, why: string }

export interface ProcessControl {
  env: Readonly<Record<string, string | undefined>>
  heapLimitBytes: () => number
  /** process.execve where Node has it. */
  execve?: (file: string, args: string[], env: Record<string, string>) => never
  execPath: string
  /** The arguments to start this same command again with, execPath first. */
  restartArgs: string[]
}

/** The heap limit V8 reports may differ from the flags by a page or two of rounding. */
const TOLERANCE = 1024 * 1024

export function applyHeapBudget (budget: MemoryBudget | undefined, proc: ProcessControl): HeapBudgetOutcome {
  if (budget === undefined) return { kind: 'off' }
  const wantedBytes = budgetHeapLimitBytes(budget)
  const heapLimitBytes = proc.heapLimitBytes()
  if (Math.abs(heapLimitBytes - wantedBytes) <= TOLERANCE) return { kind: 'in-force', heapLimitBytes }
  const env = budgetEnvironment(budget, proc.env)
  const nodeOptions = env.NODE_OPTIONS ?? ''
  if (proc.env[REEXEC_MARKER] === '1') {
    return { kind: 'not-applied', heapLimitBytes, wantedBytes, nodeOptions, why: 'the options Node was started with override NODE_OPTIONS' }
  }
  if (proc.execve === undefined) {
    return { kind: 'not-applied', heapLimitBytes, wantedBytes, nodeOptions, why: `Node ${process.versions.node} cannot re-execute itself (process.execve needs Node 22.15 or later)` }
  }
  const next: Record<string, string> = {}
  for (const [k, v] of Object.entries(proc.env)) if (v !== undefined) next[k] = v
  try {
    return proc.execve(proc.execPath, proc.restartArgs, { ...next, ...env, [REEXEC_MARKER]: '1' })
  } catch (err) {
    // execve returns only when it failed (a seccomp filter, the binary gone): run on, and say so.
    return { kind: 'not-applied', heapLimitBytes, wantedBytes, nodeOptions, why: `re-executing failed: ${err instanceof Error ? err.message : String(err)}` }
  }
}

/** The real process: what `run` passes to applyHeapBudget. */
export async function currentProcess (env: Readonly<Record<string, string | undefined>>): Promise<ProcessControl> {
  const execve = (process as { execve?: (file: string, args: string[], env: Record<string, string>) => never }).execve
  let sea = false
  try {
    sea = (await import('node:sea')).isSea()
  } catch {}
  // A single executable is its own entry point: argv[1] repeats argv[0] and execArgv comes from the binary.
  const restartArgs = sea
    ? [process.execPath, ...process.argv.slice(2)]
    : [process.execPath, ...process.execArgv, ...process.argv.slice(1)]
  const control: ProcessControl = { env, heapLimitBytes: () => getHeapStatistics().heap_size_limit, execPath: process.execPath, restartArgs }
  if (typeof execve === 'function') control.execve = execve.bind(process)
  return control
}
