/**
 * Runs a named scenario shortened for CI, with the same code `edgefwd simulate` runs.
 */
import { loadScenario } from '../../../simulate/scenario.js'
import { fitScenario, runSimulation } from '../../../simulate/simulation.js'
import type { SimulationResult } from '../../../simulate/report.js'

export async function runShortScenario (name: string, durationMs = 8000): Promise<SimulationResult> {
  const scenario = fitScenario(await loadScenario(name), durationMs)
  return await runSimulation({ scenario, drainTimeoutMs: 60_000 })
}

export function column (r: SimulationResult, key: 'sent' | 'delivered' | 'evicted' | 'lostBeforeGateway' | 'duplicates' | 'unexplained'): number {
  return r.priorities.reduce((n, p) => n + p[key], 0)
}

export function droppedAtIngest (r: SimulationResult, reason: string): number {
  return r.priorities.reduce((n, p) => n + (p.droppedAtIngest[reason] ?? 0), 0)
}
