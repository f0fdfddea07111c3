/**
 * DevicePoller (src/ingest/sources/modbus/device-poller.ts) on a ManualClock with a scripted
 * connection: fixed-rate polls, skipped ticks, backoff while failing, one log line per change of
 * state, NaN handling, re-planning after exception 2, the overload bound, stop(). The schedule's
 * arithmetic (poll-schedule.ts) is checked on its own first.
 */
import t, { type Test } from 'tap'
import { modbusConnections } from '../../src/config/source-schema.js'
import { IngestPipeline } from '../../src/ingest/pipeline.js'
import type { ReadOutcome, ReadRequest } from '../../src/ingest/sources/modbus/client.js'
import { DevicePoller } from '../../src/ingest/sources/modbus/device-poller.js'
import { failureDelay, FAILING_MAX_MS, nextTick } from '../../src/ingest/sources/modbus/poll-schedule.js'
import { SeqAssigner } from '../../src/ingest/sources/source-event.js'
import type { TransportContext } from '../../src/ingest/transports/transport.js'
import type { LogRecord } from '../helpers/log-lines.js'
import { captureLogger } from '../helpers/logger.js'
import { ManualClock } from '../helpers/manual-clock.js'
import { words32 } from '../helpers/modbus-bank.js'
import { FakeSink } from '../integration/helpers/sinks.js'
import { ingestTestOptions } from '../helpers/ingest-options.js'

const OPTIONS = ingestTestOptions()

type Answer = (request: ReadRequest, at: number) => ReadOutcome | { after: number, outcome: ReadOutcome }

interface Rig {
  clock: ManualClock
  sink: FakeSink
  pipeline: IngestPipeline
  ctx: TransportContext
  poller: DevicePoller
  /** Clock times at which reads were made. */
  reads: Array<{ at: number, request: ReadRequest }>
  logs: () => LogRecord[]
  answer: Answer
}

const ok = (values: number[], bytes = 5 + 2 * values.length): ReadOutcome => ({ ok: true, values, bytes })
const timeout: ReadOutcome = { ok: false, failure: 'timeout', detail: 'no answer within 100 ms' }

function rig (t: Test, device: Record<string, unknown>, answer: Answer, over: Partial<TransportContext> = {}): Rig {
  const clock = new ManualClock(1_000_000)
  const sink = new FakeSink()
  const { logger, records } = captureLogger('debug')
  const pipeline = new IngestPipeline(sink, OPTIONS, logger, clock.now)
  const ctx: TransportContext = { pipeline, logger, connectionEvents: 100, ackTimeoutMs: 1000, ...over }
  const [connection] = modbusConnections.parse([{ tcp: { host: 'x' }, devices: [{ id: 'dev', interval: 100, ...device }] }])
  const config = connection?.devices[0]
  if (config === undefined) throw new Error('no device parsed')
  const r: Rig = { clock, sink, pipeline, ctx, reads: [], logs: records, answer, poller: undefined as unknown as DevicePoller }
  const reader = {
    read: async (request: ReadRequest): Promise<ReadOutcome> => {
      r.reads.push({ at: clock.now(), request })
      const a = r.answer(request, clock.now())
      if ('ok' in a) return a
      await clock.sleep(a.after)
      return a.outcome
    }
  }
  r.poller = new DevicePoller(config, { ctx, reader, seqs: new SeqAssigner(8, clock.now), logger, clock, random: () => 1 })
  t.teardown(async () => {
    // A read in flight may be sleeping on the manual clock: let it finish.
    const stopping = r.poller.stop()
    r.sink.release()
    await clock.advance(60_000)
    await stopping
  })
  return r
}

const pollTimes = (r: Rig): number[] => r.reads.map(x => x.at - 1_000_000)
const numbers = (r: Rig): unknown[] => r.sink.events.filter(e => e.deviceId === 'dev').map(e => e.value?.kind === 'numbers' ? e.value.numbers : undefined)

