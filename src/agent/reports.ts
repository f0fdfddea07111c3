/**
 * The gateway's state as an agent reads it: health with one line per problem and its runbook,
 * and the buffer. Every figure comes from the metrics registry right after a collect, the same
 * values `/metrics` and the heartbeat show at that moment (test/integration/mcp.test.ts checks),
 * plus the agent's own short history of them for rates (RateHistory).
 */
import type { Config } from '../config/index.js'
import type { Incident } from './incidents.js'
import type { HealthReport } from '../observe/http-server.js'
import { UPLINK_STATES, type MetricName } from '../observe/catalog.js'
import type { MetricsRegistry } from '../observe/metrics.js'
import { DROP_REASONS, PRIORITIES } from '../types.js'

const RUNBOOK = 'docs/operations.md#'
const DAY_S = 86_400
const CERT_WARN_DAYS = 30
const CERT_CRITICAL_DAYS = 7
const FILL_WARN = 0.9

export interface Problem {
  component: 'ingest' | 'store' | 'uplink' | 'tls' | 'config' | 'delivery'
  severity: 'critical' | 'warning'
  text: string
  /** Where to read what to do: a section of docs/operations.md. */
  runbook: string
}

export interface ComponentState { ok: boolean, detail: string }

export interface HealthReportData {
  gatewayId: string
  version: string
  atMs: number
  /** /readyz's answer: durable store and online (or offline within observe.metrics.readyOfflineGrace). */
  ready: boolean
  components: Record<'ingest' | 'store' | 'uplink' | 'tls' | 'config', ComponentState>
  problems: Problem[]
}

export interface PriorityBuffer { priority: string, events: number, bytes: number, ttlS: number | undefined }

export interface BufferReport {
  atMs: number
  capacityBytes: number
  usedBytes: number
  fill: number
  events: number
  /** `disk`, or `memory` while the store runs on its in-memory fallback. */
  mode: 'disk' | 'memory'
  priorities: PriorityBuffer[]
  oldestEventAgeS: number
  rates: {
    /** Seconds the rates are measured over (up to a minute; 0 before two samples). */
    overS: number
    acceptedPerS: number
    deliveredPerS: number
    /** Net change of the used bytes per second: positive while the buffer fills. */
    fillBytesPerS: number
  }
  /** At the current rates; 0 when full (evicting), undefined when not filling. */
  timeUntilFullS: number | undefined
  /** Dropped after acceptance, since the store was created, by reason and priority (non-zero only). */
  drops: Array<{ priority: string, reason: string, events: number }>
  /** Dropped since this process started, by reason. */
  dropsSinceStart: Record<string, number>
}

export interface GatewayFacts {
  config: Config
  version: string
  readiness: HealthReport
  listening: readonly string[]
  /** Incidents still going on. */
  openIncidents: readonly Incident[]
  nowMs: number
}

/** Totals a rate is measured from: the running forwarder's own counters (they restart with it). */
export interface RateSample { atMs: number, used: number, accepted: number, delivered: number }

/** The last minute of a few totals, one sample per agent tick, for rates. */
export class RateHistory {
  private readonly samples: RateSample[] = []

  constructor (private readonly spanMs = 60_000) {}

  push (s: RateSample): void {
    const last = this.samples[this.samples.length - 1]
    // A forwarder restarted (a remote configuration) counts from 0 again: start over.
    if (last !== undefined && (s.accepted < last.accepted || s.delivered < last.delivered)) this.samples.length = 0
    this.samples.push(s)
    while (this.samples.length > 2 && (this.samples[1] as RateSample).atMs <= s.atMs - this.spanMs) this.samples.shift()
  }

  rates (now: RateSample): BufferReport['rates'] {
    const first = this.samples[0]
    const overMs = first === undefined ? 0 : now.atMs - first.atMs
    if (first === undefined || overMs < 1000 || now.accepted < first.accepted) return { overS: 0, acceptedPerS: 0, deliveredPerS: 0, fillBytesPerS: 0 }
    const per = (a: number, b: number): number => Math.round((a - b) / (overMs / 1000) * 10) / 10
    return {
      overS: Math.round(overMs / 1000),
      acceptedPerS: per(now.accepted, first.accepted),
      deliveredPerS: per(now.delivered, first.delivered),
      fillBytesPerS: per(now.used, first.used),
    }
  }
}

