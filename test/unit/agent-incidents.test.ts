import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { IncidentTracker, INPUT_QUIET_MS, QUIET_MS, SAMPLE_MS, type IncidentInput } from '../../src/agent/incidents.js'
import { silentLogger } from '../helpers/logger.js'

const T0 = 1_800_000_000_000

function input (at: number, over: Partial<IncidentInput> = {}): IncidentInput {
  return {
    atMs: T0 + at, online: true, stopping: false, offlineSinceMs: undefined, lastError: undefined,
    connectFailures: {}, deadLinks: {}, resent: 0, accepted: 0, dropped: {}, diskDegraded: false, repairedAtOpen: false,
    rejected: {}, deviceRejections: {}, sourceFailures: {}, rollbacks: 0, ...over,
  }
}

t.test('an outage: from the uplink\'s offline-since time to the sample that sees it online, with what failed and what it cost', async t => {
  const tracker = new IncidentTracker(undefined, silentLogger())
  tracker.observe(input(0, { accepted: 100 }))
  tracker.observe(input(5000, { online: false, offlineSinceMs: T0 + 3000, lastError: 'EDGEFWD_ERR_UPLINK_CONNECT', connectFailures: { connect: 2 }, accepted: 150 }))
  tracker.observe(input(10_000, { online: false, offlineSinceMs: T0 + 3000, lastError: 'EDGEFWD_ERR_TLS_REJECTED', connectFailures: { connect: 2, tls_rejected: 1 }, accepted: 220, dropped: { evicted_for_space: 5 } }))
  let [open] = tracker.report(5).incidents.filter(i => i.kind === 'outage')
  t.equal(open?.startMs, T0 + 3000, 'starts when the uplink went offline')
  t.equal(open?.endMs, undefined, 'ongoing')
  t.same(open?.codes, ['EDGEFWD_ERR_UPLINK_CONNECT', 'connect', 'EDGEFWD_ERR_TLS_REJECTED', 'tls_rejected'], 'every code and failure reason seen, once each')
  tracker.observe(input(15_000, { accepted: 260, dropped: { evicted_for_space: 5 }, connectFailures: { connect: 2, tls_rejected: 1 } }))
  open = tracker.report(5).incidents.find(i => i.kind === 'outage')
  t.equal(open?.endMs, T0 + 15_000, 'ends at the sample that saw it online')
  t.same(open?.impact, { eventsAccepted: 160, eventsLost: 5, framesRejected: 0, eventsResent: 0 }, 'impact: counted from the sample before it')
  t.ok(tracker.report(5).incidents.some(i => i.kind === 'broker_refusal' && i.codes.includes('tls_rejected')), 'the TLS refusal is its own incident')
  t.notOk(tracker.report(5).incidents.some(i => i.kind === 'broker_refusal' && i.codes.includes('connect')), 'a network failure is not a refusal')
})

t.test('an outage that began and ended between two samples is recorded from the uplink\'s own record, with its exact span', async t => {
  const tracker = new IncidentTracker(undefined, silentLogger())
  tracker.observe(input(0))
  tracker.observe(input(5000, { lastOutage: { sinceMs: T0 + 1000, untilMs: T0 + 3500, lastError: 'connection reset' }, connectFailures: { connect: 1 }, accepted: 40 }))
  const [o] = tracker.report(5).incidents
  t.equal(o?.kind, 'outage')
  t.equal(o?.startMs, T0 + 1000)
  t.equal(o?.endMs, T0 + 3500)
  t.same(o?.codes, ['connection reset', 'connect'])
  t.equal(o?.impact.eventsAccepted, 40)
  tracker.observe(input(10_000, { lastOutage: { sinceMs: T0 + 1000, untilMs: T0 + 3500, lastError: 'connection reset' }, connectFailures: { connect: 1 }, accepted: 40 }))
  t.equal(tracker.report(5).recorded, 1, 'the same record seen again is the same outage')
  tracker.observe(input(15_000, { online: false, offlineSinceMs: T0 + 12_000, lastOutage: { sinceMs: T0 + 1000, untilMs: T0 + 3500, lastError: 'connection reset' }, connectFailures: { connect: 1 } }))
  tracker.observe(input(20_000, { lastOutage: { sinceMs: T0 + 12_000, untilMs: T0 + 16_250, lastError: 'x' }, connectFailures: { connect: 1 } }))
  t.same(tracker.report(5).incidents.map(i => [i.startMs - T0, (i.endMs ?? 0) - T0]), [[12_000, 16_250], [1000, 3500]], 'an open one ends when the uplink says it came back')
})

