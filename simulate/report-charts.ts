/**
 * The report's inline SVG charts, all on one x axis (seconds since start, the same pixel mapping
 * in each): `timeline` (link state, timeline phases/actions, uplink state as coloured bands),
 * `buffer` (stacked stored events per priority; dashed line = storedBytes/capacity on a right
 * axis), `delivery` (delivered and sent rates in events/s, from the cumulative counters),
 * `evictions` (events evicted per interval as bars).
 *
 * Every coordinate goes through `num()`, which writes 0 for NaN/Infinity, so a result with zero or
 * one sample, or all-zero data, still gives valid SVG. Long runs are downsampled to at most
 * MAX_POINTS points per series (counters are differenced across bucket boundaries, so a rate stays
 * the exact average over its bucket; gauges keep each bucket's peak). Text is escaped (`esc`).
 */
import { fin, PRIORITIES, type PhaseSpan, type Sample } from './report-model.js'

const MAX_POINTS = 600
const MAX_BARS = 300

export function esc (v: unknown): string {
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

export function colourOf (state: string): string {
  const known = STATE_COLOURS[state]
  if (known !== undefined) return known
  let h = 0
  for (const c of state) h = (h * 31 + c.charCodeAt(0)) >>> 0
  return PALETTE[h % PALETTE.length] ?? '#999999'
}

const W = 1100
export const ML = 70
const MR = 70
export const PW = W - ML - MR

export interface Axis { xMaxMs: number, x: (tMs: number) => number }

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
export function stateRuns (samples: Sample[], get: (s: Sample) => string, endMs: number, good: string): Run[] {
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

export function timelineChart (samples: Sample[], phases: PhaseSpan[], axis: Axis, linkRuns: Run[]): string {
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

export function bufferChart (samples: Sample[], axis: Axis, linkRuns: Run[]): string {
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

export function deliveryChart (samples: Sample[], axis: Axis, linkRuns: Run[]): string {
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

export function evictionsChart (samples: Sample[], axis: Axis, linkRuns: Run[]): string {
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
