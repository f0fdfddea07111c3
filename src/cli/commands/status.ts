/** `edgefwd status [--url URL | --config FILE] [--json]`: a running forwarder's state, from its metrics endpoint. */
import { EdgefwdError } from '../../errors.js'
import { bucketQuantile, parseExposition, type CumulativeBucket, type Sample } from '../../observe/exposition.js'
import { defineCommand } from '../command.js'
import { ExitCode } from '../exit-codes.js'
import { formatStatus, type Checks, type Counts, type ForwarderStatus } from '../status-format.js'

const DEFAULT_URL = 'http://127.0.0.1:9464'
const FETCH_TIMEOUT_MS = 3000
const UNREACHABLE_HINT = 'is edgefwd running with observe.metrics.enabled? Point at its endpoint with --url URL or --config FILE (observe.metrics.listen)'

export const statusCommand = defineCommand({
  name: ['status'],
  summary: 'Show what a running forwarder is doing: uplink, buffer, deliveries, losses',
  description: [
    'Reads /metrics and /readyz of a running forwarder (--url, default http://127.0.0.1:9464, or',
    'the observe.metrics.listen address of --config FILE) and prints a summary: uplink state and',
    'failures, buffer use by priority, deliveries with PUBACK and lag p99, events lost by reason,',
    'ingest rejections, certificate expiry, remote configuration and process figures.',
    '--json prints the same figures as one JSON object.',
    '',
    'Exit 0 when the forwarder is ready; 1 when it answers not ready (the failing checks are',
    'printed), and 1 with EDGEFWD_ERR_STATUS_UNREACHABLE when nothing answers within 3 s or the',
    'answer is not edgefwd metrics.',
  ].join('\n'),
  options: {
    url: { type: 'string', valueName: 'URL', description: `the metrics endpoint (default ${DEFAULT_URL})` },
    config: { type: 'string', short: 'c', valueName: 'FILE', description: 'take the endpoint from observe.metrics.listen in FILE' },
    json: { type: 'boolean', description: 'print one JSON object instead of the summary' },
  },
  positionals: [],
  async run ({ values }, { env, io }) {
    if (values.url !== undefined && values.config !== undefined) {
      throw new EdgefwdError('EDGEFWD_ERR_USAGE', 'status: give --url or --config, not both (see edgefwd status --help)')
    }
    const base = values.config !== undefined ? await endpointFromConfig(values.config, env) : parseBaseUrl(values.url ?? DEFAULT_URL)
    const [metrics, ready] = await Promise.all([readMetrics(base), readReadiness(base)])
    const status = summarize(metrics, ready, Date.now() / 1000)
    io.stdout.write(values.json === true ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status))
    return status.ready ? ExitCode.ok : ExitCode.failure
  },
})

interface Metrics { url: string, samples: Sample[] }

// ── reading the endpoint ──

async function endpointFromConfig (file: string, env: Readonly<Record<string, string | undefined>>): Promise<URL> {
  const { loadConfig } = await import('../../config/index.js')
  const config: unknown = await loadConfig({ file, env })
  // Read defensively: observe.metrics may be absent from an older configuration schema.
  const metrics = (config as { observe?: { metrics?: { enabled?: unknown, listen?: unknown } } }).observe?.metrics
  if (metrics?.enabled === false) {
    throw new EdgefwdError('EDGEFWD_ERR_STATUS_UNREACHABLE', `${file} disables the metrics endpoint (observe.metrics.enabled: false)`,
      { hint: 'set observe.metrics.enabled: true and restart edgefwd' })
  }
  if (typeof metrics?.listen !== 'string') return parseBaseUrl(DEFAULT_URL)
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(metrics.listen)
  if (m === null) throw new EdgefwdError('EDGEFWD_ERR_USAGE', `${file}: observe.metrics.listen "${metrics.listen}" is not HOST:PORT`)
  // A wildcard bind is reached on loopback.
  const host = m[1] === '0.0.0.0' ? '127.0.0.1' : m[1] === '[::]' ? '[::1]' : m[1] as string
  return parseBaseUrl(`http://${host}:${m[2] as string}`)
}

