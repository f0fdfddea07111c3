/**
 * ingest.modbus end to end: Modbus TCP devices (modbus-serial's own ServerTCP) and an RTU bus on
 * a socat pty pair (test/helpers/modbus-rtu-slave.ts) polled into a real IngestPipeline; timing
 * out, refusing and unreachable devices. Timing is asserted loosely (counts in a window), never
 * to the millisecond; every wait is bounded; servers and ptys are closed in t.teardown.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { modbusConnections } from '../../src/config/source-schema.js'
import { IngestPipeline } from '../../src/ingest/pipeline.js'
import { ModbusSource } from '../../src/ingest/sources/modbus/index.js'
import type { TransportContext } from '../../src/ingest/transports/transport.js'
import type { EventRecord } from '../../src/types.js'
import type { LogRecord } from '../helpers/log-lines.js'
import { captureLogger } from '../helpers/logger.js'
import { place, words32, type RegisterBank } from '../helpers/modbus-bank.js'
import { linkedPty } from '../helpers/modbus-pty.js'
import { startRtuSlave } from '../helpers/modbus-rtu-slave.js'
import { modbusServer, silentServer } from '../helpers/modbus-tcp.js'
import { freePort, waitFor } from '../helpers/wait.js'
import { FakeSink } from './helpers/sinks.js'
import { ptyPair } from './helpers/socat.js'
import { ingestTestOptions } from '../helpers/ingest-options.js'

const OPTIONS = ingestTestOptions()

interface Rig {
  sink: FakeSink
  pipeline: IngestPipeline
  ctx: TransportContext
  logs: () => LogRecord[]
  /** Starts a source for one `ingest.modbus` entry (raw config, defaults applied by the schema); stopped in teardown. */
  source: (connection: unknown) => Promise<ModbusSource>
}

function rig (t: Test): Rig {
  const sink = new FakeSink()
  const { logger, records } = captureLogger('debug')
  const pipeline = new IngestPipeline(sink, OPTIONS, logger)
  const ctx: TransportContext = { pipeline, logger, connectionEvents: 1000, ackTimeoutMs: 1000, stopTimeoutMs: 3000 }
  return {
    sink,
    pipeline,
    ctx,
    logs: records,
    source: async (connection) => {
      const [config] = modbusConnections.parse([connection])
      if (config === undefined) throw new Error('no connection parsed')
      const source = new ModbusSource(config, ctx)
      t.teardown(async () => { await source.stop() })
      await source.start()
      return source
    }
  }
}

function events (sink: FakeSink, deviceId: string, stream?: string): EventRecord[] {
  return sink.events.filter(e => e.deviceId === deviceId && (stream === undefined || e.stream === stream))
}

function numbersOf (e: EventRecord | undefined): Record<string, number> | undefined {
  return e?.value?.kind === 'numbers' ? e.value.numbers : undefined
}

function lines (logs: LogRecord[], msg: string | RegExp, device?: string): LogRecord[] {
  return logs.filter(r => (typeof msg === 'string' ? r.msg === msg : msg.test(r.msg ?? '')) && (device === undefined || r.device === device))
}

/** Every line about a device's failure state (the change to failing, and a change of reason). */
const FAILING = /^modbus device (still )?failing/

/** A device's polls, and its ticks: polls made plus polls skipped because the one before was still running. */
function progress (source: ModbusSource, id: string): { polls: number, ticks: number } {
  const d = source.devices().find(x => x.deviceId === id)
  return { polls: d?.polls ?? 0, ticks: (d?.polls ?? 0) + (d?.skippedPolls ?? 0) }
}

/**
 * What `ms` of wall time did for a device. The schedule is asserted on ticks (fixed-rate, so
 * they follow the clock even on a loaded machine), progress on polls, both loosely.
 */