t.test('bursts stay one incident until QUIET_MS pass without a new occurrence; device ids are kept apart, at most 5', async t => {
  const tracker = new IncidentTracker(undefined, silentLogger())
  tracker.observe(input(0))
  tracker.observe(input(5000, { rejected: { bad_crc: 3 }, deviceRejections: { a: 3 } }))
  t.equal(tracker.report(5).incidents.length, 0, 'a few rejected frames are not a burst')
  const devices = Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((d, i) => [d, 10 + i]))
  tracker.observe(input(10_000, { rejected: { bad_crc: 30, too_large: 70 }, deviceRejections: devices }))
  tracker.observe(input(40_000, { rejected: { bad_crc: 31, too_large: 70 }, deviceRejections: { ...devices, a: 11 } }))
  let burst = tracker.report(5).incidents[0]
  t.equal(burst?.kind, 'rejected_input')
  t.equal(burst?.startMs, T0 + 5000, 'started after the last sample without it')
  t.equal(burst?.endMs, undefined, 'a further rejection within QUIET_MS keeps it open')
  t.equal(burst?.impact.framesRejected, 98, 'frames rejected since its start')
  t.same(burst?.codes, ['bad_crc', 'too_large'])
  t.equal(burst?.devices?.length, 5, 'at most 5 devices')
  t.equal(burst?.devices?.[0], 'g', 'the worst first')
  tracker.observe(input(40_000 + QUIET_MS, { rejected: { bad_crc: 31, too_large: 70 }, deviceRejections: { ...devices, a: 11 } }))
  burst = tracker.report(5).incidents[0]
  t.equal(burst?.endMs, T0 + 40_000, 'closed after QUIET_MS of quiet, ending at its last occurrence')
  t.equal(tracker.report(5).incidents.length, 1, 'one incident for the whole burst')
})

t.test('disk full, a store repair at start, a rollback, dead links, data loss', async t => {
  const tracker = new IncidentTracker(undefined, silentLogger())
  tracker.observe(input(0, { repairedAtOpen: true }))
  tracker.observe(input(SAMPLE_MS, { diskDegraded: true, deadLinks: { puback_timeout: 1 }, dropped: { rejected_full: 4 } }))
  tracker.observe(input(2 * SAMPLE_MS, { rollbacks: 1, deadLinks: { puback_timeout: 1 }, dropped: { rejected_full: 4 } }))
  const kinds = tracker.report(10).incidents.map(i => `${i.kind}${i.endMs === undefined ? ' (open)' : ''}`)
  t.same(kinds.sort(), ['config_rollback', 'data_loss (open)', 'dead_link (open)', 'disk_full', 'store_repair'].sort())
  t.same(tracker.report(10).incidents.find(i => i.kind === 'store_repair')?.codes, ['EDGEFWD_ERR_STORE_CORRUPT'])
  t.equal(tracker.report(10).incidents.find(i => i.kind === 'data_loss')?.impact.eventsLost, 4)
  t.equal(tracker.report(1).incidents.length, 1, 'limit')
})

t.test('the history is saved and read back; an incident open at a crash is closed at the last save, with a note; a damaged file is set aside', async t => {
  const dir = t.testdir()
  const file = join(dir, 'incidents.json')
  const first = new IncidentTracker(file, silentLogger())
  await first.load(T0)
  first.observe(input(0))
  first.observe(input(SAMPLE_MS, { online: false, offlineSinceMs: T0 + 1000 }))
  await first.flush()
  const saved = JSON.parse(readFileSync(file, 'utf8')) as { savedMs: number }
  t.equal(saved.savedMs, T0 + SAMPLE_MS)
  const second = new IncidentTracker(file, silentLogger())
  await second.load(T0 + 60_000)
  const [outage] = second.report(5).incidents
  t.equal(outage?.endMs, T0 + SAMPLE_MS, 'closed at the last save')
  t.match(outage?.note, /stopped while it went on/)
  second.observe(input(60_000))
  second.observe(input(65_000, { online: false, offlineSinceMs: T0 + 62_000 }))
  t.same(second.report(5).incidents.map(i => i.id), [2, 1], 'ids go on from the saved ones')

  writeFileSync(file, '{"savedMs": 1, "incidents": 7')
  const third = new IncidentTracker(file, silentLogger())
  await third.load(T0)
  t.equal(third.report(5).recorded, 0, 'a damaged file: a new history')
})

t.test('a local input failing (a broker down, a Modbus device polled with backoff) is one incident until INPUT_QUIET_MS pass', async t => {
  const tracker = new IncidentTracker(undefined, silentLogger())
  tracker.observe(input(0))
  tracker.observe(input(5000, { sourceFailures: { 'modbus:timeout': 1 } }))
  // The device's backoff grows: failures 2.5 and 5 minutes apart are still the same incident.
  tracker.observe(input(5000 + 150_000, { sourceFailures: { 'modbus:timeout': 2 } }))
  tracker.observe(input(5000 + 450_000, { sourceFailures: { 'modbus:timeout': 3, 'mqtt:connect': 1 } }))
  let open = tracker.report(5).incidents
  t.equal(open.length, 1)
  t.match(open[0], { kind: 'input_failing', startMs: T0, endMs: undefined, codes: ['modbus:timeout', 'mqtt:connect'] })
  tracker.observe(input(5000 + 450_000 + INPUT_QUIET_MS, { sourceFailures: { 'modbus:timeout': 3, 'mqtt:connect': 1 } }))
  open = tracker.report(5).incidents
  t.equal(open[0]?.endMs, T0 + 455_000, 'closed once quiet for INPUT_QUIET_MS, at its last failure')
})
