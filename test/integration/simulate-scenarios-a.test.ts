/**
 * Scenarios default, long-outage and flaky-cellular, each shortened to 8 s (timeline and store
 * scaled together): every one must pass its own verification (no unexplained loss, every
 * critical event delivered) and show what it is about. The default scenario's Tasmota-like plug
 * (ingest.mqtt) and Modbus meter (ingest.modbus) deliver through the same run.
 */
import t from 'tap'
import { column, droppedAtIngest, runShortScenario } from './helpers/simulation.js'

t.test('default: outage, blackhole and throttling; low-priority events evicted and reported; the babbler rate limited; nothing unexplained', async t => {
  const r = await runShortScenario('default')
  t.same(r.verdict, { ok: true, reasons: [] }, r.verdict.reasons.join('; '))
  t.equal(column(r, 'unexplained'), 0)
  t.ok(column(r, 'evicted') > 0, `evicted and reported: ${column(r, 'evicted')}`)
  t.equal(r.priorities.find(p => p.priority === 'critical')?.evicted, 0, 'critical events are never the ones evicted')
  t.ok(droppedAtIngest(r, 'rate_limited') > 0, 'the babbling device is rate limited at ingest')
  t.ok(column(r, 'delivered') > 0)
  t.same(new Set(r.samples.map(s => s.link)), new Set(['connected', 'outage', 'blackhole', 'throttle']), 'every link phase happened')
  // The source devices: accounted by the message and poll numbers they carry, nothing unexplained.
  t.same(r.sources?.map(s => [s.transport, s.devices, s.priority]), [['mqtt', 'tasmota-1', 'normal'], ['modbus', 'meter-1', 'high']])
  for (const s of r.sources ?? []) {
    t.ok(s.sent >= (s.transport === 'mqtt' ? 25 : 10), `${s.devices}: ${s.sent} sent in 8 s`)
    t.ok(s.delivered > 0, `${s.devices}: ${s.delivered} delivered`)
    t.equal(s.unexplained, 0, `${s.devices}: nothing unexplained`)
    t.equal(s.sent, s.delivered + s.evicted + s.droppedAtIngest + s.lostBeforeGateway + s.unexplained, `${s.devices}: every message or poll in one column`)
  }
  t.equal(r.sources?.find(s => s.transport === 'modbus')?.delivered, r.sources?.find(s => s.transport === 'modbus')?.sent, 'every high-priority poll delivered')
})

t.test('long-outage: a long outage fills the small store; every critical event still arrives', async t => {
  const r = await runShortScenario('long-outage')
  t.same(r.verdict, { ok: true, reasons: [] }, r.verdict.reasons.join('; '))
  t.ok(column(r, 'evicted') > 0, 'events were evicted and reported')
  const critical = r.priorities.find(p => p.priority === 'critical')
  t.equal(critical?.delivered, critical?.sent)
})

t.test('flaky-cellular: flapping, latency and a throttled link lose nothing', async t => {
  const r = await runShortScenario('flaky-cellular')
  t.same(r.verdict, { ok: true, reasons: [] }, r.verdict.reasons.join('; '))
  t.ok(r.samples.some(s => s.link === 'outage') && r.samples.some(s => s.link === 'latency') && r.samples.some(s => s.link === 'throttle'))
})