t.test('schedule arithmetic: fixed-rate ticks and a doubling, capped, jittered failure delay', async t => {
  t.equal(nextTick(1000, 100, 1000), 1100)
  t.equal(nextTick(1000, 100, 1099), 1100)
  t.equal(nextTick(1000, 100, 1100), 1200, 'strictly after')
  t.equal(nextTick(1000, 100, 1350), 1400, 'skips the ticks passed')
  t.equal(nextTick(1000, 100, 900), 1100, 'before the anchor')
  t.same([1, 2, 3, 4].map(n => failureDelay(1000, n, () => 1)), [1000, 2000, 4000, 8000], 'doubling from the interval (top of the window)')
  t.same([1, 2, 3].map(n => failureDelay(1000, n, () => 0)), [500, 1000, 2000], 'equal jitter: never below half the window')
  t.equal(failureDelay(1000, 40, () => 1), FAILING_MAX_MS, 'capped at 5 min')
  t.equal(failureDelay(600_000, 3, () => 1), 600_000, 'an interval above 5 min is its own cap')
})

t.test('polls at a fixed rate: response time does not shift the ticks', async t => {
  const r = rig(t, { registers: [{ name: 'v', address: 0 }] }, () => ({ after: 30, outcome: ok([7]) }))
  r.poller.start()
  await r.clock.advance(1000)
  t.same(pollTimes(r), [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000])
  t.equal(r.sink.events.length, 10, 'the poll at 1000 ms is still waiting for its answer')
  t.same(numbers(r)[0], { v: 7 })
  t.match(r.sink.events[0], { deviceId: 'dev', stream: 'modbus', gatewayTimeMs: 1_000_030 })
  t.same(r.poller.status(), { deviceId: 'dev', unitId: 1, polls: 11, failedPolls: 0, skippedPolls: 0, health: 'ok' })
})

t.test('a poll still running when the next is due skips it; the rate resumes on the same grid', async t => {
  let slow = true
  const r = rig(t, { registers: [{ name: 'v', address: 0 }] }, () => ({ after: slow ? 250 : 10, outcome: ok([1]) }))
  r.poller.start()
  await r.clock.advance(650)
  slow = false
  await r.clock.advance(300)
  t.same(pollTimes(r), [0, 300, 600, 900], 'ticks 100, 200, 400, 500, 700, 800 skipped, never queued')
  t.equal(r.poller.status().skippedPolls, 6)
  const warnings = r.logs().filter(l => /polls are skipped/.test(l.msg ?? ''))
  t.equal(warnings.length, 1, 'warned once')
  t.match(warnings[0], { device: 'dev', interval: 100, missed: 2 })
})

t.test('a failing device backs off, is counted per failed poll, logged once per change, and recovers on a new grid', async t => {
  let outcome: ReadOutcome = timeout
  const r = rig(t, { unitId: 7, interval: 1000, registers: [{ name: 'v', address: 0 }] }, () => outcome)
  r.poller.start()
  await r.clock.advance(14_500)
  t.same(pollTimes(r), [0, 1000, 3000, 7000], 'retries after 1, 2, 4 s (random() = 1: top of each window)')
  await r.clock.advance(500)
  t.same(pollTimes(r), [0, 1000, 3000, 7000, 15000])
  outcome = { ok: false, failure: 'exception', exceptionCode: 4, detail: 'exception 4 (SERVER DEVICE FAILURE)' }
  await r.clock.advance(16_000)
  t.same(pollTimes(r).slice(5), [31000], 'after the 5th failure: 16 s')
  outcome = ok([5])
  await r.clock.advance(32_000)
  t.equal(pollTimes(r)[6], 63000, 'after the 6th: 32 s')
  await r.clock.advance(350)
  t.same(pollTimes(r).slice(6), [63000], 'recovered: the next poll is one interval later')
  await r.clock.advance(2000)
  t.same(pollTimes(r).slice(6), [63000, 64000, 65000], 'a new fixed-rate grid from the recovering poll')

  t.same(r.pipeline.counters().transports.modbus?.failures, { timeout: 5, exception: 1 }, 'one count per failed poll')
  const logs = r.logs().filter(l => l.device === 'dev')
  t.same(logs.map(l => l.msg), [
    'modbus device failing',
    'modbus device still failing, for another reason',
    'modbus device recovered after 6 failed polls'
  ])
  t.match(logs[0], { level: 40, unitId: 7, reason: 'timeout', table: 'holding', address: 0, count: 1, detail: 'no answer within 100 ms' })
  t.notOk('exceptionCode' in (logs[0] ?? {}))
  t.match(logs[1], { level: 40, reason: 'exception', exceptionCode: 4, exceptionName: 'SERVER DEVICE FAILURE', previousReason: 'timeout', failedPolls: 5 })
  t.match(logs[2], { level: 30, unitId: 7, failedPolls: 6, failingForMs: 63000 })
  t.equal(numbers(r).length, 3)
})

