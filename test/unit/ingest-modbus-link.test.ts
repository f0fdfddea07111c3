/**
 * ModbusLink (src/ingest/sources/modbus/link.ts) against misbehaving Modbus TCP peers on
 * loopback: garbage, a wrong unit id, short and lying responses, a closed socket, exceptions, an
 * unreachable port. Each outcome is classified, and the process survives all of them (an
 * exception thrown from a socket handler would end this test process).
 */
import type net from 'node:net'
import t, { type Test } from 'tap'
import { loadModbusSerial, type ReadOutcome, type ReadRequest } from '../../src/ingest/sources/modbus/client.js'
import { ModbusLink } from '../../src/ingest/sources/modbus/link.js'
import type { LogRecord } from '../helpers/log-lines.js'
import { captureLogger } from '../helpers/logger.js'
import type { RegisterBank } from '../helpers/modbus-bank.js'
import { mbap, scriptedServer, type MbapRequest } from '../helpers/modbus-tcp.js'
import { freePort, waitFor } from '../helpers/wait.js'

type Behaviour = (request: MbapRequest, socket: net.Socket, answer: (bank: RegisterBank) => Buffer) => void

const BANK: RegisterBank = { holding: { 0: 11, 1: 22 } }
const READ: ReadRequest = { unitId: 1, table: 'holding', address: 0, count: 2 }
const good: Behaviour = (_r, socket, answer) => { socket.write(answer(BANK)) }

/** A server that answers the n-th request with behaviours[n] (the last one repeats), and a started link to it. */
async function linked (t: Test, behaviours: Behaviour[], timeoutMs = 200): Promise<{ link: ModbusLink, connections: () => number, logs: () => LogRecord[] }> {
  let n = 0
  const server = await scriptedServer(t, (request, socket, answer) => {
    const behave = behaviours[Math.min(n++, behaviours.length - 1)] as Behaviour
    behave(request, socket, answer)
  })
  const { logger, records } = captureLogger('debug')
  const link = new ModbusLink({ target: { kind: 'tcp', host: '127.0.0.1', port: server.port }, timeoutMs, logger })
  link.start(await loadModbusSerial())
  t.teardown(async () => { await link.stop(2000) })
  return { link, connections: server.connections, logs: records }
}

t.test('a good answer: the values and the bytes on the wire', async t => {
  const { link } = await linked(t, [good])
  t.same(await link.read(READ), { ok: true, values: [11, 22], bytes: 9 + 4 })
  t.same(await link.read({ unitId: 1, table: 'coil', address: 0, count: 3 }), { ok: false, failure: 'exception', exceptionCode: 2, detail: 'exception 2 (ILLEGAL DATA ADDRESS)' }, 'the bank has no coils')
})

t.test('an exception answer is classified with its code and name', async t => {
  const { link } = await linked(t, [(r, socket) => { socket.write(mbap(r.transactionId, r.unitId, Buffer.from([0x83, 0x0b]))) }])
  t.same(await link.read(READ), { ok: false, failure: 'exception', exceptionCode: 11, detail: 'exception 11 (GATEWAY TARGET DEVICE FAILED TO RESPOND)' })
})

t.test('an answer from another unit id, of the wrong length, or with a lying byte count is a bad response', async t => {
  const { link, connections } = await linked(t, [
    (r, socket) => { socket.write(mbap(r.transactionId, 9, Buffer.from([3, 4, 0, 11, 0, 22]))) },
    (r, socket) => { socket.write(mbap(r.transactionId, r.unitId, Buffer.from([3, 2, 0, 11]))) },
    (r, socket) => { socket.write(mbap(r.transactionId, r.unitId, Buffer.from([3, 200, 0, 11, 0, 22]))) },
    (r, socket) => { socket.write(mbap(r.transactionId, r.unitId, Buffer.from([4, 4, 0, 11, 0, 22]))) },
    good
  ])
  const outcomes: ReadOutcome[] = []
  for (let i = 0; i < 5; i++) outcomes.push(await link.read(READ))
  t.match(outcomes[0], { ok: false, failure: 'bad_response', detail: /address/ }, 'wrong unit id')
  t.match(outcomes[1], { ok: false, failure: 'bad_response', detail: /length/ }, 'short')
  t.match(outcomes[2], { ok: false, failure: 'bad_response' }, 'byte count beyond the frame')
  t.match(outcomes[3], { ok: false, failure: 'bad_response', detail: /code/ }, 'another function code')
  t.same(outcomes[4], { ok: true, values: [11, 22], bytes: 13 }, 'the next request is fine')
  t.equal(connections(), 1, 'whole frames, even wrong ones, keep the stream in step: no reconnect')
})

t.test('garbage: the request times out, the connection is dropped and reopened, the next request works', async t => {
  const { link, connections, logs } = await linked(t, [
    (_r, socket) => { socket.write(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x12])) },
    good
  ])
  t.match(await link.read(READ), { ok: false, failure: 'timeout' })
  await waitFor('the link reopened', () => link.isOpen && connections() === 2, 5000)
  t.same(await link.read(READ), { ok: true, values: [11, 22], bytes: 13 })
  t.match(logs().find(l => l.msg === 'modbus connection lost'), { reason: /out of step/ })
})

t.test('a socket closed by the device fails the request at once as connect; the link reconnects', async t => {
  const { link, connections } = await linked(t, [(_r, socket) => { socket.destroy() }, good], 5000)
  const started = Date.now()
  t.match(await link.read(READ), { ok: false, failure: 'connect', detail: /connection lost/ })
  t.ok(Date.now() - started < 1000, 'not after the 5 s timeout')
  t.match(await link.read(READ), { ok: false, failure: 'connect' }, 'while waiting to reconnect: at once')
  await waitFor('the link reopened', () => link.isOpen, 5000)
  t.same(await link.read(READ), { ok: true, values: [11, 22], bytes: 13 })
  t.equal(connections(), 2)
})

t.test('requests go one at a time, in order', async t => {
  let inFlight = 0
  let most = 0
  const { link } = await linked(t, [(r, socket, answer) => {
    inFlight++
    most = Math.max(most, inFlight)
    setTimeout(() => { inFlight--; socket.write(answer({ holding: { [r.address]: r.address, [r.address + 1]: 0 } })) }, 20)
  }])
  const results = await Promise.all([0, 1, 2, 3, 4].map(async a => await link.read({ unitId: 1, table: 'holding', address: a, count: 2 })))
  t.same(results.map(r => r.ok ? r.values[0] : -1), [0, 1, 2, 3, 4])
  t.equal(most, 1, 'never two requests at the device at once')
})

t.test('an unreachable port: the first request waits for the attempt, then fails as connect; stop() is prompt', async t => {
  const port = await freePort()
  const { logger, records } = captureLogger('debug')
  const link = new ModbusLink({ target: { kind: 'tcp', host: '127.0.0.1', port }, timeoutMs: 200, logger })
  link.start(await loadModbusSerial())
  t.match(await link.read(READ), { ok: false, failure: 'connect', detail: /ECONNREFUSED/ })
  t.match(await link.read(READ), { ok: false, failure: 'connect' })
  const started = Date.now()
  await link.stop(2000)
  t.ok(Date.now() - started < 500, 'stop() clears the reconnect timer at once')
  t.match(await link.read(READ), { ok: false, failure: 'connect' }, 'after stop()')
  t.match(records().filter(l => l.msg === 'modbus connection failed'), [{ level: 40, reason: /ECONNREFUSED/ }])
})
