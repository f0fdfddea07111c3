/**
 * report.html: one self-contained page, no network and no script (inline CSS and SVG only). Every
 * text that comes from the result (scenario name, description, source, phase kinds, reasons) is
 * escaped, since scenarios are user files.
 */
import { bufferChart, colourOf, deliveryChart, esc, evictionsChart, ML, PW, stateRuns, timelineChart, type Axis } from './report-charts.js'
import { count, droppedCell, fin, fixed, latencyLine, ms, sourcesLines, tableRows, wireLine, type PhaseSpan, type SimulationResult } from './report-model.js'

function summaryTableHtml (r: SimulationResult): string {
  const head = ['priority', 'sent', 'delivered', 'evicted (reported)', 'dropped at ingest', 'lost before gateway', 'duplicates removed', 'unexplained']
  const rows = tableRows(r).map((row) => {
    const cls = row.label === 'total' ? ' class="total"' : ''
    const bad = row.unexplained !== 0 ? ' class="bad"' : ''
    return `<tr${cls}><th scope="row">${esc(row.label)}</th><td>${row.sent}</td><td>${row.delivered}</td><td>${row.evicted}</td>` +
      `<td>${esc(droppedCell(row.dropped))}</td><td>${row.lost}</td><td>${row.duplicates}</td><td${bad}>${row.unexplained}</td></tr>`
  })
  return `<table class="summary"><thead><tr>${head.map((h) => `<th scope="col">${h}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`
}

function phasesTableHtml (phases: PhaseSpan[]): string {
  if (phases.length === 0) return '<p>No timeline phases were recorded.</p>'
  const rows = [...phases].sort((a, b) => fin(a.fromMs) - fin(b.fromMs)).map((p) =>
    `<tr><td><span class="swatch" style="background:${colourOf(String(p.kind))}"></span>${esc(p.kind)}</td><td>${fixed(fin(p.fromMs) / 1000, 2)}</td><td>${fixed(fin(p.toMs) / 1000, 2)}</td></tr>`)
  return `<table class="phases"><thead><tr><th>phase / action</th><th>from (s)</th><th>to (s)</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
}

const CSS = `
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #212121; background: #fafafa; }
h1 { margin: 0 0 4px; font-size: 24px; } h2 { font-size: 18px; margin: 28px 0 8px; }
.description { margin: 4px 0 12px; color: #424242; white-space: pre-wrap; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; margin: 0 0 12px; }
dl.meta dt { color: #616161; } dl.meta dd { margin: 0; }
.verdict { padding: 10px 14px; border-radius: 6px; font-weight: 600; color: #fff; max-width: 1070px; }
.verdict.ok { background: #2e7d32; } .verdict.failed { background: #c62828; }
.verdict ul { margin: 6px 0 0; font-weight: 400; }
table { border-collapse: collapse; background: #fff; margin: 8px 0; }
th, td { border: 1px solid #e0e0e0; padding: 4px 10px; }
td { white-space: nowrap; }
table.summary td { text-align: right; font-variant-numeric: tabular-nums; }
table.summary th[scope=row] { text-align: left; }
tr.total { font-weight: 600; background: #f5f5f5; } td.bad { background: #ffcdd2; color: #b71c1c; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; }
figure { margin: 16px 0; } svg { max-width: 100%; height: auto; display: block; border: 1px solid #e0e0e0; }
svg text { font-size: 12px; fill: #424242; font-family: inherit; }
svg text.chart-title { font-size: 14px; font-weight: 600; fill: #212121; }
svg text.axis-label, svg text.legend-head { fill: #616161; font-style: italic; }
svg text.no-data { font-size: 14px; fill: #9e9e9e; }
pre { background: #fff; border: 1px solid #e0e0e0; padding: 8px; overflow: auto; }
`

export function renderHtml (r: SimulationResult): string {
  const samples = [...(r.samples ?? [])].sort((a, b) => fin(a.tMs) - fin(b.tMs))
  const phases = r.phases ?? []
  const lastT = fin(samples[samples.length - 1]?.tMs)
  const xMaxMs = Math.max(fin(r.scenario.durationMs), lastT, ...phases.map((p) => fin(p.toMs)))
  const axisMax = xMaxMs > 0 ? xMaxMs : 1000
  const axis: Axis = { xMaxMs: axisMax, x: (t) => ML + (fin(t) / axisMax) * PW }
  const linkRuns = stateRuns(samples, (s) => s.link, axisMax, 'connected')
  const s = r.scenario
  const source = String(s.source ?? '')
  const verdict = r.verdict.ok
    ? '<div class="verdict ok">OK — no unexplained loss, every critical event delivered</div>'
    : `<div class="verdict failed">FAILED<ul>${(r.verdict.reasons.length > 0 ? r.verdict.reasons : ['no reason given']).map((x) => `<li>${esc(x)}</li>`).join('')}</ul></div>`
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgefwd simulation: ${esc(s.name)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>edgefwd simulation: ${esc(s.name)}</h1>
<p class="description">${esc(s.description)}</p>
<dl class="meta">
<dt>seed</dt><dd>${esc(count(s.seed))}</dd>
<dt>started</dt><dd>${esc(r.startedAt)}</dd>
<dt>timeline</dt><dd>${fixed(fin(s.durationMs) / 1000, 1)} s (wall ${fixed(fin(r.wallMs) / 1000, 1)} s including the final drain)</dd>
<dt>source</dt><dd>${source.includes('\n') ? `<details><summary>scenario file</summary><pre>${esc(source)}</pre></details>` : `<code>${esc(source)}</code>`}</dd>
</dl>
${verdict}
</header>
<main>
<h2>Summary</h2>
${summaryTableHtml(r)}
${sourcesLines(r).length === 0 ? '' : `<p>${sourcesLines(r).map((l) => esc(l.trim())).join('<br>')}</p>\n`}<p>${esc(latencyLine(r))}, max ${esc(ms(r.latencyMs.max))} ms<br>${esc(wireLine(r))}</p>
<h2>Charts</h2>
<figure>${timelineChart(samples, phases, axis, linkRuns)}</figure>
<figure>${bufferChart(samples, axis, linkRuns)}</figure>
<figure>${deliveryChart(samples, axis, linkRuns)}</figure>
<figure>${evictionsChart(samples, axis, linkRuns)}</figure>
<h2>Timeline phases and actions</h2>
${phasesTableHtml(phases)}
</main>
</body>
</html>
`
}