async function over (source: ModbusSource, id: string, ms: number): Promise<{ polls: number, ticks: number }> {
  const before = progress(source, id)
  await sleep(ms)
  const after = progress(source, id)
  return { polls: after.polls - before.polls, ticks: after.ticks - before.ticks }
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

const failures = (p: IngestPipeline): Record<string, number | undefined> => ({ ...p.counters().transports.modbus?.failures })

t.test('TCP: every type and word order, scale and offset, reach the pipeline at the device interval', async t => {
  const holding: Record<number, number> = {}
  place(holding, 0, [0xfb2e, 50_000])
  place(holding, 2, words32('int32', -100_000, 'big'))
  place(holding, 4, words32('int32', 123_456_789, 'little'))
  place(holding, 6, words32('float32', 3.5, 'big'))
  place(holding, 8, words32('float32', -0.15625, 'little'))
  place(holding, 10, words32('uint32', 4_000_000_000, 'big'))
  const meter: RegisterBank = { holding, input: { 0: 215, 1: 0, 2: 0, 3: 0, 4: 0, 5: 7 }, coil: { 0: true, 1: false, 2: false, 3: true }, discrete: { 2: true } }
  const server = await modbusServer(t, { 1: meter, 2: { holding: { 0: 42 } } })
  const r = rig(t)
  const source = await r.source({
    tcp: { host: '127.0.0.1', port: server.port },
    timeout: '1s',
    devices: [{
      id: 'meter-1', unitId: 1, interval: '200ms', stream: 'power',
      registers: [
        { name: 'temp', address: 0, type: 'int16', scale: 0.1 },
        { name: 'count', address: 1 },
        { name: 'energy', address: 2, type: 'int32', scale: 0.01 },
        { name: 'total', address: 4, type: 'int32', wordOrder: 'little' },
        { name: 'freq', address: 6, type: 'float32', scale: 2, offset: 1 },
        { name: 'pf', address: 8, type: 'float32', wordOrder: 'little' },
        { name: 'big', address: 10, type: 'uint32' },
        { name: 'voltage', table: 'input', address: 0, scale: 0.1 },
        { name: 'phase', table: 'input', address: 5 },
        { name: 'relay0', table: 'coil', address: 0, stream: 'status' },
        { name: 'relay1', table: 'coil', address: 1, stream: 'status' },
        { name: 'relay3', table: 'coil', address: 3, stream: 'status' },
        { name: 'door', table: 'discrete', address: 2, stream: 'status' }
      ]
    }, {
      id: 'meter-2', unitId: 2, interval: '200ms', registers: [{ name: 'answer', address: 0 }]
    }]
  })
  t.equal(source.address, `modbus tcp 127.0.0.1:${server.port}`)
  await waitFor('the first poll of both meters', () => events(r.sink, 'meter-1').length >= 2 && events(r.sink, 'meter-2').length >= 1, 5000)
  const window = await over(source, 'meter-1', 1200)
  await source.stop()

  t.ok(window.ticks >= 4 && window.ticks <= 8, `~6 ticks in 1.2 s at 200 ms, got ${window.ticks}`)
  t.ok(window.polls >= 2, `and polls made (${window.polls})`)
  const power = events(r.sink, 'meter-1', 'power')
  const status = events(r.sink, 'meter-1', 'status')
  t.ok(Math.abs(power.length - status.length) <= 1, 'one event per stream per poll')
  const expected = { temp: -1234 * 0.1, count: 50_000, energy: -100_000 * 0.01, total: 123_456_789, freq: 3.5 * 2 + 1, pf: -0.15625, big: 4_000_000_000, voltage: 215 * 0.1, phase: 7 }
  t.same(power.map(numbersOf).filter(n => JSON.stringify(n) !== JSON.stringify(expected)), [], 'every power event holds exactly the expected values')
  t.same(numbersOf(power[0]), expected)
  t.same(numbersOf(status[0]), { relay0: 1, relay1: 0, relay3: 1, door: 1 })
  t.same(status.map(numbersOf).filter(n => JSON.stringify(n) !== JSON.stringify({ relay0: 1, relay1: 0, relay3: 1, door: 1 })), [])
  t.same(numbersOf(events(r.sink, 'meter-2')[0]), { answer: 42 }, 'a second unit id on the same connection')
  t.equal(events(r.sink, 'meter-2')[0]?.stream, 'modbus', 'the default stream')

  const seqs = events(r.sink, 'meter-1').map(e => e.deviceSeq)
  t.same(seqs, seqs.map((_, i) => (seqs[0] as number) + i), 'seqs dense per device')
  const gaps = power.slice(1).map((e, i) => e.gatewayTimeMs - (power[i] as EventRecord).gatewayTimeMs).sort((a, b) => a - b)
  const median = gaps[Math.floor(gaps.length / 2)] as number
  t.ok(median >= 150 && median <= 300, `polls ~200 ms apart (median ${median} ms)`)

  const status_ = source.devices()
  const polls = status_.reduce((n, d) => n + d.polls, 0)
  t.ok(server.requests.holding <= polls && server.requests.holding >= polls - 2,
    `one holding request per poll for 7 holding registers (${server.requests.holding} requests, ${polls} polls)`)
  const c = r.pipeline.counters()
  t.same(c.transports.modbus?.failures, {}, 'no failures')
  t.equal(c.transports.modbus?.connections, 1)
  t.equal(c.transports.modbus?.frames, c.events, 'every reading became an event')
  t.ok((c.transports.modbus?.bytes ?? 0) > 0, 'response bytes counted')
  t.same(lines(r.logs(), /failing|recovered/), [], 'nothing failed, nothing logged as failing')
})

t.test('RTU on a pty: values and word orders, gaps re-planned, exceptions counted, a silent unit timed out', async t => {
  const pty = await ptyPair(t)
  const holding: Record<number, number> = { 10: 99 }
  place(holding, 0, words32('int32', -5, 'little'))
  place(holding, 2, words32('float32', 12.75, 'big'))
  const bus = startRtuSlave(t, pty.device, {
    units: { 1: { holding, input: { 0: 1234 }, coil: { 0: true, 1: false, 2: false, 3: true } }, 3: { holding: { 0: 1 } } },
    noise: Buffer.from([0x00])
  })
  const r = rig(t)
  const source = await r.source({
    rtu: { path: pty.gateway, baud: 115200 },
    // Generous: on a loaded CI machine a healthy answer through socat can take 100+ ms.
    timeout: '400ms',
    devices: [
      {
        id: 'rtu-1', unitId: 1, interval: '200ms', wordOrder: 'little',
        registers: [
          { name: 'a', address: 0, type: 'int32' },
          { name: 'b', address: 2, type: 'float32', wordOrder: 'big' },
          { name: 'c', address: 10 },
          { name: 'in0', table: 'input', address: 0 },
          { name: 'coil0', table: 'coil', address: 0 },
          { name: 'coil3', table: 'coil', address: 3 }
        ]
      },
      { id: 'rtu-3', unitId: 3, interval: '200ms', registers: [{ name: 'x', address: 50 }] },
      // Polled every second (backoff from 500 ms): the bus it shares stays mostly free.
      { id: 'rtu-9', unitId: 9, interval: '1s', registers: [{ name: 'y', address: 0 }] }
    ]
  })
  t.equal(source.address, `modbus rtu ${pty.gateway}`)
  await waitFor('rtu-1 read and both others failed', () => events(r.sink, 'rtu-1').length >= 1 && (failures(r.pipeline).exception ?? 0) >= 1 && (failures(r.pipeline).timeout ?? 0) >= 1, 5000)
  const window = await over(source, 'rtu-1', 1500)
  await source.stop()

  t.ok(window.ticks >= 5 && window.ticks <= 9, `rtu-1 keeps its schedule (${window.ticks} ticks in 1.5 s at 200 ms)`)
  t.ok(window.polls >= 2, `and is polled on a bus shared with a silent unit (${window.polls} polls)`)
  const expected = { a: -5, b: 12.75, c: 99, in0: 1234, coil0: 1, coil3: 1 }
  const all = events(r.sink, 'rtu-1')
  t.same(numbersOf(all[0]), expected)
  t.same(all.map(numbersOf).filter(n => JSON.stringify(n) !== JSON.stringify(expected)), [], 'every event exact, despite a noise byte before each answer')

  const f = failures(r.pipeline)
  t.equal(bus.exceptions.get(1), 1, 'rtu-1 got one exception: its first read spanned the unmapped 4-9')
  // A request in flight when stop() came may have been answered, uncounted: hence "at most one".
  const uncounted = (sent: number | undefined, counted: number | undefined): number => (sent ?? 0) - (counted ?? 0)
  t.ok([0, 1].includes(uncounted(bus.exceptions.get(3), f.exception)), `every exception of rtu-3 counted, rtu-1's re-plan not (${f.exception ?? 0} of ${bus.exceptions.get(3) ?? 0})`)
  t.ok((f.exception ?? 0) >= 3, `rtu-3 kept being polled while failing (${f.exception ?? 0} exceptions)`)
  t.ok((f.timeout ?? 0) >= 2 && [0, 1].includes(uncounted(bus.requests.get(9), f.timeout)), `every request to the silent unit 9 counted as a timeout (${f.timeout ?? 0} of ${bus.requests.get(9) ?? 0})`)
  const byId = new Map(source.devices().map(d => [d.deviceId, d]))
  t.equal(byId.get('rtu-1')?.failedPolls, 0)
  t.equal(byId.get('rtu-3')?.health, 'exception')
  t.equal(byId.get('rtu-9')?.health, 'timeout')

  const logs = r.logs()
  const failing3 = lines(logs, FAILING, 'rtu-3')
  t.equal(failing3.length, 1, 'one line for rtu-3 failing, however many polls failed')
  t.match(failing3[0], { msg: 'modbus device failing', level: 40, unitId: 3, reason: 'exception', exceptionCode: 2, exceptionName: 'ILLEGAL DATA ADDRESS', transport: 'modbus', connection: `rtu ${pty.gateway}` })
  t.match(lines(logs, FAILING, 'rtu-9'), [{ msg: 'modbus device failing', unitId: 9, reason: 'timeout' }])
  t.equal(lines(logs, FAILING, 'rtu-9').length, 1)
  t.same(lines(logs, /failing|recovered/, 'rtu-1'), [])
  t.equal(lines(logs, /without gaps/, 'rtu-1').length, 1, 'the re-plan logged once')
})

t.test('a device that never answers does not slow a healthy one on its own connection (TCP and RTU)', async t => {
  const silent = await silentServer(t)
  const healthy = await modbusServer(t, { 1: { holding: { 0: 7 } } })
  const pty = await ptyPair(t)
  const otherPty = await ptyPair(t)
  startRtuSlave(t, pty.device, { units: { 1: { holding: { 0: 8 } } } })
  startRtuSlave(t, otherPty.device, { units: {} })
  const r = rig(t)
  const device = (id: string, unitId = 1): unknown => ({ id, unitId, interval: '200ms', registers: [{ name: 'v', address: 0 }] })
  const deadTcp = await r.source({ tcp: { host: '127.0.0.1', port: silent.port }, timeout: '300ms', devices: [device('dead-tcp')] })
  const deadRtu = await r.source({ rtu: { path: otherPty.gateway, baud: 115200 }, timeout: '300ms', devices: [device('dead-rtu', 4)] })
  // The healthy ones get a generous timeout: a loaded CI machine must not make them fail.
  const liveTcp = await r.source({ tcp: { host: '127.0.0.1', port: healthy.port }, timeout: '1s', devices: [device('live-tcp')] })
  const liveRtu = await r.source({ rtu: { path: pty.gateway, baud: 115200 }, timeout: '1s', devices: [device('live-rtu')] })
  await waitFor('both healthy devices polled', () => events(r.sink, 'live-tcp').length >= 1 && events(r.sink, 'live-rtu').length >= 1, 5000)
  const [tcp, rtu] = await Promise.all([over(liveTcp, 'live-tcp', 1500), over(liveRtu, 'live-rtu', 1500)])
  for (const [name, w] of [['live-tcp', tcp], ['live-rtu', rtu]] as const) {
    t.ok(w.ticks >= 6 && w.ticks <= 9, `${name} keeps its schedule (${w.ticks} ticks in 1.5 s at 200 ms)`)
    t.ok(w.polls >= 5, `${name}: nearly every tick is a poll, the dead device costs it nothing (${w.polls} of ${w.ticks})`)
  }
  t.same(numbersOf(events(r.sink, 'live-tcp')[0]), { v: 7 })
  t.same(numbersOf(events(r.sink, 'live-rtu')[0]), { v: 8 })

  const f = failures(r.pipeline)
  t.ok((f.timeout ?? 0) >= 4, `both dead devices counted as timeouts (${f.timeout ?? 0})`)
  t.equal(f.connect, undefined, 'a silent device is a timeout, not a connection failure')
  t.equal(silent.connections(), 1, 'a device that never answers keeps its connection')
  const logs = r.logs()
  for (const id of ['dead-tcp', 'dead-rtu']) {
    t.equal(lines(logs, FAILING, id).length, 1, `${id}: one line for the change to failing`)
    t.match(lines(logs, 'modbus device failing', id)[0], { reason: 'timeout', detail: 'no answer within 300 ms' })
  }
  t.same(lines(logs, /failing|recovered/).filter(l => String(l.device).startsWith('live')), [])

  // A request is in flight or due on the dead connections: stop() does not wait for it to time out.
  const started = Date.now()
  await Promise.all([deadTcp.stop(), deadRtu.stop()])
  t.ok(Date.now() - started < 1000, `stop() is prompt (${Date.now() - started} ms)`)
})

t.test('an unreachable device: start() does not wait, `connect` counted, recovers once the server appears', async t => {
  const port = await freePort()
  const r = rig(t)
  const started = Date.now()
  const source = await r.source({ tcp: { host: '127.0.0.1', port }, timeout: '1s', devices: [{ id: 'late', interval: '200ms', registers: [{ name: 'v', address: 3 }] }] })
  t.ok(Date.now() - started < 1000, 'start() resolved without the device')
  await waitFor('a connect failure counted', () => (failures(r.pipeline).connect ?? 0) >= 1, 5000)
  t.same(r.sink.events, [])
  await modbusServer(t, { 1: { holding: { 3: 1500 } } }, port)
  await waitFor('a reading once the server is up', () => events(r.sink, 'late').length >= 2, 10_000)
  await source.stop()

  t.same(numbersOf(events(r.sink, 'late')[0]), { v: 1500 })
  const status = source.devices()[0]
  t.equal(status?.health, 'ok')
  const f = failures(r.pipeline)
  t.ok((f.connect ?? 0) >= 1, `counted as connect (${f.connect ?? 0})`)
  t.equal(f.timeout, undefined)
  t.equal(status?.failedPolls, f.connect, 'one count per failed poll')
  const logs = r.logs()
  t.match(lines(logs, FAILING, 'late'), [{ msg: 'modbus device failing', reason: 'connect', unitId: 1, level: 40 }])
  t.equal(lines(logs, FAILING, 'late').length, 1, 'logged once on failure')
  const recovered = lines(logs, /^modbus device recovered after \d+ failed polls$/, 'late')
  t.equal(recovered.length, 1, 'logged once on recovery')
  t.match(recovered[0], { level: 30, failedPolls: f.connect, msg: `modbus device recovered after ${f.connect ?? 0} failed polls` })
  t.equal(lines(logs, 'modbus connection failed').length, 1, 'the connection failure logged once however many attempts')
  t.match(lines(logs, 'modbus connection failed')[0], { reason: /ECONNREFUSED/ })
  t.equal(lines(logs, 'modbus connection open').length, 1)
})

t.test('a serial line that goes away (adapter unplugged) is reopened once it is back', async t => {
  // Not t.testdir(): the pty links sit in a short path outside the repository.
  const dir = mkdtempSync(join(tmpdir(), 'edgefwd-modbus-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const units = { 1: { holding: { 0: 5 } } }
  const first = await linkedPty(t, dir)
  const bus = startRtuSlave(t, first.device, { units })
  const r = rig(t)
  const source = await r.source({ rtu: { path: first.gateway, baud: 115200 }, timeout: '1s', devices: [{ id: 'plug', interval: '100ms', registers: [{ name: 'v', address: 0 }] }] })
  await waitFor('a reading', () => events(r.sink, 'plug').length >= 1, 5000)
  bus.close()
  await first.kill()
  await waitFor('the line counted as gone', () => (failures(r.pipeline).connect ?? 0) >= 1, 5000)
  const before = events(r.sink, 'plug').length
  const second = await linkedPty(t, dir)
  startRtuSlave(t, second.device, { units })
  await waitFor('readings again', () => events(r.sink, 'plug').length > before, 10_000)
  await source.stop()

  t.same(numbersOf(events(r.sink, 'plug').at(-1)), { v: 5 })
  const logs = r.logs()
  t.equal(lines(logs, 'modbus connection lost').length, 1, 'the loss logged once')
  t.equal(lines(logs, 'modbus connection open').length, 2, 'opened, then reopened')
  t.ok(lines(logs, FAILING, 'plug').length >= 1)
  t.equal(lines(logs, /^modbus device recovered/, 'plug').length, 1)
  t.equal(source.devices()[0]?.health, 'ok')
  t.equal(r.pipeline.counters().transports.modbus?.connections, 2)
})