function value (registry: MetricsRegistry, name: MetricName): number {
  return registry.get(name) ?? 0
}

/** Health of each part, one line per problem with its runbook. Call after registry.collect(). */
export function healthReport (registry: MetricsRegistry, facts: GatewayFacts): HealthReportData {
  const { config, readiness, nowMs } = facts
  const problems: Problem[] = []
  const problem = (component: Problem['component'], severity: Problem['severity'], text: string, anchor: string): void => {
    problems.push({ component, severity, text, runbook: RUNBOOK + anchor })
  }
  const open = (kind: Incident['kind']): Incident | undefined => facts.openIncidents.find(i => i.kind === kind)

  // ── uplink ──
  const state = UPLINK_STATES.find(s => registry.get('edgefwd_uplink_state', { state: s }) === 1) ?? 'idle'
  const uplinkCheck = readiness.checks.uplink
  const outage = open('outage')
  if (state !== 'online' && outage !== undefined) {
    const forS = Math.round((nowMs - outage.startMs) / 1000)
    const beyond = uplinkCheck?.ok === false
    problem('uplink', beyond ? 'critical' : 'warning', `not connected to the broker for ${forS} s (${state}${outage.codes.length > 0 ? `; seen: ${outage.codes.slice(0, 3).join(', ')}` : ''}); events wait in the store`, 'gateway-offline')
  }
  const refusal = open('broker_refusal')
  if (refusal !== undefined) problem('uplink', 'critical', `the broker refuses this gateway (${refusal.codes.join(', ')}): a certificate, ACL or client id problem, not the network`, 'broker-refusing')
  if (value(registry, 'edgefwd_uplink_budget_exhausted') === 1) problem('uplink', 'warning', 'the daily uplink budget is spent: only critical events are sent until the next UTC day', 'buffer-filling')

  // ── store ──
  const capacity = value(registry, 'edgefwd_store_capacity_bytes')
  const used = value(registry, 'edgefwd_store_used_bytes')
  const fill = capacity > 0 ? used / capacity : 0
  const memoryMode = value(registry, 'edgefwd_store_memory_mode') === 1
  const storeCheck = readiness.checks.store
  if (memoryMode) problem('store', 'critical', 'the store runs on its in-memory fallback (disk full or failing): new events are not durable', 'disk-full')
  else if (storeCheck !== undefined && !storeCheck.ok) problem('store', 'critical', `the store is not taking events: ${storeCheck.detail}`, 'restarts')
  if (fill >= FILL_WARN) problem('store', 'warning', `the buffer is ${Math.round(fill * 100)} % full: the oldest low-priority events are evicted next`, 'buffer-filling')
  const loss = open('data_loss')
  if (loss !== undefined) problem('store', 'warning', `events are being dropped after acceptance (${loss.codes.join(', ')}): ${loss.impact.eventsLost} since ${new Date(loss.startMs).toISOString()}, each counted and reported upstream`, 'buffer-filling')

  // ── TLS ──
  const expiry = registry.get('edgefwd_tls_cert_expiry_timestamp_seconds')
  const daysLeft = expiry === undefined ? undefined : Math.floor((expiry - nowMs / 1000) / DAY_S)
  if (daysLeft !== undefined && daysLeft < CERT_WARN_DAYS) {
    problem('tls', daysLeft < CERT_CRITICAL_DAYS ? 'critical' : 'warning', daysLeft < 0 ? `the client certificate expired ${-daysLeft} days ago` : `the client certificate expires in ${daysLeft} days`, 'certificate-expiring')
  }

  // ── ingest ──
  const rejected = open('rejected_input')
  if (rejected !== undefined) problem('ingest', 'warning', `a burst of rejected frames (${rejected.codes.join(', ')}): ${rejected.impact.framesRejected} so far`, 'malformed-input')
  if (facts.listening.length === 0) problem('ingest', 'warning', 'no ingest listener is configured: no device can send events', 'malformed-input')
  const inputs = open('input_failing')
  if (inputs !== undefined) problem('ingest', 'warning', `a local input cannot be read (${inputs.codes.join(', ')}) since ${new Date(inputs.startMs).toISOString()}: its devices' readings are not collected; it is retried with backoff`, 'local-input-failing')

  // ── delivery ──
  const lagP99 = registry.quantile('edgefwd_delivery_lag_seconds', 0.99)
  const lagObjectiveS = config.mcp.objectives.lagP99 / 1000
  if (lagP99 !== undefined && lagP99 > lagObjectiveS) problem('delivery', 'warning', `delivery lag p99 since start is ${round(lagP99)} s, above the objective of ${lagObjectiveS} s (mcp.objectives.lagP99)`, 'delivery-lag')

  // ── remote configuration ──
  const rollback = facts.openIncidents.find(i => i.kind === 'config_rollback')
  if (rollback !== undefined) problem('config', 'warning', 'a remote configuration update was rolled back', 'remote-config-rolled-back')

  const failing = (c: Problem['component']): boolean => problems.some(p => p.component === c && p.severity === 'critical')
  return {
    gatewayId: config.gateway.id,
    version: facts.version,
    atMs: nowMs,
    ready: readiness.ok,
    components: {
      ingest: { ok: !failing('ingest'), detail: facts.listening.length === 0 ? 'no listener' : `listening on ${facts.listening.join(', ')}; ${value(registry, 'edgefwd_events_accepted_total')} events accepted, ${registry.sum('edgefwd_frames_rejected_total')} frames rejected since start` },
      store: { ok: !failing('store'), detail: `${memoryMode ? 'in memory (disk full or failing)' : storeCheck?.detail ?? 'unknown'}; ${Math.round(fill * 1000) / 10} % of ${capacity} bytes used` },
      uplink: { ok: !failing('uplink'), detail: uplinkCheck?.detail ?? state },
      tls: { ok: !failing('tls'), detail: daysLeft === undefined ? 'not loaded' : `client certificate valid for ${daysLeft} more days` },
      config: { ok: true, detail: `remote configuration version ${value(registry, 'edgefwd_config_version')}${config.control.publicKeys.length === 0 ? ' (remote configuration off)' : ''}` },
    },
    problems,
  }
}