function parseBaseUrl (text: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new EdgefwdError('EDGEFWD_ERR_USAGE', `status: --url "${text}" is not a URL, e.g. http://127.0.0.1:9464 (see edgefwd status --help)`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new EdgefwdError('EDGEFWD_ERR_USAGE', `status: --url must be http:// or https://, got "${text}" (see edgefwd status --help)`)
  }
  // "http://host/prefix" reads "http://host/prefix/metrics" (an endpoint behind a reverse proxy).
  if (!url.pathname.endsWith('/')) url.pathname += '/'
  return url
}

async function get (base: URL, path: string): Promise<{ url: string, status: number, body: string }> {
  const url = new URL(path, base).href
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error' })
    return { url, status: res.status, body: await res.text() }
  } catch (err) {
    throw unreachable(`cannot read ${url}: ${describeFetchError(err)}`, err)
  }
}

async function readMetrics (base: URL): Promise<Metrics> {
  const { url, status, body } = await get(base, 'metrics')
  if (status !== 200) throw unreachable(`${url} answered HTTP ${status}, not metrics`)
  let samples: Sample[]
  try {
    samples = parseExposition(body)
  } catch (err) {
    throw unreachable(`${url} did not answer with Prometheus metrics (${(err as Error).message})`, err)
  }
  if (!samples.some(s => s.name.startsWith('edgefwd_'))) throw unreachable(`${url} answered with metrics, but none of edgefwd's`)
  return { url, samples }
}

async function readReadiness (base: URL): Promise<{ ok: boolean, checks: Checks }> {
  const { url, status, body } = await get(base, 'readyz')
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    parsed = undefined
  }
  const report = parsed as { status?: unknown, checks?: unknown } | undefined
  if ((status !== 200 && status !== 503) || typeof report?.status !== 'string' || typeof report.checks !== 'object' || report.checks === null) {
    throw unreachable(`${url} answered HTTP ${status} without an edgefwd readiness report`)
  }
  return { ok: status === 200 && report.status === 'ok', checks: report.checks as Checks }
}

function unreachable (message: string, cause?: unknown): EdgefwdError {
  return new EdgefwdError('EDGEFWD_ERR_STATUS_UNREACHABLE', message, { cause, hint: UNREACHABLE_HINT })
}

function describeFetchError (err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return `no answer within ${FETCH_TIMEOUT_MS / 1000} s`
  const cause = err instanceof Error ? err.cause as NodeJS.ErrnoException | undefined : undefined
  if (cause?.code === 'ECONNREFUSED') return 'connection refused (nothing listens there)'
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err))
}

// ── figures from the samples ──

