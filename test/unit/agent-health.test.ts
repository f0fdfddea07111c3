/**
 * get_gateway_health's problems from open incidents (src/agent/reports.ts): a local input that
 * cannot be read is named with what failed and its runbook.
 */
import t from 'tap'
import { healthReport } from '../../src/agent/reports.js'
import { parseConfigText } from '../../src/config/index.js'
import { MetricsRegistry } from '../../src/observe/metrics.js'

const T0 = Date.UTC(2026, 11, 7, 10)
const facts = (openIncidents: Parameters<typeof healthReport>[1]['openIncidents']): Parameters<typeof healthReport>[1] => ({
  config: parseConfigText('gateway: { id: gw-h }', 'c.yaml'),
  version: '0.1.0',
  readiness: { ok: true, checks: {} },
  listening: ['mqtt mqtt://127.0.0.1:1883 (zigbee2mqtt/{device})'],
  openIncidents,
  nowMs: T0 + 60_000,
})

t.test('an open input_failing incident is an ingest warning with the sources and reasons, and the local-input runbook', async t => {
  const registry = new MetricsRegistry()
  const ingest = (r: ReturnType<typeof healthReport>): unknown[] => r.problems.filter(p => p.component === 'ingest')
  t.same(ingest(healthReport(registry, facts([]))), [], 'no incident, no ingest problem')
  const incident = { id: 1, kind: 'input_failing' as const, startMs: T0, endMs: undefined, summary: 's', impact: { eventsAccepted: 0, eventsLost: 0, framesRejected: 0, eventsResent: 0 }, codes: ['mqtt:connect', 'modbus:timeout'] }
  const report = healthReport(registry, facts([incident]))
  t.same(ingest(report), [{
    component: 'ingest',
    severity: 'warning',
    text: "a local input cannot be read (mqtt:connect, modbus:timeout) since 2026-12-07T10:00:00.000Z: its devices' readings are not collected; it is retried with backoff",
    runbook: report.problems.find(p => p.component === 'ingest')?.runbook
  }])
  t.match(report.problems.find(p => p.component === 'ingest')?.runbook, /docs\/operations\.md#local-input-failing$/)
  t.equal(report.components.ingest.ok, true, 'a warning, not a failed component: the other inputs run')
})
