/**
 * The heartbeat's content, read from the metrics registry right after a collect, so every counter
 * in a heartbeat equals the `/metrics` value of the same moment (test/integration/observe.test.ts).
 *
 * The SLIs (docs/operations.md "Heartbeat"):
 * - delivery success ratio = delivered / (delivered + lost), 1 when both are 0;
 * - loss ratio = lost / accepted at ingest, at most 1 (0 when nothing was accepted);
 * where "lost" is every event dropped after it was accepted (evicted, expired, refused by a full
 * store or memory queue). Both since the process started and over the last interval (since the
 * previous heartbeat). The store's drop totals are lifetime figures, so "since start" subtracts
 * the totals found when the builder started.
 */
import type { DropCountData, HeartbeatData } from '../proto/codec.js'
import { AUTH_REFUSAL_CODES, UPLINK_STATES, type MetricName } from './catalog.js'
import type { MetricsRegistry } from './metrics.js'

const AUTH_REASONS = new Set<string>([...AUTH_REFUSAL_CODES.map(c => `refused_${c}`), 'tls_rejected'])

interface Totals { delivered: number, lost: number, accepted: number, atMs: number }

export interface HeartbeatInput {
  gatewayId: string
  version: string
  startedMs: number
  /** Cumulative drops with their bytes (the store's record; counts equal the metrics'). */
  drops: DropCountData[]
}

export class HeartbeatBuilder {
  private baseline: Totals | undefined
  private previous: Totals | undefined

  constructor (private readonly registry: MetricsRegistry, private readonly now: () => number = Date.now) {}

  /** Records the starting totals; call once the forwarder's counters are attached. */
  async start (): Promise<void> {
    await this.registry.collect()
    this.baseline = this.totals()
    this.previous = this.baseline
  }

  async build (input: HeartbeatInput): Promise<HeartbeatData> {
    await this.registry.collect()
    const r = this.registry
    const now = this.totals()
    const base = this.baseline ?? { delivered: 0, lost: 0, accepted: 0, atMs: input.startedMs }
    const prev = this.previous ?? base
    this.previous = now
    const value = (name: MetricName): number => r.get(name) ?? 0
    const used = value('edgefwd_store_used_bytes')
    const capacity = value('edgefwd_store_capacity_bytes')
    const failures = r.series('edgefwd_uplink_connect_failures_total')
    return {
      gatewayId: input.gatewayId,
      version: input.version,
      uptimeS: Math.floor((now.atMs - input.startedMs) / 1000),
      timeMs: now.atMs,
      intervalS: Math.round((now.atMs - prev.atMs) / 1000),
      bufferedEvents: r.sum('edgefwd_store_events'),
      bufferedBytes: used,
      capacityBytes: capacity,
      bufferFill: capacity > 0 ? used / capacity : 0,
      oldestBufferedAgeMs: Math.round(value('edgefwd_store_oldest_event_age_seconds') * 1000),
      framesReceived: r.sum('edgefwd_frames_received_total'),
      framesRejected: r.sum('edgefwd_frames_rejected_total'),
      eventsReceived: value('edgefwd_events_accepted_total'),
      eventsDelivered: now.delivered,
      eventsPublished: value('edgefwd_events_published_total'),
      eventsResent: value('edgefwd_events_resent_total'),
      eventsEvicted: r.sum('edgefwd_events_evicted_total') + r.sum('edgefwd_events_expired_total'),
      eventsDropped: now.lost,
      deliverySuccessRatio: successRatio(now.delivered - base.delivered, now.lost - base.lost),
      deliverySuccessRatioInterval: successRatio(now.delivered - prev.delivered, now.lost - prev.lost),
      lossRatio: lossRatio(now.lost - base.lost, now.accepted - base.accepted),
      lossRatioInterval: lossRatio(now.lost - prev.lost, now.accepted - prev.accepted),
      pubackLatencyP99S: r.quantile('edgefwd_puback_latency_seconds', 0.99) ?? 0,
      deliveryLagP99S: r.quantile('edgefwd_delivery_lag_seconds', 0.99) ?? 0,
      uplinkConnects: value('edgefwd_uplink_connects_total'),
      connectFailures: failures.reduce((n, s) => n + s.value, 0),
      authFailures: failures.filter(s => AUTH_REASONS.has(s.labels.reason ?? '')).reduce((n, s) => n + s.value, 0),
      linkState: UPLINK_STATES.find(state => r.get('edgefwd_uplink_state', { state }) === 1) ?? 'idle',
      diskDegraded: value('edgefwd_store_memory_mode') === 1,
      certDaysLeft: certDaysLeft(r.get('edgefwd_tls_cert_expiry_timestamp_seconds'), now.atMs),
      rssBytes: value('edgefwd_process_resident_memory_bytes'),
      cpuSeconds: value('edgefwd_process_cpu_seconds_total'),
      eventLoopDelayP99S: value('edgefwd_event_loop_delay_p99_seconds'),
      configVersion: value('edgefwd_config_version'),
      drops: input.drops
    }
  }

  private totals (): Totals {
    const r = this.registry
    return {
      delivered: r.sum('edgefwd_events_acked_total'),
      lost: r.sum('edgefwd_events_dropped_total'),
      accepted: r.get('edgefwd_events_accepted_total') ?? 0,
      atMs: this.now()
    }
  }
}

/** Whole days left, as the TLS loader counts them (negative once expired; 0 when unknown). */
function certDaysLeft (expirySeconds: number | undefined, nowMs: number): number {
  return expirySeconds === undefined ? 0 : Math.floor((expirySeconds * 1000 - nowMs) / 86_400_000)
}

function successRatio (delivered: number, lost: number): number {
  return delivered + lost === 0 ? 1 : delivered / (delivered + lost)
}

function lossRatio (lost: number, accepted: number): number {
  return accepted <= 0 ? (lost > 0 ? 1 : 0) : Math.min(1, lost / accepted)
}

/** The heartbeat as JSON (uplink.heartbeatFormat: json): the same fields, camelCase. */
export function heartbeatJson (h: HeartbeatData): string {
  return JSON.stringify(h)
}
