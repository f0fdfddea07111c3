/**
 * Scenarios broker-restart, power-cut (with a Tasmota-like plug on the local MQTT broker) and
 * babbling-device, shortened to 8 s: each passes its own verification and shows what it is about.
 */
import t from 'tap'
import { column, droppedAtIngest, runShortScenario } from './helpers/simulation.js'

t.test('broker-restart: the broker goes away and comes back; nothing unexplained', async t => {
  const r = await runShortScenario('broker-restart')
  t.same(r.verdict, { ok: true, reasons: [] }, r.verdict.reasons.join('; '))
  t.ok(r.phases.some(p => p.kind === 'broker-down'))
  t.ok(r.samples.some(s => s.link === 'broker-down'), 'the run saw the broker down')
})

t.test('power-cut: the forwarder is SIGKILLed mid-drain and restarted; every event a device sent is delivered', async t => {
  const r = await runShortScenario('power-cut')
  t.same(r.verdict, { ok: true, reasons: [] }, r.verdict.reasons.join('; '))
  t.ok(r.samples.some(s => s.link === 'forwarder-down'), 'the run saw the forwarder down')
  // TCP devices with acks resend what was not acknowledged, and the local broker sends the
  // plug's unacknowledged messages again: nothing may be missing at all.
  t.equal(column(r, 'delivered'), column(r, 'sent') - column(r, 'evicted'))
  const plug = r.sources?.find(s => s.transport === 'mqtt')
  t.ok(plug !== undefined && plug.sent > 0 && plug.delivered === plug.sent - plug.evicted, `the Tasmota-like plug's messages arrive across the power cut: ${JSON.stringify(plug)}`)
})

t.test('babbling-device: the device over its rate limit is refused at ingest, counted; the others are unharmed', async t => {
  const r = await runShortScenario('babbling-device')
  t.same(r.verdict, { ok: true, reasons: [] }, r.verdict.reasons.join('; '))
  t.ok(droppedAtIngest(r, 'rate_limited') > 0)
  t.equal(column(r, 'evicted'), 0)
})
