/**
 * `npm run bench:metrics`: what observability costs the forwarder. Prints a table, then one JSON
 * line (the last line) with the figures.
 *
 *   inc_ns / inc_labelled_ns   a counter increment without / with one label (per frame on ingest)
 *   observe_ns                 one observation on the 15-bucket lag histogram
 *   acked_batch_us             the uplink observer on one acked batch of BENCH_BATCH (500) events:
 *                              each event's priority and time read from its bytes, lag observed
 *   acked_event_ns             the same per event
 *   acked_cpu_at_50k_pct       that cost as a share of one core at 50k delivered events/s
 *   collect_render_ms          a scrape's work: collect from the forwarder's counters (64
 *                              transports × reasons, 4 priorities × 6 drop reasons) and render
 *   exposition_bytes           the size of that /metrics answer
 *   scrape_p50_ms / p99        GET /metrics over loopback HTTP, 200 scrapes in a row
 *   rss_delta_mb               RSS after 200 scrapes minus RSS before the endpoint started (the
 *                              scrapes use node:http, whose client side is counted too)
 *
 * Environment: BENCH_BATCH (500), BENCH_ITERATIONS (2000000).
 */
import { get } from 'node:http'
import { performance } from 'node:perf_hooks'
import { REJECT_REASONS } from '../src/ingest/reasons.js'
import type { IngestCounterSnapshot } from '../src/ingest/counters.js'
import { ForwarderMetrics } from '../src/observe/forwarder-metrics.js'
import { startObserveServer } from '../src/observe/http-server.js'
import { createLogger } from '../src/observe/log.js'
import { MetricsRegistry } from '../src/observe/metrics.js'
import { encodeEvent } from '../src/proto/codec.js'
import type { Lease, StoreStats } from '../src/store/index.js'
import { DROP_REASONS, PRIORITIES, type Priority } from '../src/types.js'
import type { UplinkStats } from '../src/uplink/session.js'

const BATCH = Number(process.env.BENCH_BATCH ?? 500)
const N = Number(process.env.BENCH_ITERATIONS ?? 2_000_000)

function perOp (n: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(n, 100_000); i++) fn(i) // warm up
  const start = performance.now()
  for (let i = 0; i < n; i++) fn(i)
  return (performance.now() - start) * 1e6 / n
}

const registry = new MetricsRegistry()
const metrics = new ForwarderMetrics(registry, 'bench')
const labels = [{ reason: 'bad_crc' }, { reason: 'rate_limited' }] as const
const incNs = perOp(N, () => { registry.inc('edgefwd_events_accepted_total') })
const incLabelledNs = perOp(N, (i) => { registry.inc('edgefwd_frames_rejected_total', labels[i & 1]) })
const lag = [{ priority: 'low' }, { priority: 'critical' }] as const
const observeNs = perOp(N, (i) => { registry.observe('edgefwd_delivery_lag_seconds', (i % 1000) / 100, lag[i & 1]) })

const now = Date.now()
const events = Array.from({ length: BATCH }, (_, i) => encodeEvent({
  deviceId: `sensor-${i % 50}`, deviceSeq: i, deviceTimeMs: now - 1000, gatewayTimeMs: now - 900, priority: (i % 4) as Priority, stream: 'telemetry',
  value: { kind: 'numbers', numbers: { t: 21.5, rh: 40.1, p: 1013.25, v: 3.301 } }, tags: { site: 'plant7', line: '3' }
}, i + 1))
const lease: Lease = { id: 1, events, batch: new Uint8Array(), firstStoreSeq: 1, lastStoreSeq: BATCH, bytes: 0, report: undefined }
const batches = Math.max(1000, Math.floor(N / BATCH / 4))
const ackedBatchUs = perOp(batches, () => { metrics.uplinkObserver.batchAcked?.(lease, 12) }) / 1000