/** The buffer by priority, its age, rates and drops. Call after registry.collect(). */
export function bufferReport (registry: MetricsRegistry, config: Config, rates: BufferReport['rates'], dropBaseline: ReadonlyMap<string, number>, nowMs: number): BufferReport {
  const capacity = value(registry, 'edgefwd_store_capacity_bytes')
  const used = value(registry, 'edgefwd_store_used_bytes')
  const drops: BufferReport['drops'] = []
  const dropsSinceStart: Record<string, number> = {}
  for (const priority of PRIORITIES) {
    for (const reason of DROP_REASONS) {
      const events = registry.get('edgefwd_events_dropped_total', { priority, reason }) ?? 0
      if (events > 0) drops.push({ priority, reason, events })
      const since = events - (dropBaseline.get(`${priority}:${reason}`) ?? 0)
      if (since > 0) dropsSinceStart[reason] = (dropsSinceStart[reason] ?? 0) + since
    }
  }
  const fill = capacity > 0 ? used / capacity : 0
  const evicting = (dropsSinceStart.evicted_for_space ?? 0) > 0 && fill >= 0.95
  return {
    atMs: nowMs,
    capacityBytes: capacity,
    usedBytes: used,
    fill: Math.round(fill * 10_000) / 10_000,
    events: registry.sum('edgefwd_store_events'),
    mode: value(registry, 'edgefwd_store_memory_mode') === 1 ? 'memory' : 'disk',
    priorities: PRIORITIES.map(priority => {
      const ttl = config.store.ttl[priority]
      return { priority, events: registry.get('edgefwd_store_events', { priority }) ?? 0, bytes: registry.get('edgefwd_store_bytes', { priority }) ?? 0, ttlS: ttl === undefined ? undefined : ttl / 1000 }
    }),
    oldestEventAgeS: round(value(registry, 'edgefwd_store_oldest_event_age_seconds')),
    rates,
    timeUntilFullS: evicting ? 0 : rates.fillBytesPerS > 0 ? Math.round((capacity - used) / rates.fillBytesPerS) : undefined,
    drops,
    dropsSinceStart,
  }
}

/** The store's drop totals now, keyed priority:reason: the baseline of "since start". */
export function dropTotals (registry: MetricsRegistry): Map<string, number> {
  const out = new Map<string, number>()
  for (const s of registry.series('edgefwd_events_dropped_total')) out.set(`${s.labels.priority ?? ''}:${s.labels.reason ?? ''}`, s.value)
  return out
}

function round (n: number): number {
  return Math.round(n * 1000) / 1000
}
