import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { AuditLog } from '../../src/agent/audit.js'
import { MetricsRegistry } from '../../src/observe/metrics.js'
import { silentLogger } from '../helpers/logger.js'

t.test('one line per call, counted; arguments cut; past maxBytes the file becomes FILE.1', async t => {
  const file = join(t.testdir(), 'audit.jsonl')
  const registry = new MetricsRegistry()
  const audit = new AuditLog(file, 1500, registry, silentLogger(), () => 1_800_000_000_000)
  await audit.record({ tool: 'get_buffer_report', arguments: {}, caller: 'stdio pid 1', outcome: 'ok', durationMs: 2.4 })
  await audit.record({ tool: 'made_up', arguments: { pad: 'x'.repeat(2000) }, caller: 'stdio pid 1', outcome: 'invalid', detail: 'Tool made_up not found' })
  const lines = readFileSync(file, 'utf8').trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
  t.match(lines[0], { time: '2027-01-15T08:00:00.000Z', tool: 'get_buffer_report', outcome: 'ok', durationMs: 2 })
  t.match(lines[1]?.arguments, /^\(cut, 2010 chars\) /, 'long arguments are cut and marked')
  t.equal(registry.get('edgefwd_mcp_calls_total', { tool: 'unknown', outcome: 'invalid' }), 1, 'a tool not offered is counted as unknown')
  t.ok(readFileSync(file).length <= 1500, 'both lines fit')
  await audit.record({ tool: 'get_slo_report', arguments: { pad: 'y'.repeat(2000) }, caller: 'stdio pid 1', outcome: 'ok' })
  t.ok(existsSync(`${file}.1`), 'rotated past maxBytes')
  t.equal(readFileSync(file, 'utf8').trim().split('\n').length, 1, 'a new file begun with the last line')
})

t.test('a line that cannot be written (no such directory, as a full disk) is counted and logged; the call is not refused', async t => {
  const registry = new MetricsRegistry()
  const audit = new AuditLog(join(t.testdir(), 'missing', 'audit.jsonl'), 1 << 20, registry, silentLogger())
  await audit.record({ tool: 'get_gateway_health', arguments: {}, caller: 'x', outcome: 'ok' })
  t.equal(registry.get('edgefwd_mcp_audit_write_failures_total'), 1)
  t.equal(registry.get('edgefwd_mcp_calls_total', { tool: 'get_gateway_health', outcome: 'ok' }), 1, 'still counted')
})
