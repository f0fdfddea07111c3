/**
 * Every metric edgefwd exports: its name, type, help text and label names. This list is the
 * contract that `/metrics`, the heartbeat, docs/operations.md, the Prometheus rules and the
 * Grafana dashboard all refer to (test/unit/deploy-assets.test.ts checks the last three).
 *
 * Naming follows Prometheus conventions: `edgefwd_` prefix, base units (`_seconds`, `_bytes`),
 * `_total` on counters. Labels are bounded sets fixed in code (priority, reason, transport,
 * state, result); never a device id: a gateway may see thousands of devices, and a series per
 * device would grow the scrape without bound.
 */
import { DEAD_LINK_REASONS, DROP_REASONS, PRIORITIES } from '../types.js'
import { REJECT_REASONS, SOURCE_FAILURES, TRANSPORT_NAMES } from '../ingest/reasons.js'

export type MetricType = 'counter' | 'gauge' | 'histogram'

export interface MetricSpec {
  name: string
  type: MetricType
  help: string
  labels: readonly string[]
  /** Histograms only: upper bounds in the metric's unit, ascending. */
  buckets?: readonly number[]
}

/** PUBACK latency: loopback is ~1 ms, a cellular link ~0.1–2 s; beyond 10 s the link is treated as dead. */
export const PUBACK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const
/** Device time → broker ack: milliseconds when online, hours or days after an outage. */
export const LAG_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21_600, 86_400] as const

/** Uplink connection failure reasons: `refused_<MQTT reason code>`, `tls_<problem>`, or `connect` (network, timeout). */
export const UPLINK_STATES = ['idle', 'connecting', 'online', 'backoff', 'closing', 'closed'] as const
/** MQTT CONNACK codes that mean "your credentials were refused" (3.1.1: 4, 5; MQTT 5: 0x86, 0x87, 0x8C). */
export const AUTH_REFUSAL_CODES = [4, 5, 134, 135, 140] as const

/** Outcomes of a remote configuration update (src/control), the `result` label and the ack status. */
export const CONFIG_RESULTS = ['applied', 'bad_signature', 'old_version', 'invalid', 'restart_required', 'rolled_back'] as const
export type ConfigResult = typeof CONFIG_RESULTS[number]

/** The `tool` and `outcome` labels of edgefwd_mcp_calls_total (src/agent/audit.ts). */
export const AUDIT_TOOLS = ['get_gateway_health', 'get_buffer_report', 'get_incident_context', 'get_slo_report', 'list_remediation_actions', 'execute_remediation', 'unknown', 'jsonrpc'] as const
export const AUDIT_OUTCOMES = ['ok', 'dry_run', 'error', 'refused', 'invalid'] as const
export type AuditOutcome = typeof AUDIT_OUTCOMES[number]

const m = (name: string, type: MetricType, help: string, labels: readonly string[] = [], buckets?: readonly number[]): MetricSpec =>
  buckets === undefined ? { name, type, help, labels } : { name, type, help, labels, buckets }

