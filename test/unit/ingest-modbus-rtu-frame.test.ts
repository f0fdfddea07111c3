/**
 * RTU response framing (src/ingest/sources/modbus/rtu-frame.ts), fed in random chunk splits,
 * with garbage, and the stty arguments of a line (tty-port.ts).
 */
import fc from 'fast-check'
import t from 'tap'
import { crc16, expectedResponse, RtuResponseFramer } from '../../src/ingest/sources/modbus/rtu-frame.js'
import { sttyArgs } from '../../src/ingest/sources/modbus/tty-port.js'
import { answerRead, modbusCrc, rtuFrame } from '../helpers/modbus-bank.js'

/** An 8-byte read request (unit, function, address, count, CRC). */
function request (unitId: number, functionCode: number, address: number, count: number): Buffer {
  const pdu = Buffer.alloc(5)
  pdu[0] = functionCode
  pdu.writeUInt16BE(address, 1)
  pdu.writeUInt16BE(count, 3)
  return rtuFrame(unitId, pdu)
}

const HOLDING = { holding: { 0: 0x1234, 1: 0xabcd, 2: 7 } }
const RESPONSE = rtuFrame(5, answerRead(HOLDING, 3, 0, 3))

/** Feeds `bytes` in pieces cut at `cuts`; returns every frame the framer handed out. */
function feed (framer: RtuResponseFramer, bytes: Buffer, cuts: readonly number[] = []): Buffer[] {
  const out: Buffer[] = []
  let from = 0
  for (const cut of [...new Set(cuts)].filter(c => c > 0 && c < bytes.length).sort((a, b) => a - b).concat(bytes.length)) {
    const frame = framer.push(bytes.subarray(from, cut))
    if (frame !== undefined) out.push(frame)
    from = cut
  }
  return out
}

t.test('crc16 is CRC-16/MODBUS', async t => {
  t.equal(crc16(Buffer.from('123456789')), 0x4b37, 'the catalogue check value')
  t.equal(crc16(Buffer.from([0x01, 0x03, 0x00, 0x00, 0x00, 0x0a])), 0xcdc5, 'a textbook read request: C5 CD on the wire')
  const bytes = Buffer.from([9, 8, 7, 6, 5, 4, 3])
  t.equal(crc16(bytes, 2, 5), modbusCrc(bytes.subarray(2, 5)), 'a range')
})

t.test('expectedResponse: FC 1/2 by bits, FC 3/4 by registers, nothing for other functions', async t => {
  t.same(expectedResponse(request(1, 1, 0, 10)), { unitId: 1, functionCode: 1, length: 7 })
  t.same(expectedResponse(request(2, 2, 0, 16)), { unitId: 2, functionCode: 2, length: 7 })
  t.same(expectedResponse(request(3, 3, 0, 10)), { unitId: 3, functionCode: 3, length: 25 })
  t.same(expectedResponse(request(4, 4, 0, 125)), { unitId: 4, functionCode: 4, length: 255 })
  t.equal(expectedResponse(request(1, 6, 0, 1)), undefined)
  t.equal(expectedResponse(Buffer.from([1, 3])), undefined)
})

t.test('a response in any chunk split, with garbage and false starts before it, is found once and whole', async t => {
  // A false start: right unit and function, wrong CRC; then noise that repeats the unit id.
  const falseStart = Buffer.from(RESPONSE)
  falseStart[4] = (falseStart[4] as number) ^ 0xff
  const line = Buffer.concat([Buffer.from([0x00, 0xff, 5]), falseStart.subarray(0, 9), Buffer.from([5, 5, 3]), RESPONSE, Buffer.from([1, 2, 3])])
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: line.length - 1 }), { maxLength: 12 }), cuts => {
    const framer = new RtuResponseFramer()
    framer.expect(expectedResponse(request(5, 3, 0, 3)))
    const frames = feed(framer, line, cuts)
    return frames.length === 1 && (frames[0] as Buffer).equals(RESPONSE)
  }), { numRuns: 300 })
  t.pass('300 random splits')
})

t.test('an exception response is a 5-byte frame', async t => {
  const exception = rtuFrame(5, Buffer.from([0x83, 0x02]))
  const framer = new RtuResponseFramer()
  framer.expect(expectedResponse(request(5, 3, 100, 3)))
  t.same(feed(framer, Buffer.concat([Buffer.from([0xff]), exception]), [2, 4]), [exception])
})

t.test('what is not the expected response is never handed on', async t => {
  const framer = new RtuResponseFramer()
  t.same(feed(framer, RESPONSE), [], 'nothing expected: dropped')
  framer.expect(expectedResponse(request(6, 3, 0, 3)))
  t.same(feed(framer, RESPONSE), [], 'another unit')
  framer.expect(expectedResponse(request(5, 4, 0, 3)))
  t.same(feed(framer, RESPONSE), [], 'another function')
  framer.expect(expectedResponse(request(5, 3, 0, 2)))
  t.same(feed(framer, RESPONSE), [], 'another length (the byte count disagrees)')
  framer.expect(expectedResponse(request(5, 3, 0, 3)))
  t.same(feed(framer, RESPONSE.subarray(0, RESPONSE.length - 1)), [], 'one byte short')
  t.same(feed(framer, RESPONSE.subarray(RESPONSE.length - 1)), [RESPONSE], 'then complete')
  t.same(feed(framer, RESPONSE), [], 'a second copy (an echo, a late repeat) is not a second response')
})

t.test('a new request forgets what came before it', async t => {
  const framer = new RtuResponseFramer()
  framer.expect(expectedResponse(request(5, 3, 0, 3)))
  t.same(feed(framer, RESPONSE.subarray(0, 6)), [])
  framer.expect(expectedResponse(request(5, 3, 0, 3)))
  t.same(feed(framer, RESPONSE.subarray(6)), [], 'the tail of an old answer does not complete a new one')
  t.same(feed(framer, RESPONSE), [RESPONSE])
})

t.test('a flood of garbage keeps memory bounded and the response after it is still found', async t => {
  const framer = new RtuResponseFramer()
  framer.expect(expectedResponse(request(5, 3, 0, 3)))
  const noise = Buffer.alloc(5000, 0x55)
  t.same(feed(framer, noise, [100, 700, 1300, 4000]), [])
  t.same(feed(framer, Buffer.concat([noise.subarray(0, 3000), RESPONSE])), [RESPONSE], 'one chunk larger than the buffer, response at its end')
  framer.expect(expectedResponse(request(5, 3, 0, 3)))
  t.same(feed(framer, Buffer.concat([Buffer.alloc(300, 0x55), RESPONSE]), [300]), [RESPONSE])
})

t.test('stty arguments: raw, rate, parity, data and stop bits', async t => {
  t.same(sttyArgs({ baud: 9600, parity: 'none', dataBits: 8, stopBits: 1 }),
    ['raw', '-echo', '9600', '-parenb', 'cs8', '-cstopb', 'clocal', '-crtscts'])
  t.same(sttyArgs({ baud: 19200, parity: 'even', dataBits: 8, stopBits: 1 }),
    ['raw', '-echo', '19200', 'parenb', '-parodd', 'cs8', '-cstopb', 'clocal', '-crtscts'])
  t.same(sttyArgs({ baud: 1200, parity: 'odd', dataBits: 7, stopBits: 2 }),
    ['raw', '-echo', '1200', 'parenb', 'parodd', 'cs7', 'cstopb', 'clocal', '-crtscts'])
})
