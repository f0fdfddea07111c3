/** The text `edgefwd status` prints: one headline, then a labelled line per area (status.ts gathers the figures). */
import { PRIORITIES } from '../types.js'

export type Checks = Record<string, { ok: boolean, detail: string }>
export type Counts = Record<string, number>

/** What `--json` prints; the text summary is made from the same object. */
export interface ForwarderStatus {
  url: string
  version: string
  ready: boolean
  checks: Checks
  uplink: { state: string, connects: number, connectFailures: number, connectFailuresByReason: Counts, disconnects: number, backoffSeconds: number, inFlightBatches: number }
  buffer: { usedBytes: number, capacityBytes: number, events: number, eventsByPriority: Counts, oldestEventAgeSeconds: number, memoryMode: boolean, memoryBytes: number }
  delivered: { events: number, batches: number, batchesResent: number, pubackP99Seconds: number | null, lagP99Seconds: number | null }
  lost: { evicted: number, evictedByPriority: Counts, expired: number, expiredByPriority: Counts, other: number, otherByReason: Counts }
  /** sourceFailuresBySource: the local broker and Modbus inputs' failures by `transport:reason` (mqtt:connect). */
  ingest: { frames: number, accepted: number, rejected: number, rejectedByReason: Counts, overloadDrops: number, sourceFailures: number, sourceFailuresBySource: Counts }
  /** null when the endpoint shows no certificate expiry (TLS material not loaded yet). */
  tls: { certDaysLeft: number | null }
  config: { version: number, updates: number, updatesByResult: Counts }
  process: { residentMemoryBytes: number, cpuSeconds: number, eventLoopP99Seconds: number, uptimeSeconds: number | null }
}


export function formatStatus (s: ForwarderStatus): string {
  const failing = Object.entries(s.checks).filter(([, c]) => !c.ok)
  const passing = Object.entries(s.checks).filter(([, c]) => c.ok).map(([name, c]) => `${name} ${c.detail}`)
  const head = s.ready
    ? `edgefwd ${s.version} — ready${passing.length > 0 ? ` (${passing.join(', ')})` : ''}`
    : `edgefwd ${s.version} — NOT READY`
  const { uplink: u, buffer: b, delivered: d, lost: l, ingest: i, process: p } = s
  const rows: Array<[string, string]> = [
    ...failing.map(([name, c]): [string, string] => ['failing', `${name}: ${c.detail}`]),
    ['uplink', `${u.state}; ${num(u.connects)} connects, ${num(u.connectFailures)} failures${breakdown(u.connectFailuresByReason)}, ` +
      `${num(u.disconnects)} disconnects; backoff ${seconds(u.backoffSeconds)}; ${num(u.inFlightBatches)} batches in flight`],
    ['buffer', `${bytes(b.usedBytes)} of ${bytes(b.capacityBytes)}${b.capacityBytes > 0 ? ` (${percent(b.usedBytes / b.capacityBytes)})` : ''}, ` +
      `${num(b.events)} events; oldest ${duration(b.oldestEventAgeSeconds)}`],
    ['', PRIORITIES.map(pr => `${pr} ${num(b.eventsByPriority[pr] ?? 0)}`).join(' · ')],
    ...(b.memoryMode ? [['', `IN MEMORY: the disk is full or failing; ${bytes(b.memoryBytes)} held in memory only`] as [string, string]] : []),
    ['delivered', `${num(d.events)} events in ${num(d.batches)} batches; ${num(d.batchesResent)} batches resent; ` +
      `PUBACK p99 ${d.pubackP99Seconds === null ? 'n/a' : seconds(d.pubackP99Seconds)}; lag p99 ${d.lagP99Seconds === null ? 'n/a' : seconds(d.lagP99Seconds)}`],
    ['lost', `evicted ${num(l.evicted)}${breakdown(l.evictedByPriority)} · expired ${num(l.expired)}${breakdown(l.expiredByPriority)} · other ${num(l.other)}${breakdown(l.otherByReason)}`],
    ['ingest', `${num(i.frames)} frames, ${num(i.accepted)} events accepted; rejected ${num(i.rejected)}${breakdown(i.rejectedByReason)}; overload drops ${num(i.overloadDrops)}` +
      (i.sourceFailures > 0 ? `; input failures ${num(i.sourceFailures)}${breakdown(i.sourceFailuresBySource)}` : '')],
    ['tls', s.tls.certDaysLeft === null
      ? 'client certificate not loaded'
      : s.tls.certDaysLeft >= 0
        ? `client certificate expires in ${num(s.tls.certDaysLeft)} days`
        : `client certificate EXPIRED ${num(-s.tls.certDaysLeft)} days ago`],
    ['config', `${s.config.version > 0 ? `remote version ${num(s.config.version)}` : 'local file only'}; ${num(s.config.updates)} remote updates${breakdown(s.config.updatesByResult)}`],
    ['process', `RSS ${bytes(p.residentMemoryBytes)}, CPU ${seconds(p.cpuSeconds)}, event loop p99 ${num(round(p.eventLoopP99Seconds * 1000))} ms, ` +
      `up ${p.uptimeSeconds === null ? '?' : duration(p.uptimeSeconds)}`],
  ]
  return `${head}\n${rows.map(([label, text]) => `${label.padEnd(12)}${text}`.trimEnd()).join('\n')}\n`
}

/** "a: 2, b: 1" for the non-zero entries, largest first; "" when there are none. */
function list (counts: Counts): string {
  return Object.entries(counts).filter(([, n]) => n !== 0)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([k, n]) => `${k}: ${num(n)}`).join(', ')
}

/** " (a: 2, b: 1)", or "" when every count is zero. */
function breakdown (counts: Counts): string {
  const text = list(counts)
  return text === '' ? '' : ` (${text})`
}

/** Exact figures with the thousands grouped by a space: 10 234. */
function num (n: number): string {
  if (!Number.isFinite(n)) return String(n)
  const [whole = '', fraction] = String(Math.abs(n)).split('.')
  const grouped = whole.replace(/\B(?=(\d{3})+$)/g, ' ')
  return `${n < 0 ? '-' : ''}${grouped}${fraction === undefined ? '' : `.${fraction}`}`
}

function round (n: number, digits = 1): number {
  return Number(n.toFixed(digits))
}

function seconds (n: number): string {
  return `${Math.abs(n) >= 1 || n === 0 ? num(round(n, 1)) : Number(n.toPrecision(2))} s`
}

function percent (ratio: number): string {
  return `${round(ratio * 100)}%`
}

function bytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = n
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < units.length - 1) { value /= 1024; unit++ }
  return `${unit === 0 ? num(value) : round(value)} ${units[unit] as string}`
}

function duration (totalSeconds: number): string {
  const s = Math.round(totalSeconds)
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
  return `${num(Math.floor(s / 86_400))} d ${Math.floor((s % 86_400) / 3600)} h`
}