export const METRICS = [
  // ── ingest ──
  m('edgefwd_frames_received_total', 'counter', 'Frames read by an ingest transport, valid or not.', ['transport']),
  m('edgefwd_frames_rejected_total', 'counter', 'Frames refused at ingest, by reason (firmware-bridge/PROTOCOL.md section 7).', ['reason']),
  m('edgefwd_ingest_bytes_total', 'counter', 'Bytes read by an ingest transport.', ['transport']),
  m('edgefwd_ingest_overload_drops_total', 'counter', 'Frames a transport dropped before validation because the store was not keeping up.', ['transport']),
  m('edgefwd_ingest_source_failures_total', 'counter', 'Failures of an ingest source (MQTT, Modbus) to read its broker or devices, by reason.', ['transport', 'reason']),
  m('edgefwd_events_accepted_total', 'counter', 'Events that passed every ingest check and were handed to the store.'),
  m('edgefwd_events_clock_skewed_total', 'counter', 'Accepted events whose device time was further from the gateway clock than ingest.maxClockSkew.'),
  // ── store ──
  m('edgefwd_events_stored_total', 'counter', 'Events written to the store (durably, or in memory while the disk is full).', ['priority']),
  m('edgefwd_events_dropped_total', 'counter', 'Events lost after acceptance, by priority and reason (every reason; evicted and expired included). Cumulative over the store\'s life.', ['priority', 'reason']),
  m('edgefwd_events_evicted_total', 'counter', 'Events evicted to make room (reason evicted_for_space), by priority. Cumulative over the store\'s life.', ['priority']),
  m('edgefwd_events_expired_total', 'counter', 'Events dropped because their TTL passed before delivery (reason expired_ttl), by priority. Cumulative over the store\'s life.', ['priority']),
  m('edgefwd_store_events', 'gauge', 'Events buffered, by priority (leased ones included).', ['priority']),
  m('edgefwd_store_bytes', 'gauge', 'Key and value bytes of buffered events, by priority.', ['priority']),
  m('edgefwd_store_used_bytes', 'gauge', 'Bytes counted against the capacity (buffered bytes times store.overheadFactor).'),
  m('edgefwd_store_capacity_bytes', 'gauge', 'store.capacity: the bound of the ring buffer.'),
  m('edgefwd_store_leased_events', 'gauge', 'Buffered events in batches in flight (not evictable until acked or returned).'),
  m('edgefwd_store_memory_mode', 'gauge', '1 while the store runs on its in-memory fallback (disk full or failing), else 0.'),
  m('edgefwd_store_memory_bytes', 'gauge', 'Bytes of events held in memory by the fallback, not on disk.'),
  m('edgefwd_store_oldest_event_age_seconds', 'gauge', 'Age (gateway time) of the oldest buffered event; 0 when the store is empty.'),
  // ── uplink ──
  m('edgefwd_uplink_state', 'gauge', '1 for the uplink\'s current state, 0 for the others.', ['state']),
  m('edgefwd_uplink_connects_total', 'counter', 'Connections the broker accepted (CONNACK success).'),
  m('edgefwd_uplink_connect_failures_total', 'counter', 'Failed connection attempts: refused_<MQTT reason code>, tls_<problem> or connect (network, timeout).', ['reason']),
  m('edgefwd_uplink_disconnects_total', 'counter', 'Connections lost after they were up.'),
  m('edgefwd_uplink_dead_links_total', 'counter', 'Connections found dead, once each: reason puback_timeout (no PUBACK within uplink.pubackTimeout) or keepalive (no PINGRESP).', ['reason']),
  m('edgefwd_uplink_ack_failures_total', 'counter', 'Store deletes after a PUBACK that failed; each is tried again, and after 3 failures the batch is sent again.'),
  m('edgefwd_uplink_backoff_seconds', 'gauge', 'The wait before the next connection attempt while in backoff; 0 otherwise.'),
  m('edgefwd_uplink_in_flight_batches', 'gauge', 'Batches published and awaiting their PUBACK.'),
  m('edgefwd_batches_published_total', 'counter', 'Batches published (resends included).'),
  m('edgefwd_batches_acked_total', 'counter', 'Batches the broker acknowledged (and the store then deleted).'),
  m('edgefwd_batches_resent_total', 'counter', 'Batches returned to the store unacknowledged (link lost, timeout), to be sent again.'),
  m('edgefwd_events_published_total', 'counter', 'Events published in batches (resends included).'),
  m('edgefwd_events_acked_total', 'counter', 'Events delivered: in a batch the broker acknowledged, by priority.', ['priority']),
  m('edgefwd_events_resent_total', 'counter', 'Events in batches returned to the store unacknowledged.'),
  m('edgefwd_uplink_sent_bytes_total', 'counter', 'Batch envelope bytes published (MQTT and TLS framing not included).'),
  m('edgefwd_uplink_budget_used_bytes', 'gauge', 'Envelope bytes sent in the current UTC day (uplink.dailyBudget).'),
  m('edgefwd_uplink_budget_exhausted', 'gauge', '1 when the daily budget is spent and only critical events are sent, else 0.'),
  m('edgefwd_uplink_rate_wait_seconds_total', 'counter', 'Time the uplink waited for the rate cap (uplink.rateLimit).'),
  m('edgefwd_puback_latency_seconds', 'histogram', 'Time from publishing a batch to its PUBACK.', [], PUBACK_BUCKETS),
  m('edgefwd_delivery_lag_seconds', 'histogram', 'End-to-end lag of delivered events: device time (gateway time when the device gives none or its clock is skewed) to the PUBACK.', ['priority'], LAG_BUCKETS),
  m('edgefwd_heartbeats_sent_total', 'counter', 'Heartbeats published on <prefix>/<gateway>/health.'),
  // ── TLS ──
  m('edgefwd_tls_cert_expiry_timestamp_seconds', 'gauge', 'When the client certificate expires (its notAfter), Unix seconds; absent until the TLS material is loaded. Days left: (this - time()) / 86400.'),
  // ── remote configuration ──
  m('edgefwd_config_version', 'gauge', 'Version of the remote configuration in force; 0 when running on the local file alone.'),
  m('edgefwd_config_updates_total', 'counter', 'Remote configuration updates received, by result.', ['result']),
  // ── agents (edgefwd mcp) ──
  m('edgefwd_mcp_calls_total', 'counter', 'Agent calls through edgefwd mcp, by tool (unknown: a tool name not offered; jsonrpc: a malformed message) and outcome (ok, dry_run, error, refused, invalid).', ['tool', 'outcome']),
  m('edgefwd_mcp_audit_write_failures_total', 'counter', 'Agent audit log lines that could not be written (mcp.audit.file: disk full, no permission).'),
  // ── process ──
  m('edgefwd_build_info', 'gauge', 'Always 1; the version is the label.', ['version']),
  m('edgefwd_process_start_time_seconds', 'gauge', 'Start time of the process, Unix seconds.'),
  m('edgefwd_process_cpu_seconds_total', 'counter', 'User and system CPU time used by the process.'),
  m('edgefwd_process_resident_memory_bytes', 'gauge', 'Resident set size of the process.'),
  m('edgefwd_process_heap_used_bytes', 'gauge', 'V8 heap in use.'),
  m('edgefwd_event_loop_delay_p99_seconds', 'gauge', '99th percentile of event-loop delay over the last minute.'),
  m('edgefwd_event_loop_delay_max_seconds', 'gauge', 'Largest event-loop delay over the last minute.'),
] as const satisfies readonly MetricSpec[]

export type MetricName = typeof METRICS[number]['name']

/** The values each bounded label may take (for docs and tests; `version` and `reason` of connect failures are open but small). */
export const LABEL_VALUES: Readonly<Record<string, readonly string[]>> = {
  priority: PRIORITIES,
  transport: TRANSPORT_NAMES,
  state: UPLINK_STATES,
  result: CONFIG_RESULTS,
  tool: AUDIT_TOOLS,
  outcome: AUDIT_OUTCOMES,
}

/** The `reason` values of each metric that has one. */
export const REASON_VALUES = {
  edgefwd_frames_rejected_total: REJECT_REASONS,
  edgefwd_events_dropped_total: DROP_REASONS,
  edgefwd_uplink_dead_links_total: DEAD_LINK_REASONS,
  edgefwd_ingest_source_failures_total: SOURCE_FAILURES,
} as const

export function metricSpec (name: MetricName): MetricSpec {
  const spec = METRICS.find(s => s.name === name)
  if (spec === undefined) throw new Error(`unknown metric ${name}`)
  return spec
}
