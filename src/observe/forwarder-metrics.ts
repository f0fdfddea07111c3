/**
 * Feeds the metrics registry from the forwarder's parts.
 *
 * Two kinds of input, both the same events that feed the logs:
 * - the counters ingest, store and uplink keep anyway (each counted where it is logged), read at
 *   collect time (a scrape, a heartbeat) and turned into registry values: no second count on the
 *   hot path to drift from the first;
 * - what exists only as a moment (a PUBACK's latency, a delivered event's lag, a failed connection
 *   attempt), observed when it happens through the uplink's observer.
 *
 * A forwarder may be replaced in the same process (a remote configuration update that needs a
 * restart). Its per-instance counters then start again from 0, yet a Prometheus counter must not
 * go down: counters advance by the difference from the previous collect of the same instance,
 * so they continue across the swap. The store's drop totals are persisted over the store's life
 * and so carry on by themselves; they are set, not added.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import { readEventTiming, type EventTiming } from '../proto/codec.js'
import type { Lease } from '../contracts.js'
import { DROP_REASONS, PRIORITIES, type PriorityName } from '../types.js'
import type { IngestCounterSnapshot } from '../ingest/counters.js'
import type { StoreStats } from '../store/index.js'
import type { UplinkObserver, UplinkStats } from '../uplink/session.js'
import { CONFIG_RESULTS, UPLINK_STATES, type MetricName } from './catalog.js'
import type { Labels, MetricsRegistry } from './metrics.js'

/** What a running forwarder shows the metrics. */
export interface MetricSources {
  ingest: () => IngestCounterSnapshot
  store: () => StoreStats
  oldestEventTimeMs: () => Promise<number | undefined>
  uplink: () => UplinkStats
  /** The client certificate's notAfter, Unix ms. */
  certExpiresAtMs: () => number
}

const EVENT_LOOP_WINDOW_MS = 60_000
const PRIORITY_LABELS: ReadonlyArray<Labels> = PRIORITIES.map((priority: PriorityName) => Object.freeze({ priority }))

export class ForwarderMetrics {
  private sources: MetricSources | undefined
  /** Per-instance counter values at the previous collect, keyed by name and labels. */
  private previous = new Map<string, number>()
  private readonly loop: IntervalHistogram
  private loopResetAt: number
  private readonly unregister: () => void
  /** Reused for every delivered event (readEventTiming allocates nothing with it). */
  private readonly timing: EventTiming = { priority: 0, timeMs: 0 }

  constructor (readonly registry: MetricsRegistry, version: string, private readonly now: () => number = Date.now) {
    registry.set('edgefwd_build_info', 1, { version })
    registry.set('edgefwd_process_start_time_seconds', Math.floor(now() - process.uptime() * 1000) / 1000)
    // Every bounded label value from the start, at 0: increase() cannot see a counter whose first
    // sample is already above 0 (the first eviction of a critical event would go unalerted).
    for (const labels of PRIORITY_LABELS) registry.inc('edgefwd_events_acked_total', labels, 0)
    for (const result of CONFIG_RESULTS) registry.inc('edgefwd_config_updates_total', { result }, 0)
    this.loop = monitorEventLoopDelay({ resolution: 10 })
    this.loop.enable()
    this.loopResetAt = now()
    this.unregister = registry.onCollect(async () => { await this.collect() })
  }

  /** The uplink's observer: PUBACK latency, delivery lag and deliveries by priority. */
  readonly uplinkObserver: UplinkObserver = {
    batchAcked: (lease: Lease, pubackMs: number) => { this.batchAcked(lease, pubackMs) },
  }

  /** Starts reading a (new) forwarder's counters. */
  attach (sources: MetricSources): void {
    this.sources = sources
    this.previous = new Map()
  }

  /** Stops reading them (the forwarder stopped); the values collected so far stay. */
  detach (sources: MetricSources): void {
    if (this.sources === sources) this.sources = undefined
  }

  close (): void {
    this.unregister()
    this.loop.disable()
  }

  private batchAcked (lease: Lease, pubackMs: number): void {
    const r = this.registry
    r.observe('edgefwd_puback_latency_seconds', pubackMs / 1000)
    const now = this.now()
    const acked = [0, 0, 0, 0]
    const timing = this.timing
    for (const bytes of lease.events) {
      const { priority, timeMs } = readEventTiming(bytes, timing)
      acked[priority] = (acked[priority] ?? 0) + 1
      r.observe('edgefwd_delivery_lag_seconds', Math.max(0, now - timeMs) / 1000, PRIORITY_LABELS[priority])
    }
    acked.forEach((count, p) => { if (count > 0) r.inc('edgefwd_events_acked_total', PRIORITY_LABELS[p], count) })
  }

  /** Brings every collected value up to date; run by the registry before each render. */
  async collect (): Promise<void> {
    this.collectProcess()
    const sources = this.sources
    if (sources === undefined) return
    this.collectIngest(sources.ingest())
    this.collectStore(sources.store())
    const oldest = await sources.oldestEventTimeMs()
    this.registry.set('edgefwd_store_oldest_event_age_seconds', oldest === undefined ? 0 : Math.max(0, this.now() - oldest) / 1000)
    this.collectUplink(sources.uplink())
    this.registry.set('edgefwd_tls_cert_expiry_timestamp_seconds', Math.floor(sources.certExpiresAtMs() / 1000))
  }