const ingest: IngestCounterSnapshot = {
  frames: 1e6, events: 1e6, hellos: 0, clockSkewed: 0,
  rejected: Object.fromEntries(REJECT_REASONS.map(r => [r, 7])) as IngestCounterSnapshot['rejected'],
  store: { appends: 0, durable: 0, notDurable: 0, refused: {}, failed: 0 },
  transports: Object.fromEntries(['udp', 'tcp', 'unix', 'serial', 'stdin'].map(n => [n, { frames: 1e5, bytes: 1e7, rejected: {}, dropped: { overloaded: 3 }, errors: 0, connections: 0, acks: 0, ackTimeouts: 0, failures: {} }])),
  devices: Object.fromEntries(Array.from({ length: 1024 }, (_, i) => [`dev-${i}`, { frames: 1, events: 1, bytes: 1, hellos: 0, rejected: {}, seqGaps: 0, lastSeq: 1, lastSeenMs: now }])),
  devicesForgotten: 0
}
const store: StoreStats = {
  state: 'open', mode: 'disk', capacityBytes: 256 << 20, usedBytes: 1 << 20, events: 5000,
  perPriority: PRIORITIES.map(priority => ({ priority, events: 1000, bytes: 1 << 18, leased: 0, stored: 1e5 })),
  leases: 0, leasedEvents: 0, memoryBytes: 0, pendingAppends: 0, pendingReports: 0, nextSeq: 1, repairedAtOpen: false,
  drops: PRIORITIES.flatMap(priority => DROP_REASONS.map(reason => ({ priority, reason, count: 3, bytes: 300 })))
}
const uplink: UplinkStats = {
  state: 'online', connects: 3, disconnects: 2, deadLinks: { puback_timeout: 0, keepalive: 0 }, ackFailures: 0, published: 1e4, acked: 1e4, nacked: 4, eventsAcked: 5e6, eventsPublished: 5e6, eventsResent: 2000,
  bytesSent: 1e9, inFlight: 3, lastError: undefined, connectFailures: { connect: 5, refused_135: 1 }, backoffMs: 0, offlineSinceMs: undefined, lastOutage: undefined,
  bytesToday: 1e8, budgetExhausted: false, rateWaits: 0, rateWaitMs: 0
}
metrics.attach({ ingest: () => ingest, store: () => store, uplink: () => uplink, oldestEventTimeMs: async () => now - 5000, certExpiresAtMs: () => now + 300 * 86_400_000 })
let text = ''
const renders = 300
const renderStart = performance.now()
for (let i = 0; i < renders; i++) text = await registry.render()
const collectRenderMs = (performance.now() - renderStart) / renders

const rssBefore = process.memoryUsage.rss()
const logger = createLogger({ level: 'silent' })
const health = (): { ok: boolean, checks: Record<string, { ok: boolean, detail: string }> } => ({ ok: true, checks: {} })
const server = await startObserveServer({ host: '127.0.0.1', port: 0, registry, logger, health, ready: health })
const times: number[] = []
for (let i = 0; i < 200; i++) {
  const start = performance.now()
  await scrape(`http://${server.address}/metrics`)
  times.push(performance.now() - start)
}
times.sort((a, b) => a - b)
const rssDeltaMb = (process.memoryUsage.rss() - rssBefore) / 2 ** 20
await server.close()
metrics.close()

const figures = {
  inc_ns: round(incNs, 1),
  inc_labelled_ns: round(incLabelledNs, 1),
  observe_ns: round(observeNs, 1),
  acked_batch_us: round(ackedBatchUs, 1),
  acked_event_ns: round(ackedBatchUs * 1000 / BATCH, 1),
  acked_cpu_at_50k_pct: round(ackedBatchUs * 1000 / BATCH * 50_000 / 1e9 * 100, 2),
  collect_render_ms: round(collectRenderMs, 2),
  exposition_bytes: Buffer.byteLength(text),
  scrape_p50_ms: round(times[Math.floor(times.length / 2)] ?? 0, 2),
  scrape_p99_ms: round(times[Math.floor(times.length * 0.99)] ?? 0, 2),
  rss_delta_mb: round(rssDeltaMb, 1),
}
for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(24)} ${v}`)
console.log(JSON.stringify(figures))

/** node:http rather than fetch: undici would add its own ~20 MB to the RSS figure. */
async function scrape (url: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    get(url, res => { res.resume(); res.on('end', resolve) }).on('error', reject)
  })
}

function round (x: number, digits: number): number {
  return Math.round(x * 10 ** digits) / 10 ** digits
}