t.test('an answer that fails a check counts as timeout; a connect failure is retried as soon as the connection opens', async t => {
  let outcome: ReadOutcome = { ok: false, failure: 'bad_response', detail: 'CRC error' }
  const r = rig(t, { interval: 10_000, registers: [{ name: 'v', address: 0 }] }, () => outcome)
  r.poller.start()
  await r.clock.advance(0)
  t.same(r.pipeline.counters().transports.modbus?.failures, { timeout: 1 })
  t.match(r.logs().find(l => l.msg === 'modbus device failing'), { reason: 'bad_response', detail: 'CRC error' })
  outcome = { ok: false, failure: 'connect', detail: 'connect ECONNREFUSED' }
  await r.clock.advance(10_000)
  t.equal(r.reads.length, 2)
  r.poller.connectionOpen()
  await r.clock.advance(0)
  t.equal(r.reads.length, 3, 'polled at once, not after its backoff of 20 s')
  outcome = ok([3])
  await r.clock.advance(0)
  t.equal(r.reads.length, 3, 'only a device failing for connect is hurried')
  r.poller.connectionOpen()
  await r.clock.advance(0)
  t.equal(r.reads.length, 4)
  t.same(numbers(r), [{ v: 3 }])
  r.poller.connectionOpen()
  await r.clock.advance(0)
  t.equal(r.reads.length, 4, 'a healthy device keeps its schedule')
})

t.test('non-finite values are left out and logged once per change; a stream left empty makes no event', async t => {
  const nan = words32('float32', Number.NaN, 'big')
  let temp = nan
  const r = rig(t, {
    registers: [
      { name: 'temp', address: 0, type: 'float32' },
      { name: 'count', address: 2 },
      { name: 'lonely', address: 3, type: 'float32', stream: 'other' }
    ]
  }, () => ok([...temp, 9, ...words32('float32', Number.POSITIVE_INFINITY, 'big')]))
  r.poller.start()
  await r.clock.advance(200)
  t.same(numbers(r), [{ count: 9 }, { count: 9 }, { count: 9 }])
  t.same(r.sink.events.map(e => e.stream), ['modbus', 'modbus', 'modbus'], 'no event for the stream whose only value is Infinity')
  const warned = (): LogRecord[] => r.logs().filter(l => /not a finite number/.test(l.msg ?? ''))
  t.same(warned().map(l => [l.register, l.stream, l.value]), [['temp', 'modbus', 'NaN'], ['lonely', 'other', 'Infinity']])
  temp = words32('float32', 21.5, 'big')
  await r.clock.advance(100)
  temp = nan
  await r.clock.advance(100)
  t.same(numbers(r).slice(3), [{ temp: 21.5, count: 9 }, { count: 9 }])
  t.equal(warned().length, 3, 'NaN again after a finite value is a new change')
  t.same(r.pipeline.counters().transports.modbus?.failures ?? {}, {}, 'not a failure')
})

