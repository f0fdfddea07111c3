/**
 * The simulation's summary for a terminal: the per-priority table (ingest drop reasons inline, or
 * as wrapped footnotes when inline they would pass MAX_TEXT_WIDTH), the source devices' line when
 * the scenario has mqtt or modbus devices, then latency, wire and verdict.
 * Control characters from the scenario are blanked.
 */
import { count, droppedCell, droppedReasons, droppedTotal, fin, fixed, latencyLine, sourcesLines, tableRows, verdictLine, wireLine, type SimulationResult } from './report-model.js'

const MAX_TEXT_WIDTH = 100

/** Control characters would let a scenario name move the cursor or recolour the terminal. */
function plain (s: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = String(s).replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
  return clean.length > MAX_TEXT_WIDTH ? clean.slice(0, MAX_TEXT_WIDTH - 1) + '…' : clean
}

export function renderSummary (r: SimulationResult): string {
  const head1 = ['priority', 'sent', 'delivered', 'evicted', 'dropped', 'lost before', 'duplicates', 'unexplained']
  const head2 = ['', '', '', '(reported)', 'at ingest', 'gateway', 'removed', '']
  const rows = tableRows(r)
  const cellsFor = (inlineReasons: boolean): string[][] => rows.map((row) => [
    row.label, String(row.sent), String(row.delivered), String(row.evicted),
    inlineReasons ? droppedCell(row.dropped) : droppedTotal(row.dropped) + (droppedReasons(row.dropped) === '' ? '' : '*'),
    String(row.lost), String(row.duplicates), String(row.unexplained)
  ])
  const layout = (cells: string[][]): string[] => {
    const widths = head1.map((h, i) => Math.max(h.length, head2[i]?.length ?? 0, ...cells.map((c) => c[i]?.length ?? 0)))
    const line = (c: string[]): string => c.map((v, i) => i === 0 ? v.padEnd(widths[i] ?? 0) : v.padStart(widths[i] ?? 0)).join('  ').trimEnd()
    const rule = '-'.repeat(widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1))
    const body = cells.map(line)
    return [line(head1), line(head2), rule, ...body.slice(0, -1), rule, ...body.slice(-1)]
  }
  let table = layout(cellsFor(true))
  const notes: string[] = []
  if (table.some((l) => l.length > MAX_TEXT_WIDTH)) {
    // Many reject reasons: totals in the table, the reasons as footnotes wrapped under the limit.
    table = layout(cellsFor(false))
    // The total's footnote only when it adds up more than one priority's.
    const withReasons = rows.slice(0, -1).filter(row => droppedReasons(row.dropped) !== '').length
    for (const row of withReasons > 1 ? rows : rows.slice(0, -1)) {
      const reasons = droppedReasons(row.dropped)
      if (reasons !== '') notes.push(...wrap(`* dropped at ingest, ${row.label}: ${reasons}`, '    '))
    }
  }
  const s = r.scenario
  return [
    plain(`scenario ${s.name} — seed ${count(s.seed)}, ${fixed(fin(s.durationMs) / 1000, 1)} s timeline, ${fixed(fin(r.wallMs) / 1000, 1)} s wall`),
    '',
    ...table,
    ...notes,
    ...sourcesLines(r).map(plain),
    '',
    latencyLine(r),
    wireLine(r),
    verdictLine(r)
  ].join('\n') + '\n'
}

function wrap (text: string, indent: string): string[] {
  const out: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > MAX_TEXT_WIDTH) { out.push(line); line = indent + word } else line = line === '' ? word : `${line} ${word}`
  }
  if (line !== '') out.push(line)
  return out
}
