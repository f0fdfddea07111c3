/**
 * The simulation's report: the terminal summary table, summary.json and a self-contained
 * report.html. Pure functions of a SimulationResult (the orchestrator fills it); only
 * `writeReport` touches the disk. summary.json is the SimulationResult itself, so `JSON.parse`
 * gives back exactly the input.
 *
 * The parts: report-model.ts (the result's types and the rows both summaries show), report-text.ts
 * (the terminal table), report-html.ts (the page) with report-charts.ts (its SVG charts).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { renderHtml } from './report-html.js'
import type { SimulationResult } from './report-model.js'

export type { LinkState, PhaseSpan, PriorityRow, Sample, SimulationResult, SourceRow } from './report-model.js'
export { renderHtml } from './report-html.js'
export { renderSummary } from './report-text.js'

export async function writeReport (dir: string, r: SimulationResult): Promise<{ html: string, json: string }> {
  await mkdir(dir, { recursive: true })
  const html = join(dir, 'report.html')
  const json = join(dir, 'summary.json')
  await writeFile(json, JSON.stringify(r, null, 2) + '\n')
  await writeFile(html, renderHtml(r))
  return { html, json }
}
