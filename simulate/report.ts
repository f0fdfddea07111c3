/**
 * The simulation's report: the terminal summary table, summary.json and a self-contained
 * report.html. Pure functions of a SimulationResult (the orchestrator fills it); only
 * `writeReport` touches the disk.
 *
 * - summary.json is the SimulationResult itself, so `JSON.parse` gives back exactly the input.
 * - report.html needs no network and no script: inline CSS and inline SVG only. Every text that
 *   comes from the result (scenario name, description, source, phase kinds, reasons) is escaped,
 *   since scenarios are user files.
 * - Charts share one x axis (seconds since start, same pixel mapping in each SVG):
 *   `timeline` (link state, timeline phases/actions, uplink state as coloured bands),
 *   `buffer` (stacked stored events per priority; dashed line = storedBytes/capacity on a right
 *   axis), `delivery` (delivered and sent rates in events/s, from the cumulative counters),
 *   `evictions` (events evicted per interval as bars).
 * - Every coordinate goes through `num()`, which writes 0 for NaN/Infinity, so a result with
 *   zero or one sample, or all-zero data, still gives valid SVG. Long runs are downsampled to at
 *   most MAX_POINTS points per series (counters are differenced across bucket boundaries, so a
 *   rate stays the exact average over its bucket; gauges keep each bucket's peak).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

export type LinkState = 'connected' | 'outage' | 'blackhole' | 'throttle' | 'latency' | 'flapping' | 'broker-down' | 'forwarder-down'
export interface Sample {
  tMs: number
  link: LinkState
  uplink: string
  stored: [number, number, number, number]
  storedBytes: number
  capacityBytes: number
  sent: number
  delivered: number
  evicted: number
}
export interface PhaseSpan { kind: string, fromMs: number, toMs: number }
export interface PriorityRow {
  priority: 'low' | 'normal' | 'high' | 'critical'
  sent: number
  delivered: number
  evicted: number
  droppedAtIngest: Record<string, number>
  lostBeforeGateway: number
  duplicates: number
  unexplained: number
}
export interface SimulationResult {
  scenario: { name: string, description: string, seed: number, durationMs: number, source: string }
  startedAt: string
  wallMs: number
  samples: Sample[]
  phases: PhaseSpan[]
  priorities: PriorityRow[]
  latencyMs: { p50: number, p99: number, max: number, count: number }
  wire: { bytesUp: number, eventsDelivered: number, bytesPerEvent: number }
  verdict: { ok: boolean, reasons: string[] }
}

const PRIORITIES = ['low', 'normal', 'high', 'critical'] as const
const MAX_POINTS = 600
const MAX_BARS = 300
const MAX_TEXT_WIDTH = 100

// ---------------------------------------------------------------------------------------------
// Numbers and the table rows shared by the text and the HTML summary

function fin (v: unknown): number { return typeof v === 'number' && Number.isFinite(v) ? v : 0 }
function count (v: unknown): string { return typeof v === 'number' && Number.isFinite(v) ? String(v) : 'n/a' }
function fixed (v: unknown, digits: number): string {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : 'n/a'
}
function ms (v: unknown): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return 'n/a'
  return Math.abs(v) >= 10 ? String(Math.round(v)) : String(Math.round(v * 10) / 10)
}

interface TableRow {
  label: string
  sent: number, delivered: number, evicted: number, lost: number, duplicates: number, unexplained: number
  dropped: Record<string, number>
}

function tableRows (r: SimulationResult): TableRow[] {
  const rows: TableRow[] = r.priorities.map((p) => ({
    label: p.priority,
    sent: fin(p.sent),
    delivered: fin(p.delivered),
    evicted: fin(p.evicted),
    lost: fin(p.lostBeforeGateway),
    duplicates: fin(p.duplicates),
    unexplained: fin(p.unexplained),
    dropped: Object.fromEntries(Object.entries(p.droppedAtIngest ?? {}).map(([k, v]) => [k, fin(v)]))
  }))
  const total: TableRow = { label: 'total', sent: 0, delivered: 0, evicted: 0, lost: 0, duplicates: 0, unexplained: 0, dropped: {} }
  for (const row of rows) {
    total.sent += row.sent; total.delivered += row.delivered; total.evicted += row.evicted
    total.lost += row.lost; total.duplicates += row.duplicates; total.unexplained += row.unexplained
    for (const [k, v] of Object.entries(row.dropped)) total.dropped[k] = (total.dropped[k] ?? 0) + v
  }
  return [...rows, total]
}

function droppedTotal (d: Record<string, number>): number { return Object.values(d).reduce((a, b) => a + b, 0) }
function droppedReasons (d: Record<string, number>): string {
  return Object.entries(d).filter(([, v]) => v !== 0).map(([k, v]) => `${k} ${v}`).join(', ')
}
function droppedCell (d: Record<string, number>): string {
  const reasons = droppedReasons(d)
  return reasons === '' ? String(droppedTotal(d)) : `${droppedTotal(d)} (${reasons})`
}

function verdictLine (r: SimulationResult): string {
  if (r.verdict.ok) return 'verdict: OK — no unexplained loss, every critical event delivered'
  const reasons = r.verdict.reasons.length > 0 ? r.verdict.reasons.join('; ') : 'no reason given'
  return `verdict: FAILED — ${reasons}`
}
function latencyLine (r: SimulationResult): string {
  return `latency p50 ${ms(r.latencyMs.p50)} ms, p99 ${ms(r.latencyMs.p99)} ms (${count(r.latencyMs.count)} events)`
}
function wireLine (r: SimulationResult): string {
  return `wire: ${fixed(r.wire.bytesPerEvent, 1)} bytes/event (${count(r.wire.bytesUp)} bytes for ${count(r.wire.eventsDelivered)} events)`
}

// ---------------------------------------------------------------------------------------------
// Terminal summary

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
    for (const row of rows) {
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

// ---------------------------------------------------------------------------------------------
// Files

export async function writeReport (dir: string, r: SimulationResult): Promise<{ html: string, json: string }> {
  await mkdir(dir, { recursive: true })
  const html = join(dir, 'report.html')
  const json = join(dir, 'summary.json')
  await writeFile(json, JSON.stringify(r, null, 2) + '\n')
  await writeFile(html, renderHtml(r))
  return { html, json }
}

// ---------------------------------------------------------------------------------------------
// HTML

function esc (v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c)
}
/** Every SVG number goes through here: never NaN or Infinity in an attribute. */
function num (v: number): string { return Number.isFinite(v) ? String(Math.round(v * 10) / 10) : '0' }

