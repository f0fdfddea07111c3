/**
 * Modbus register decoding (src/ingest/sources/modbus/decode.ts) and the read plan (plan.ts).
 * Expected words are packed with Buffer (test/helpers/modbus-bank.ts), not with the code under test.
 */
import t from 'tap'
import { modbusConnections } from '../../src/config/source-schema.js'
import { decodeRaw, registerValue, resolveRegisters, type RegisterSpec } from '../../src/ingest/sources/modbus/decode.js'
import { DEFAULT_PLAN, GAPLESS_PLAN, MAX_READ_BITS, MAX_READ_REGISTERS, planReads, type PlannedRead } from '../../src/ingest/sources/modbus/plan.js'
import { words32 } from '../helpers/modbus-bank.js'

function reg (over: Partial<RegisterSpec> & Pick<RegisterSpec, 'address'>): RegisterSpec {
  return { name: `r${over.address}`, stream: 'modbus', table: 'holding', type: 'uint16', wordOrder: 'big', scale: 1, offset: 0, ...over }
}

/** A plan as [table, address, count, gaps, field names with their index]. */
function shape (plan: readonly PlannedRead[]): unknown[] {
  return plan.map(r => [r.table, r.address, r.count, r.gaps, r.fields.map(f => `${f.register.name}@${f.index}`)])
}

t.test('16-bit types: uint16 as is, int16 two\'s complement', async t => {
  t.equal(decodeRaw([0xfb2e], 0, 'uint16', 'big'), 64302)
  t.equal(decodeRaw([0xfb2e], 0, 'int16', 'big'), -1234)
  t.equal(decodeRaw([0x8000], 0, 'int16', 'big'), -32768)
  t.equal(decodeRaw([0x7fff], 0, 'int16', 'little'), 32767, 'word order does not apply to one register')
  t.equal(decodeRaw([0xffff], 0, 'int16', 'big'), -1)
  t.equal(decodeRaw([0, 0, 0xffff], 2, 'uint16', 'big'), 65535, 'at an index')
})

t.test('32-bit types in both word orders', async t => {
  for (const order of ['big', 'little'] as const) {
    t.equal(decodeRaw(words32('int32', -100_000, order), 0, 'int32', order), -100_000, `int32 negative, ${order}`)
    t.equal(decodeRaw(words32('int32', 123_456_789, order), 0, 'int32', order), 123_456_789, `int32, ${order}`)
    t.equal(decodeRaw(words32('int32', -2_147_483_648, order), 0, 'int32', order), -2_147_483_648, `int32 min, ${order}`)
    t.equal(decodeRaw(words32('uint32', 4_000_000_000, order), 0, 'uint32', order), 4_000_000_000, `uint32 above 2^31, ${order}`)
    t.equal(decodeRaw(words32('float32', 3.5, order), 0, 'float32', order), 3.5, `float32, ${order}`)
    t.equal(decodeRaw(words32('float32', -0.15625, order), 0, 'float32', order), -0.15625, `float32 negative, ${order}`)
  }
  // The same two words read in the other order are another number: the order is applied.
  const big = words32('int32', 0x00010002, 'big')
  t.same(big, [0x0001, 0x0002])
  t.equal(decodeRaw(big, 0, 'int32', 'little'), 0x00020001)
  t.same(words32('float32', 1, 'little'), [0x0000, 0x3f80], 'float32 1.0 low word first')
  t.equal(decodeRaw([0x0000, 0x3f80], 0, 'float32', 'little'), 1)
  t.equal(decodeRaw([0x3f80, 0x0000], 0, 'float32', 'big'), 1)
  t.equal(decodeRaw([9, 0x3f80, 0x0000], 1, 'float32', 'big'), 1, 'at an index')
})

t.test('float32 NaN and infinities decode as such (the poller leaves them out)', async t => {
  t.ok(Number.isNaN(decodeRaw([0x7fc0, 0x0000], 0, 'float32', 'big')))
  t.equal(decodeRaw([0x7f80, 0x0000], 0, 'float32', 'big'), Infinity)
  t.equal(decodeRaw([0x0000, 0xff80], 0, 'float32', 'little'), -Infinity)
})

t.test('bool is 1/0; value = raw * scale + offset for every type', async t => {
  t.equal(decodeRaw([1], 0, 'bool', 'big'), 1)
  t.equal(decodeRaw([0], 0, 'bool', 'big'), 0)
  t.equal(registerValue({ type: 'uint16', wordOrder: 'big', scale: 0.1, offset: 0 }, [215], 0), 21.5)
  t.equal(registerValue({ type: 'int16', wordOrder: 'big', scale: 0.5, offset: -10 }, [0xfffe], 0), -11, '-2 * 0.5 - 10')
  t.equal(registerValue({ type: 'int32', wordOrder: 'little', scale: 0.01, offset: 0 }, words32('int32', -100_000, 'little'), 0), -1000)
  t.equal(registerValue({ type: 'float32', wordOrder: 'big', scale: 2, offset: 1 }, words32('float32', 3.5, 'big'), 0), 8)
  t.equal(registerValue({ type: 'bool', wordOrder: 'big', scale: 10, offset: 5 }, [1], 0), 15)
  t.equal(registerValue({ type: 'bool', wordOrder: 'big', scale: 1, offset: 0 }, [0], 0), 0)
})