function summarize ({ url, samples }: Metrics, ready: { ok: boolean, checks: Checks }, nowSeconds: number): ForwarderStatus {
  const total = (name: string, where: Record<string, string> = {}): number =>
    samples.reduce((sum, s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v) ? sum + s.value : sum, 0)
  const by = (name: string, label: string, skip: readonly string[] = []): Counts => {
    const counts: Counts = {}
    for (const s of samples) {
      const key = s.labels[label]
      if (s.name === name && key !== undefined && !skip.includes(key)) counts[key] = (counts[key] ?? 0) + s.value
    }
    return counts
  }
  const p99 = (name: string): number | null => histogramP99(samples, name) ?? null
  const started = total('edgefwd_process_start_time_seconds')
  const failuresByReason = by('edgefwd_uplink_connect_failures_total', 'reason')
  const otherByReason = by('edgefwd_events_dropped_total', 'reason', ['evicted_for_space', 'expired_ttl'])
  const rejectedByReason = by('edgefwd_frames_rejected_total', 'reason')
  const updatesByResult = by('edgefwd_config_updates_total', 'result')
  const sourceFailuresBySource: Counts = {}
  for (const x of samples) {
    if (x.name === 'edgefwd_ingest_source_failures_total') {
      const key = `${x.labels.transport ?? '?'}:${x.labels.reason ?? '?'}`
      sourceFailuresBySource[key] = (sourceFailuresBySource[key] ?? 0) + x.value
    }
  }
  return {
    url,
    version: samples.find(s => s.name === 'edgefwd_build_info' && s.value === 1)?.labels.version ?? 'unknown',
    ready: ready.ok,
    checks: ready.checks,
    uplink: {
      state: samples.find(s => s.name === 'edgefwd_uplink_state' && s.value === 1)?.labels.state ?? 'unknown',
      connects: total('edgefwd_uplink_connects_total'),
      connectFailures: sum(failuresByReason),
      connectFailuresByReason: failuresByReason,
      disconnects: total('edgefwd_uplink_disconnects_total'),
      backoffSeconds: total('edgefwd_uplink_backoff_seconds'),
      inFlightBatches: total('edgefwd_uplink_in_flight_batches'),
    },
    buffer: {
      usedBytes: total('edgefwd_store_used_bytes'),
      capacityBytes: total('edgefwd_store_capacity_bytes'),
      events: total('edgefwd_store_events'),
      eventsByPriority: by('edgefwd_store_events', 'priority'),
      oldestEventAgeSeconds: total('edgefwd_store_oldest_event_age_seconds'),
      memoryMode: total('edgefwd_store_memory_mode') === 1,
      memoryBytes: total('edgefwd_store_memory_bytes'),
    },
    delivered: {
      events: total('edgefwd_events_acked_total'),
      batches: total('edgefwd_batches_acked_total'),
      batchesResent: total('edgefwd_batches_resent_total'),
      pubackP99Seconds: p99('edgefwd_puback_latency_seconds'),
      lagP99Seconds: p99('edgefwd_delivery_lag_seconds'),
    },
    lost: {
      evicted: total('edgefwd_events_evicted_total'),
      evictedByPriority: by('edgefwd_events_evicted_total', 'priority'),
      expired: total('edgefwd_events_expired_total'),
      expiredByPriority: by('edgefwd_events_expired_total', 'priority'),
      other: sum(otherByReason),
      otherByReason,
    },
    ingest: {
      frames: total('edgefwd_frames_received_total'),
      accepted: total('edgefwd_events_accepted_total'),
      rejected: sum(rejectedByReason),
      rejectedByReason,
      overloadDrops: total('edgefwd_ingest_overload_drops_total'),
      sourceFailures: sum(sourceFailuresBySource),
      sourceFailuresBySource,
    },
    tls: { certDaysLeft: samples.some(x => x.name === 'edgefwd_tls_cert_expiry_timestamp_seconds') ? Math.floor((total('edgefwd_tls_cert_expiry_timestamp_seconds') - nowSeconds) / 86_400) : null },
    config: { version: total('edgefwd_config_version'), updates: sum(updatesByResult), updatesByResult },
    process: {
      residentMemoryBytes: total('edgefwd_process_resident_memory_bytes'),
      cpuSeconds: total('edgefwd_process_cpu_seconds_total'),
      eventLoopP99Seconds: total('edgefwd_event_loop_delay_p99_seconds'),
      uptimeSeconds: started > 0 ? Math.max(0, Math.round(nowSeconds - started)) : null,
    },
  }
}

/** p99 of a histogram from its `_bucket` samples, every label set merged (as sum by (le) in PromQL). */
function histogramP99 (samples: readonly Sample[], name: string): number | undefined {
  const byLe = new Map<number, number>()
  for (const s of samples) {
    const le = s.labels.le
    if (s.name !== `${name}_bucket` || le === undefined) continue
    const bound = le === '+Inf' ? Infinity : Number(le)
    byLe.set(bound, (byLe.get(bound) ?? 0) + s.value)
  }
  const buckets: CumulativeBucket[] = [...byLe].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le)
  if (buckets.at(-1)?.le !== Infinity) return undefined
  const q = bucketQuantile(0.99, buckets)
  return q === undefined || Number.isNaN(q) ? undefined : q
}

function sum (counts: Counts): number {
  return Object.values(counts).reduce((a, b) => a + b, 0)
}