const STATE_COLOURS: Record<string, string> = {
  connected: '#2e7d32',
  outage: '#c62828',
  blackhole: '#6a1b9a',
  throttle: '#ef6c00',
  latency: '#f9a825',
  flapping: '#ad1457',
  'broker-down': '#37474f',
  'forwarder-down': '#5d4037',
  online: '#43a047',
  connecting: '#29b6f6',
  backoff: '#ff8f00',
  idle: '#bdbdbd',
  closing: '#757575',
  unknown: '#e0e0e0'
}
const PALETTE = ['#00838f', '#8e24aa', '#6d4c41', '#c0ca33', '#3949ab', '#d81b60', '#00897b', '#fb8c00']
const PRIORITY_COLOURS = { low: '#90caf9', normal: '#42a5f5', high: '#1565c0', critical: '#d32f2f' }

function colourOf (state: string): string {
  const known = STATE_COLOURS[state]
  if (known !== undefined) return known
  let h = 0
  for (const c of state) h = (h * 31 + c.charCodeAt(0)) >>> 0
  return PALETTE[h % PALETTE.length] ?? '#999999'
}

const W = 1100
const ML = 70
const MR = 70
const PW = W - ML - MR

interface Axis { xMaxMs: number, x: (tMs: number) => number }

function niceStep (raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1
  const exp = 10 ** Math.floor(Math.log10(raw))
  const f = raw / exp
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * exp
}
function ticks (max: number, target: number): { max: number, values: number[] } {
  const step = niceStep(fin(max) / target)
  const top = Math.max(step, Math.ceil(fin(max) / step - 1e-9) * step)
  const values: number[] = []
  for (let v = 0; v <= top + step / 2; v += step) values.push(Number(v.toPrecision(12)))
  return { max: top, values }
}
function tickLabel (v: number): string {
  if (Math.abs(v) >= 10000) return `${Number((v / 1000).toPrecision(6))}k`
  return String(Number(v.toPrecision(6)))
}

interface Run { state: string, fromMs: number, toMs: number }