t.test('exception 2 on a read spanning unmapped addresses: re-planned without gaps, read again in the same poll', async t => {
  const r = rig(t, { registers: [{ name: 'a', address: 0 }, { name: 'b', address: 5 }] }, (req) =>
    req.count > 1 ? { ok: false, failure: 'exception', exceptionCode: 2, detail: 'exception 2' } : ok([req.address * 10]))
  r.poller.start()
  await r.clock.advance(100)
  t.same(r.reads.map(x => [x.at - 1_000_000, x.request.address, x.request.count]), [[0, 0, 6], [0, 0, 1], [0, 5, 1], [100, 0, 1], [100, 5, 1]])
  t.same(numbers(r), [{ a: 0, b: 50 }, { a: 0, b: 50 }])
  t.same(r.pipeline.counters().transports.modbus?.failures ?? {}, {})
  t.equal(r.logs().filter(l => /without gaps/.test(l.msg ?? '')).length, 1)
})

t.test('exception 2 on a gapless read is a failure like any other', async t => {
  const r = rig(t, { registers: [{ name: 'a', address: 0 }, { name: 'b', address: 1 }] }, () => ({ ok: false, failure: 'exception', exceptionCode: 2, detail: 'exception 2' }))
  r.poller.start()
  await r.clock.advance(0)
  t.equal(r.reads.length, 1)
  t.same(r.pipeline.counters().transports.modbus?.failures, { exception: 1 })
})

t.test('one event per stream; the response bytes are shared among them; a failing read ends the poll', async t => {
  let fail = false
  const r = rig(t, {
    stream: 'power',
    registers: [{ name: 'v', address: 0 }, { name: 'on', table: 'coil', address: 0, stream: 'status' }, { name: 'i', table: 'input', address: 0 }]
  }, (req) => fail && req.table === 'input' ? timeout : ok([1], req.table === 'coil' ? 6 : 7))
  r.poller.start()
  await r.clock.advance(0)
  t.same(r.sink.events.map(e => [e.stream, e.value]), [['power', { kind: 'numbers', numbers: { v: 1, i: 1 } }], ['status', { kind: 'numbers', numbers: { on: 1 } }]])
  t.equal(r.pipeline.counters().transports.modbus?.bytes, 20, '7 + 7 + 6 bytes over the two events')
  t.same(r.reads.map(x => x.request.table), ['holding', 'input', 'coil'])
  fail = true
  await r.clock.advance(100)
  t.same(r.reads.slice(3).map(x => x.request.table), ['holding', 'input'], 'the coil read is not made after the input read failed')
  t.equal(r.sink.events.length, 2, 'nothing of a failed poll is submitted')
})

t.test('while the pipeline is over its bound, polls are not made and are counted as dropped', async t => {
  const r = rig(t, { registers: [{ name: 'v', address: 0 }] }, () => ok([1]), { pendingEvents: 0 })
  r.sink.block()
  // Another transport's event, stuck in the store: the pipeline holds 1 > 0.
  const other = r.pipeline.submit('tcp', [{ ok: true, kind: 'event', event: { deviceId: 'other', seq: 1, priority: 1, stream: 's' }, authenticated: false, bytes: 10 }])
  r.poller.start()
  await r.clock.advance(300)
  t.equal(r.reads.length, 0, 'no read while over the bound')
  t.same(r.pipeline.counters().transports.modbus?.dropped, { overloaded: 4 }, 'the polls at 0, 100, 200 and 300 ms')
  r.sink.release()
  await other
  await r.clock.advance(100)
  t.equal(r.reads.length, 1, 'polls resume once the pipeline has room')
  t.same(numbers(r), [{ v: 1 }])
})

t.test('stop(): no poll after it, and it waits for the submit in flight', async t => {
  const r = rig(t, { registers: [{ name: 'v', address: 0 }] }, () => ok([1]))
  r.sink.block()
  r.poller.start()
  await r.clock.advance(0)
  let stopped = false
  const stopping = r.poller.stop().then(() => { stopped = true })
  await r.clock.advance(500)
  t.notOk(stopped, 'waits for the append')
  r.sink.release()
  await stopping
  t.equal(r.sink.events.length, 1)
  await r.clock.advance(1000)
  t.equal(r.reads.length, 1, 'no poll after stop()')
  t.equal(r.clock.pending, 0, 'no timer left')
})
