/**
 * What the simulation's report shows, computed once for the terminal summary and the HTML page:
 * the SimulationResult the orchestrator fills (summary.json is exactly this), the table rows per
 * priority with their total, and the latency, wire and verdict lines. Numbers that may be missing
 * or not finite in a hand-edited result read as 0 (`fin`) or `n/a`.
 */
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
/** One group of source devices (ingest.mqtt, ingest.modbus): what it sent (messages or polls answered) and where that went. */
export interface SourceRow {
  transport: 'mqtt' | 'modbus'
  /** The group's id pattern, e.g. `tasmota-{n}`. */
  devices: string
  count: number
  priority: string
  sent: number
  delivered: number
  evicted: number
  droppedAtIngest: number
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
  /** Present when the scenario has mqtt or modbus devices (their events are in `priorities` too). */
  sources?: SourceRow[]
  latencyMs: { p50: number, p99: number, max: number, count: number }
  wire: { bytesUp: number, eventsDelivered: number, bytesPerEvent: number }
  verdict: { ok: boolean, reasons: string[] }
}

export const PRIORITIES = ['low', 'normal', 'high', 'critical'] as const

export function fin (v: unknown): number { return typeof v === 'number' && Number.isFinite(v) ? v : 0 }
export function count (v: unknown): string { return typeof v === 'number' && Number.isFinite(v) ? String(v) : 'n/a' }
export function fixed (v: unknown, digits: number): string {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : 'n/a'
}
export function ms (v: unknown): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return 'n/a'
  return Math.abs(v) >= 10 ? String(Math.round(v)) : String(Math.round(v * 10) / 10)
}

export interface TableRow {
  label: string
  sent: number, delivered: number, evicted: number, lost: number, duplicates: number, unexplained: number
  dropped: Record<string, number>
}

export function tableRows (r: SimulationResult): TableRow[] {
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

export function droppedTotal (d: Record<string, number>): number { return Object.values(d).reduce((a, b) => a + b, 0) }
export function droppedReasons (d: Record<string, number>): string {
  return Object.entries(d).filter(([, v]) => v !== 0).map(([k, v]) => `${k} ${v}`).join(', ')
}
export function droppedCell (d: Record<string, number>): string {
  const reasons = droppedReasons(d)
  return reasons === '' ? String(droppedTotal(d)) : `${droppedTotal(d)} (${reasons})`
}

/**
 * One line per source device group, the first starting `sources:`, e.g.
 *   sources: mqtt tasmota-1 (normal): 200 messages, 200 delivered
 *            modbus meter-1 (high): 80 polls, 80 delivered
 * (none without source devices). Columns other than delivered are named only when not 0.
 */
export function sourcesLines (r: SimulationResult): string[] {
  const rows = Array.isArray(r.sources) ? r.sources : []
  return rows.map((s, i) => {
    const who = `${String(s.transport)} ${String(s.devices)}${fin(s.count) > 1 ? ` ×${fin(s.count)}` : ''} (${String(s.priority)})`
    const what = `${fin(s.sent)} ${s.transport === 'modbus' ? 'polls' : 'messages'}, ${fin(s.delivered)} delivered`
    const more = ([['evicted', s.evicted], ['dropped at ingest', s.droppedAtIngest], ['lost before gateway', s.lostBeforeGateway], ['duplicates', s.duplicates], ['unexplained', s.unexplained]] as const)
      .filter(([, v]) => fin(v) !== 0).map(([k, v]) => `, ${fin(v)} ${k}`).join('')
    return `${i === 0 ? 'sources: ' : '         '}${who}: ${what}${more}`
  })
}

export function verdictLine (r: SimulationResult): string {
  if (r.verdict.ok) return 'verdict: OK — no unexplained loss, every critical event delivered'
  const reasons = r.verdict.reasons.length > 0 ? r.verdict.reasons.join('; ') : 'no reason given'
  return `verdict: FAILED — ${reasons}`
}
export function latencyLine (r: SimulationResult): string {
  return `latency p50 ${ms(r.latencyMs.p50)} ms, p99 ${ms(r.latencyMs.p99)} ms (${count(r.latencyMs.count)} events)`
}
export function wireLine (r: SimulationResult): string {
  return `wire: ${fixed(r.wire.bytesPerEvent, 1)} bytes/event (${count(r.wire.bytesUp)} bytes for ${count(r.wire.eventsDelivered)} events)`
}