/** Bands of one state field over time, downsampled so at most MAX_POINTS runs come out. */
function stateRuns (samples: Sample[], get: (s: Sample) => string, endMs: number, good: string): Run[] {
  const n = samples.length
  const buckets = Math.min(n, MAX_POINTS)
  const reps: Array<{ t: number, state: string }> = []
  for (let b = 0; b < buckets; b++) {
    const from = Math.floor(b * n / buckets)
    const to = Math.floor((b + 1) * n / buckets)
    // A short outage inside a bucket must stay visible: the bucket shows its commonest bad state.
    const tally = new Map<string, number>()
    for (let i = from; i < to; i++) {
      const s = samples[i]
      if (s !== undefined) tally.set(String(get(s)), (tally.get(String(get(s))) ?? 0) + 1)
    }
    let state = good
    let best = 0
    for (const [k, c] of tally) if (k !== good && c > best) { state = k; best = c }
    if (best === 0 && tally.size === 0) continue
    reps.push({ t: fin(samples[from]?.tMs), state })
  }
  const runs: Run[] = []
  for (let i = 0; i < reps.length; i++) {
    const rep = reps[i]
    if (rep === undefined) continue
    const next = reps[i + 1]?.t ?? Math.max(rep.t, endMs)
    const last = runs[runs.length - 1]
    if (last !== undefined && last.state === rep.state) last.toMs = next
    else runs.push({ state: rep.state, fromMs: rep.t, toMs: next })
  }
  return runs
}

/** Greedy interval partitioning so overlapping phases and actions get their own lanes. */
function phaseLanes (phases: PhaseSpan[]): Array<{ lane: number, phase: PhaseSpan }> {
  const sorted = [...phases].sort((a, b) => fin(a.fromMs) - fin(b.fromMs))
  const laneEnds: number[] = []
  return sorted.map((phase) => {
    let lane = laneEnds.findIndex((end) => end <= fin(phase.fromMs))
    if (lane === -1) { lane = laneEnds.length; laneEnds.push(0) }
    laneEnds[lane] = Math.max(fin(phase.fromMs), fin(phase.toMs))
    return { lane, phase }
  })
}