t.test('resolveRegisters applies the defaults: uint16/bool by table, the device stream and word order', async t => {
  const [connection] = modbusConnections.parse([{
    tcp: { host: '127.0.0.1' },
    devices: [{
      id: 'meter', stream: 'power', wordOrder: 'little',
      registers: [
        { name: 'v', address: 0 },
        { name: 'i', table: 'input', address: 3, type: 'int32', wordOrder: 'big', stream: 'current', scale: 0.1 },
        { name: 'on', table: 'coil', address: 7 },
        { name: 'alarm', table: 'discrete', address: 2, offset: 1 }
      ]
    }]
  }])
  const device = connection?.devices[0]
  if (device === undefined) throw new Error('no device parsed')
  t.same(resolveRegisters(device), [
    { name: 'v', stream: 'power', table: 'holding', address: 0, type: 'uint16', wordOrder: 'little', scale: 1, offset: 0 },
    { name: 'i', stream: 'current', table: 'input', address: 3, type: 'int32', wordOrder: 'big', scale: 0.1, offset: 0 },
    { name: 'on', stream: 'power', table: 'coil', address: 7, type: 'bool', wordOrder: 'little', scale: 1, offset: 0 },
    { name: 'alarm', stream: 'power', table: 'discrete', address: 2, type: 'bool', wordOrder: 'little', scale: 1, offset: 1 }
  ])
})

t.test('plan: a meter with 10 contiguous or nearby registers is one request per table', async t => {
  const registers = [
    reg({ address: 0 }), reg({ address: 1, type: 'int16' }), reg({ address: 2, type: 'float32' }), reg({ address: 4, type: 'int32' }),
    reg({ address: 6 }), reg({ address: 10, type: 'uint32' }), reg({ address: 20 }),
    reg({ name: 'in0', table: 'input', address: 100 }), reg({ name: 'in1', table: 'input', address: 101 }), reg({ name: 'in2', table: 'input', address: 105 })
  ]
  t.same(shape(planReads(registers)), [
    ['holding', 0, 21, true, ['r0@0', 'r1@1', 'r2@2', 'r4@4', 'r6@6', 'r10@10', 'r20@20']],
    ['input', 100, 6, true, ['in0@0', 'in1@1', 'in2@5']]
  ])
})

t.test('plan: contiguous without gaps is marked gapless; a gap above the bound splits', async t => {
  t.same(shape(planReads([reg({ address: 5, type: 'float32' }), reg({ address: 7 }), reg({ address: 8 })])), [['holding', 5, 4, false, ['r5@0', 'r7@2', 'r8@3']]])
  const gap = DEFAULT_PLAN.maxGapRegisters
  t.same(shape(planReads([reg({ address: 0 }), reg({ address: 1 + gap })])), [['holding', 0, 2 + gap, true, ['r0@0', `r${1 + gap}@${1 + gap}`]]], 'a gap of exactly maxGap joins')
  t.same(shape(planReads([reg({ address: 0 }), reg({ address: 2 + gap })])), [['holding', 0, 1, false, ['r0@0']], ['holding', 2 + gap, 1, false, [`r${2 + gap}@0`]]], 'one more splits')
})

t.test('plan: tables are never mixed; order is holding, input, coil, discrete, by address', async t => {
  const plan = planReads([
    reg({ name: 'd', table: 'discrete', address: 0, type: 'bool' }),
    reg({ name: 'c2', table: 'coil', address: 9, type: 'bool' }),
    reg({ name: 'h', address: 0 }),
    reg({ name: 'c1', table: 'coil', address: 0, type: 'bool' }),
    reg({ name: 'i', table: 'input', address: 0 })
  ])
  t.same(shape(plan), [
    ['holding', 0, 1, false, ['h@0']],
    ['input', 0, 1, false, ['i@0']],
    ['coil', 0, 10, true, ['c1@0', 'c2@9']],
    ['discrete', 0, 1, false, ['d@0']]
  ])
})

t.test('plan: at most 125 registers and 2000 bits per request', async t => {
  const words = planReads([reg({ address: 0 }), reg({ address: 124 }), reg({ address: 125 }), reg({ address: 123, type: 'uint32' })], { maxGapRegisters: 1000, maxGapBits: 0 })
  t.same(shape(words), [['holding', 0, 125, true, ['r0@0', 'r123@123', 'r124@124']], ['holding', 125, 1, false, ['r125@0']]])
  t.equal(MAX_READ_REGISTERS, 125)
  const wide = planReads([reg({ address: 0 }), reg({ address: 124, type: 'uint32' })], { maxGapRegisters: 1000, maxGapBits: 0 })
  t.same(shape(wide), [['holding', 0, 1, false, ['r0@0']], ['holding', 124, 2, false, ['r124@0']]], 'a 32-bit value that would cross 125 starts a new read')
  const bits = planReads([reg({ name: 'a', table: 'coil', address: 0, type: 'bool' }), reg({ name: 'b', table: 'coil', address: 1999, type: 'bool' }), reg({ name: 'c', table: 'coil', address: 2000, type: 'bool' })], { maxGapRegisters: 0, maxGapBits: 5000 })
  t.same(shape(bits), [['coil', 0, 2000, true, ['a@0', 'b@1999']], ['coil', 2000, 1, false, ['c@0']]])
  t.equal(MAX_READ_BITS, 2000)
})

t.test('plan: overlapping registers (two views of one address) share a read; the gapless plan splits holes', async t => {
  const registers = [reg({ name: 'signed', address: 4, type: 'int16' }), reg({ name: 'unsigned', address: 4 }), reg({ name: 'wide', address: 4, type: 'int32' }), reg({ address: 8 })]
  t.same(shape(planReads(registers)), [['holding', 4, 5, true, ['signed@0', 'unsigned@0', 'wide@0', 'r8@4']]])
  t.same(shape(planReads(registers, GAPLESS_PLAN)), [['holding', 4, 2, false, ['signed@0', 'unsigned@0', 'wide@0']], ['holding', 8, 1, false, ['r8@0']]])
  t.same(planReads([]), [], 'no registers, no reads')
})