  /** Adds the increase of a per-instance cumulative count since the previous collect. */
  private advance (name: MetricName, value: number, labels?: Labels): void {
    const key = labels === undefined ? name : `${name}${JSON.stringify(labels)}`
    const before = this.previous.get(key) ?? 0
    this.previous.set(key, value)
    if (value > before) this.registry.inc(name, labels, value - before)
    else if (this.registry.get(name, labels) === undefined) this.registry.inc(name, labels, 0)
  }

  private collectIngest (i: IngestCounterSnapshot): void {
    for (const [reason, count] of Object.entries(i.rejected)) this.advance('edgefwd_frames_rejected_total', count, { reason })
    for (const [transport, c] of Object.entries(i.transports)) {
      this.advance('edgefwd_frames_received_total', c.frames, { transport })
      this.advance('edgefwd_ingest_bytes_total', c.bytes, { transport })
      this.advance('edgefwd_ingest_overload_drops_total', c.dropped.overloaded ?? 0, { transport })
      for (const [reason, count] of Object.entries(c.failures)) this.advance('edgefwd_ingest_source_failures_total', count, { transport, reason })
    }
    this.advance('edgefwd_events_accepted_total', i.events)
    this.advance('edgefwd_events_clock_skewed_total', i.clockSkewed)
  }

  private collectStore (s: StoreStats): void {
    const r = this.registry
    for (const p of s.perPriority) {
      const labels = { priority: p.priority }
      this.advance('edgefwd_events_stored_total', p.stored, labels)
      r.set('edgefwd_store_events', p.events, labels)
      r.set('edgefwd_store_bytes', p.bytes, labels)
    }
    const drops = new Map(s.drops.map(d => [`${d.priority}:${d.reason}`, d.count]))
    for (const priority of PRIORITIES) {
      for (const reason of DROP_REASONS) r.set('edgefwd_events_dropped_total', drops.get(`${priority}:${reason}`) ?? 0, { priority, reason })
      r.set('edgefwd_events_evicted_total', drops.get(`${priority}:evicted_for_space`) ?? 0, { priority })
      r.set('edgefwd_events_expired_total', drops.get(`${priority}:expired_ttl`) ?? 0, { priority })
    }
    r.set('edgefwd_store_used_bytes', s.usedBytes)
    r.set('edgefwd_store_capacity_bytes', s.capacityBytes)
    r.set('edgefwd_store_leased_events', s.leasedEvents)
    r.set('edgefwd_store_memory_mode', s.mode === 'memory' ? 1 : 0)
    r.set('edgefwd_store_memory_bytes', s.memoryBytes)
  }

  private collectUplink (u: UplinkStats): void {
    const r = this.registry
    for (const state of UPLINK_STATES) r.set('edgefwd_uplink_state', u.state === state ? 1 : 0, { state })
    this.advance('edgefwd_uplink_connects_total', u.connects)
    for (const [reason, count] of Object.entries(u.connectFailures)) this.advance('edgefwd_uplink_connect_failures_total', count, { reason })
    this.advance('edgefwd_uplink_disconnects_total', u.disconnects)
    for (const [reason, count] of Object.entries(u.deadLinks)) this.advance('edgefwd_uplink_dead_links_total', count, { reason })
    this.advance('edgefwd_uplink_ack_failures_total', u.ackFailures)
    r.set('edgefwd_uplink_backoff_seconds', u.backoffMs / 1000)
    r.set('edgefwd_uplink_in_flight_batches', u.inFlight)
    this.advance('edgefwd_batches_published_total', u.published)
    this.advance('edgefwd_batches_acked_total', u.acked)
    this.advance('edgefwd_batches_resent_total', u.nacked)
    this.advance('edgefwd_events_published_total', u.eventsPublished)
    this.advance('edgefwd_events_resent_total', u.eventsResent)
    this.advance('edgefwd_uplink_sent_bytes_total', u.bytesSent)
    r.set('edgefwd_uplink_budget_used_bytes', u.bytesToday)
    r.set('edgefwd_uplink_budget_exhausted', u.budgetExhausted ? 1 : 0)
    this.advance('edgefwd_uplink_rate_wait_seconds_total', u.rateWaitMs / 1000)
  }

  private collectProcess (): void {
    const r = this.registry
    const cpu = process.cpuUsage()
    r.set('edgefwd_process_cpu_seconds_total', (cpu.user + cpu.system) / 1e6)
    r.set('edgefwd_process_resident_memory_bytes', process.memoryUsage.rss())
    r.set('edgefwd_process_heap_used_bytes', process.memoryUsage().heapUsed)
    // The histogram is in ns; a window of about a minute, so a stall shows for a while, then ages out.
    if (this.loop.count > 0) {
      r.set('edgefwd_event_loop_delay_p99_seconds', this.loop.percentile(99) / 1e9)
      r.set('edgefwd_event_loop_delay_max_seconds', this.loop.max / 1e9)
    }
    if (this.now() - this.loopResetAt >= EVENT_LOOP_WINDOW_MS) {
      this.loop.reset()
      this.loopResetAt = this.now()
    }
  }
}