function svgOpen (kind: string, title: string, h: number): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" data-chart="${kind}" viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" role="img" aria-labelledby="chart-${kind}-title">` +
    `<title id="chart-${kind}-title">${esc(title)}</title>` +
    `<rect x="0" y="0" width="${W}" height="${h}" fill="#ffffff"/>` +
    `<text class="chart-title" x="${ML}" y="18">${esc(title)}</text>`
}

function xAxis (axis: Axis, top: number, bottom: number): string {
  const t = ticks(axis.xMaxMs / 1000, 12)
  let out = `<g class="axis x-axis"><line x1="${ML}" y1="${num(bottom)}" x2="${ML + PW}" y2="${num(bottom)}" stroke="#444"/>`
  for (const v of t.values) {
    if (v * 1000 > axis.xMaxMs + 1e-6) break
    const x = axis.x(v * 1000)
    out += `<line x1="${num(x)}" y1="${num(top)}" x2="${num(x)}" y2="${num(bottom)}" stroke="#eee"/>` +
      `<line x1="${num(x)}" y1="${num(bottom)}" x2="${num(x)}" y2="${num(bottom + 5)}" stroke="#444"/>` +
      `<text x="${num(x)}" y="${num(bottom + 18)}" text-anchor="middle">${tickLabel(v)}</text>`
  }
  return out + `<text x="${ML + PW}" y="${num(bottom + 32)}" text-anchor="end" class="axis-label">seconds since start</text></g>`
}

function yAxis (max: number, top: number, bottom: number, label: string, side: 'left' | 'right'): { max: number, svg: string } {
  const t = ticks(max, 5)
  const xLine = side === 'left' ? ML : ML + PW
  let out = `<g class="axis y-axis-${side}"><line x1="${xLine}" y1="${num(top)}" x2="${xLine}" y2="${num(bottom)}" stroke="#444"/>`
  for (const v of t.values) {
    const y = bottom - (v / t.max) * (bottom - top)
    if (side === 'left') out += `<line x1="${ML}" y1="${num(y)}" x2="${ML + PW}" y2="${num(y)}" stroke="#eee"/>`
    out += `<text x="${side === 'left' ? ML - 6 : ML + PW + 6}" y="${num(y + 4)}" text-anchor="${side === 'left' ? 'end' : 'start'}">${tickLabel(v)}</text>`
  }
  const lx = side === 'left' ? 16 : W - 10
  const ly = (top + bottom) / 2
  out += `<text class="axis-label" x="${lx}" y="${num(ly)}" text-anchor="middle" transform="rotate(-90 ${lx} ${num(ly)})">${esc(label)}</text></g>`
  return { max: t.max, svg: out }
}

function legend (items: Array<{ label: string, colour: string, dashed?: boolean }>, y: number, x0 = ML): { svg: string, height: number } {
  let x = x0
  let row = 0
  let out = '<g class="legend">'
  for (const item of items) {
    const w = 22 + item.label.length * 7 + 14
    if (x + w > W - MR && x > x0) { x = x0; row++ }
    const yy = y + row * 18
    out += item.dashed === true
      ? `<line x1="${x}" y1="${yy - 4}" x2="${x + 16}" y2="${yy - 4}" stroke="${item.colour}" stroke-width="2" stroke-dasharray="4 3"/>`
      : `<rect x="${x}" y="${yy - 10}" width="16" height="11" fill="${item.colour}"/>`
    out += `<text x="${x + 22}" y="${yy}">${esc(item.label)}</text>`
    x += w
  }
  return { svg: out + '</g>', height: (row + 1) * 18 }
}

/** Faint bands behind the data charts wherever the link was not `connected`. */
function backdrop (runs: Run[], axis: Axis, top: number, bottom: number): string {
  return '<g class="backdrop">' + runs.filter((r) => r.state !== 'connected').map((r) =>
    `<rect x="${num(axis.x(r.fromMs))}" y="${num(top)}" width="${num(Math.max(0, axis.x(r.toMs) - axis.x(r.fromMs)))}" height="${num(bottom - top)}" fill="${colourOf(r.state)}" fill-opacity="0.1"/>`
  ).join('') + '</g>'
}

function noData (top: number, bottom: number): string {
  return `<text x="${ML + PW / 2}" y="${num((top + bottom) / 2)}" text-anchor="middle" class="no-data">no samples recorded</text>`
}

function timelineChart (samples: Sample[], phases: PhaseSpan[], axis: Axis, linkRuns: Run[]): string {
  const uplinkRuns = stateRuns(samples, (s) => s.uplink, axis.xMaxMs, 'online')
  const lanes = phaseLanes(phases)
  const laneCount = Math.max(1, ...lanes.map((l) => l.lane + 1))
  const seen = (runs: Run[]): string[] => [...new Set(runs.map((r) => r.state))]
  const linkKinds = [...new Set([...seen(linkRuns), ...phases.map((p) => String(p.kind))])]
  const leg1 = legend(linkKinds.map((k) => ({ label: k, colour: colourOf(k) })), 40, ML + 90)
  const leg2 = legend(seen(uplinkRuns).map((k) => ({ label: k, colour: colourOf(k) })), 40 + leg1.height, ML + 90)
  const top = 40 + leg1.height + leg2.height + 4
  const laneH = 22
  const phaseH = Math.max(laneH, laneCount * 14)
  const rows = [{ name: 'link', y: top, h: laneH }, { name: 'phases', y: top + laneH + 6, h: phaseH }, { name: 'uplink', y: top + laneH + phaseH + 12, h: laneH }]
  const bottom = top + laneH * 2 + phaseH + 12
  const h = bottom + 40
  const band = (kind: string, state: string, fromMs: number, toMs: number, y: number, bh: number): string =>
    `<rect data-band="${kind}" data-state="${esc(state)}" x="${num(axis.x(fromMs))}" y="${num(y)}" width="${num(Math.max(0.5, axis.x(toMs) - axis.x(fromMs)))}" height="${num(bh)}" fill="${colourOf(state)}">` +
    `<title>${esc(`${kind} ${state}: ${(fromMs / 1000).toFixed(2)}–${(toMs / 1000).toFixed(2)} s`)}</title></rect>`
  let out = svgOpen('timeline', 'Timeline: link state, scenario phases and actions, forwarder uplink', h)
  out += `<text x="${ML}" y="40" class="legend-head">link / phase</text>` + leg1.svg
  out += `<text x="${ML}" y="${40 + leg1.height}" class="legend-head">uplink</text>` + leg2.svg
  out += xAxis(axis, top, bottom)
  for (const row of rows) out += `<text x="${ML - 6}" y="${num(row.y + Math.min(row.h, laneH) / 2 + 4)}" text-anchor="end">${row.name}</text>`
  const [linkRow, phaseRow, uplinkRow] = rows
  for (const r of linkRuns) out += band('link', r.state, r.fromMs, r.toMs, linkRow?.y ?? 0, laneH)
  const subH = phaseH / laneCount
  for (const { lane, phase } of lanes) out += band('phase', String(phase.kind), fin(phase.fromMs), fin(phase.toMs), (phaseRow?.y ?? 0) + lane * subH, subH - 2)
  for (const r of uplinkRuns) out += band('uplink', r.state, r.fromMs, r.toMs, uplinkRow?.y ?? 0, laneH)
  if (samples.length === 0) out += noData(top, bottom)
  return out + '</svg>'
}

/** Indexes of at most MAX_POINTS samples, each its bucket's peak of `weight`. */
function peakIndexes (samples: Sample[], weight: (s: Sample) => number): number[] {
  const n = samples.length
  const buckets = Math.min(n, MAX_POINTS)
  const out: number[] = []
  for (let b = 0; b < buckets; b++) {
    let best = Math.floor(b * n / buckets)
    for (let i = best; i < Math.floor((b + 1) * n / buckets); i++) {
      const s = samples[i]; const c = samples[best]
      if (s !== undefined && c !== undefined && weight(s) > weight(c)) best = i
    }
    out.push(best)
  }
  return out
}

function storedTotal (s: Sample): number { return s.stored.reduce((a: number, v) => a + fin(v), 0) }

function bufferChart (samples: Sample[], axis: Axis, linkRuns: Run[]): string {
  const leg = legend([
    ...PRIORITIES.map((p) => ({ label: `stored ${p}`, colour: PRIORITY_COLOURS[p] })),
    { label: 'stored bytes, % of capacity (right axis)', colour: '#212121', dashed: true }
  ], 40)
  const top = 40 + leg.height + 6
  const bottom = top + 200
  const idx = peakIndexes(samples, storedTotal)
  const pts = idx.map((i) => samples[i]).filter((s): s is Sample => s !== undefined)
  const maxStored = Math.max(0, ...pts.map(storedTotal))
  const pct = pts.map((s) => fin(s.capacityBytes) > 0 ? fin(s.storedBytes) / fin(s.capacityBytes) * 100 : 0)
  const left = yAxis(maxStored, top, bottom, 'events stored', 'left')
  const right = yAxis(Math.max(100, ...pct), top, bottom, '% of capacity (bytes)', 'right')
  const y = (v: number, max: number): number => bottom - (v / max) * (bottom - top)
  let out = svgOpen('buffer', 'Buffer: events stored per priority (stacked), and bytes as % of capacity', bottom + 40) + leg.svg
  out += backdrop(linkRuns, axis, top, bottom) + xAxis(axis, top, bottom) + left.svg + right.svg
  if (pts.length === 0) return out + noData(top, bottom) + '</svg>'
  const base = pts.map(() => 0)
  PRIORITIES.forEach((p, k) => {
    const lower = [...base]
    pts.forEach((s, i) => { base[i] = (base[i] ?? 0) + fin(s.stored[k]) })
    const upperPath = pts.map((s, i) => `${i === 0 ? 'M' : 'L'}${num(axis.x(fin(s.tMs)))},${num(y(base[i] ?? 0, left.max))}`).join(' ')
    const lowerPath = pts.map((s, i) => `L${num(axis.x(fin(s.tMs)))},${num(y(lower[i] ?? 0, left.max))}`).reverse().join(' ')
    out += `<path data-priority="${p}" d="${upperPath} ${lowerPath} Z" fill="${PRIORITY_COLOURS[p]}" fill-opacity="0.85" stroke="none"/>`
  })
  out += `<polyline data-series="fill" points="${pts.map((s, i) => `${num(axis.x(fin(s.tMs)))},${num(y(pct[i] ?? 0, right.max))}`).join(' ')}" fill="none" stroke="#212121" stroke-width="1.5" stroke-dasharray="6 4"/>`
  return out + '</svg>'
}

/** Counter differences over at most `max` intervals: [fromMs, toMs, delta per field]. */
function intervals (samples: Sample[], max: number, fields: Array<(s: Sample) => number>): Array<{ fromMs: number, toMs: number, d: number[] }> {
  const n = samples.length
  const segs = Math.min(n - 1, max)
  const out: Array<{ fromMs: number, toMs: number, d: number[] }> = []
  for (let b = 0; b < segs; b++) {
    const a = samples[Math.round(b * (n - 1) / segs)]
    const z = samples[Math.round((b + 1) * (n - 1) / segs)]
    if (a === undefined || z === undefined) continue
    // A counter never goes backwards; a reset sample would otherwise draw a negative rate.
    out.push({ fromMs: fin(a.tMs), toMs: fin(z.tMs), d: fields.map((f) => Math.max(0, fin(f(z)) - fin(f(a)))) })
  }
  return out
}

function deliveryChart (samples: Sample[], axis: Axis, linkRuns: Run[]): string {
  const leg = legend([{ label: 'delivered to the sink', colour: '#2e7d32' }, { label: 'sent by devices', colour: '#1e88e5', dashed: true }], 40)
  const top = 40 + leg.height + 6
  const bottom = top + 180
  const segs = intervals(samples, MAX_POINTS, [(s) => s.delivered, (s) => s.sent]).filter((g) => g.toMs > g.fromMs)
  const rates = segs.map((g) => ({ t: (g.fromMs + g.toMs) / 2, delivered: (g.d[0] ?? 0) / ((g.toMs - g.fromMs) / 1000), sent: (g.d[1] ?? 0) / ((g.toMs - g.fromMs) / 1000) }))
  const left = yAxis(Math.max(0, ...rates.map((r) => Math.max(fin(r.delivered), fin(r.sent)))), top, bottom, 'events/s', 'left')
  const y = (v: number): number => bottom - (fin(v) / left.max) * (bottom - top)
  let out = svgOpen('delivery', 'Delivery: events/s delivered to the sink and sent by devices', bottom + 40) + leg.svg
  out += backdrop(linkRuns, axis, top, bottom) + xAxis(axis, top, bottom) + left.svg
  if (samples.length === 0) return out + noData(top, bottom) + '</svg>'
  // Sent is drawn last, thin and dashed, so it stays visible where the two rates coincide.
  out += `<polyline data-series="delivered" points="${rates.map((r) => `${num(axis.x(r.t))},${num(y(r.delivered))}`).join(' ')}" fill="none" stroke="#2e7d32" stroke-width="2.5"/>`
  out += `<polyline data-series="sent" points="${rates.map((r) => `${num(axis.x(r.t))},${num(y(r.sent))}`).join(' ')}" fill="none" stroke="#1e88e5" stroke-width="1.5" stroke-dasharray="5 3"/>`
  return out + '</svg>'
}

function evictionsChart (samples: Sample[], axis: Axis, linkRuns: Run[]): string {
  const segs = intervals(samples, MAX_BARS, [(s) => s.evicted])
  const widths = segs.map((g) => g.toMs - g.fromMs).filter((w) => w > 0).sort((a, b) => a - b)
  const typical = widths[Math.floor(widths.length / 2)]
  const unit = typical === undefined ? 'interval' : `${(typical / 1000).toFixed(2)} s interval`
  const title = `Evictions: events evicted or expired by the store per ${unit}`
  const top = 40
  const bottom = top + 140
  const left = yAxis(Math.max(0, ...segs.map((g) => g.d[0] ?? 0)), top, bottom, 'events evicted', 'left')
  let out = svgOpen('evictions', title, bottom + 40)
  out += backdrop(linkRuns, axis, top, bottom) + xAxis(axis, top, bottom) + left.svg
  if (samples.length === 0) return out + noData(top, bottom) + '</svg>'
  for (const g of segs) {
    const v = g.d[0] ?? 0
    if (v <= 0) continue
    const x0 = axis.x(g.fromMs)
    const hgt = (v / left.max) * (bottom - top)
    out += `<rect data-bar="${num(v)}" x="${num(x0)}" y="${num(bottom - hgt)}" width="${num(Math.max(1, axis.x(g.toMs) - x0 - 0.5))}" height="${num(hgt)}" fill="#c62828">` +
      `<title>${esc(`${v} evicted, ${(g.fromMs / 1000).toFixed(2)}–${(g.toMs / 1000).toFixed(2)} s`)}</title></rect>`
  }
  if (segs.every((g) => (g.d[0] ?? 0) === 0)) out += `<text x="${ML + PW / 2}" y="${num((top + bottom) / 2)}" text-anchor="middle" class="no-data">no evictions</text>`
  return out + '</svg>'
}

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
<p>${esc(latencyLine(r))}, max ${esc(ms(r.latencyMs.max))} ms<br>${esc(wireLine(r))}</p>
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
