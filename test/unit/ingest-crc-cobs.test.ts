// CRC32C and COBS, the two byte-level codecs of the device protocol (firmware-bridge/PROTOCOL.md §1).
import { Buffer } from 'node:buffer'
import fc from 'fast-check'
import t from 'tap'
import { cobsDecode, cobsDecodeInto, cobsEncode, cobsEncodeInto, cobsMaxEncodedLength, crc32c } from '../../src/ingest/index.js'

const bytes = (...xs: number[]): Uint8Array => Uint8Array.from(xs)
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** Bit-at-a-time CRC32C straight from the definition, to check the table-driven one. */
function crc32cBitwise (data: Uint8Array): number {
  let crc = 0xffffffff
  for (const b of data) {
    crc ^= b
    for (let k = 0; k < 8; k++) crc = (crc & 1) !== 0 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1
  }
  return (crc ^ 0xffffffff) >>> 0
}

t.test('CRC32C known answers (PROTOCOL.md §1, RFC 3720 B.4)', async t => {
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283)
  t.equal(crc32c(new Uint8Array(0)), 0)
  t.equal(crc32c(new Uint8Array(32)), 0x8a9136aa, '32 zero bytes')
  t.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43, '32 0xFF bytes')
  t.equal(crc32c(Uint8Array.from(range(0, 31))), 0x46dd794e, '0..31')
  t.equal(crc32c(Uint8Array.from(range(0, 31).reverse())), 0x113fdb5c, '31..0')
})

t.test('CRC32C over a range equals the CRC of the slice, for every length mod 8 and offset', async t => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), (data, a, b) => {
    const start = data.length === 0 ? 0 : a % (data.length + 1)
    const end = start + (data.length === 0 ? 0 : b % (data.length - start + 1))
    const expected = crc32cBitwise(data.subarray(start, end))
    return crc32c(data, start, end) === expected && crc32c(data.slice(start, end)) === expected
  }), { numRuns: 2000 })
  t.pass('2000 generated cases')
})

// Wikipedia's COBS examples (the variant PROTOCOL.md uses: no trailing 0x01 after a full block).
const examples: Array<[string, number[], number[]]> = [
  ['a zero', [0x00], [0x01, 0x01]],
  ['two zeros', [0x00, 0x00], [0x01, 0x01, 0x01]],
  ['zero in the middle', [0x00, 0x11, 0x00], [0x01, 0x02, 0x11, 0x01]],
  ['mixed', [0x11, 0x22, 0x00, 0x33], [0x03, 0x11, 0x22, 0x02, 0x33]],
  ['no zero', [0x11, 0x22, 0x33, 0x44], [0x05, 0x11, 0x22, 0x33, 0x44]],
  ['trailing zeros', [0x11, 0x00, 0x00, 0x00], [0x02, 0x11, 0x01, 0x01, 0x01]],
  ['254 non-zero bytes: one full block, nothing after it', range(1, 254), [0xff, ...range(1, 254)]],
  ['255 bytes starting with a zero', [0x00, ...range(1, 254)], [0x01, 0xff, ...range(1, 254)]],
  ['255 non-zero bytes: a full block and a 1-byte block', range(1, 255), [0xff, ...range(1, 254), 0x02, 0xff]],
  ['254 non-zero bytes then a zero', [...range(2, 255), 0x00], [0xff, ...range(2, 255), 0x01, 0x01]],
  ['253 non-zero bytes then a zero then one', [...range(3, 255), 0x00, 0x01], [0xfe, ...range(3, 255), 0x02, 0x01]]
]

t.test('COBS encodes and decodes the reference examples', async t => {
  for (const [name, plain, encoded] of examples) {
    t.equal(hex(cobsEncode(Uint8Array.from(plain))), hex(Uint8Array.from(encoded)), `encode: ${name}`)
    t.equal(hex(cobsDecode(Uint8Array.from(encoded)) ?? bytes()), hex(Uint8Array.from(plain)), `decode: ${name}`)
  }
  t.equal(hex(cobsEncode(bytes())), '01', 'the empty frame is one code byte')
  t.equal(hex(cobsDecode(bytes(0x01)) ?? bytes(0xee)), '', 'and decodes back to nothing')
})

t.test('COBS at the 254/255 block boundaries, with zeros anywhere', async t => {
  for (const n of [253, 254, 255, 256, 507, 508, 509, 510, 762]) {
    for (const zeroAt of [-1, 0, 1, 253, 254, n - 1]) {
      const plain = Uint8Array.from({ length: n }, (_, i) => i === zeroAt ? 0 : 1 + (i % 255))
      const encoded = cobsEncode(plain)
      t.notOk(encoded.includes(0), `n=${n} zero at ${zeroAt}: no zero in the encoding`)
      t.ok(encoded.length <= cobsMaxEncodedLength(n), `n=${n}: within the bound`)
      t.equal(hex(cobsDecode(encoded) ?? bytes()), hex(plain), `n=${n} zero at ${zeroAt}: round trip`)
    }
  }
})

t.test('COBS decoding tolerates a trailing 0x01 after a full block (some encoders write one)', async t => {
  t.equal(hex(cobsDecode(Uint8Array.from([0xff, ...range(1, 254), 0x01])) ?? bytes()), hex(Uint8Array.from(range(1, 254))))
})

t.test('invalid COBS is refused without throwing', async t => {
  t.equal(cobsDecode(bytes()), undefined, 'empty input')
  t.equal(cobsDecode(bytes(0x05, 0x11, 0x22)), undefined, 'a block running past the end')
  t.equal(cobsDecode(bytes(0x03, 0x11, 0x00, 0x01)), undefined, 'a zero inside a block')
  t.equal(cobsDecode(bytes(0x02, 0x11, 0x00)), undefined, 'a zero code byte')
  t.equal(cobsDecodeInto(bytes(0xff, 1, 2), 0, 3, new Uint8Array(10), 0), -1)
})

t.test('COBS round trip, any bytes (property)', async t => {
  fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 1200 }), fc.array(fc.constantFrom(0, 1, 255), { maxLength: 1200 }).map((a) => Uint8Array.from(a))), (plain) => {
    const encoded = cobsEncode(plain)
    if (encoded.includes(0) || encoded.length > cobsMaxEncodedLength(plain.length)) return false
    // Overhead: at most one byte per 254, plus one.
    if (encoded.length > plain.length + Math.ceil(plain.length / 254) + 1) return false
    return hex(cobsDecode(encoded) ?? bytes(0xee)) === hex(plain)
  }), { numRuns: 1500 })
  t.pass('1500 generated cases')
})

t.test('cobsDecodeInto decodes in place and cobsEncodeInto writes at an offset', async t => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 700 }), fc.nat(20), (plain, at) => {
    const out = new Uint8Array(at + cobsMaxEncodedLength(plain.length)).fill(0xaa)
    const n = cobsEncodeInto(plain, 0, plain.length, out, at)
    if (out.subarray(0, at).some((b) => b !== 0xaa)) return false
    const inPlace = out.slice(at, at + n)
    const m = cobsDecodeInto(inPlace, 0, n, inPlace, 0)
    return m === plain.length && hex(inPlace.subarray(0, m)) === hex(plain)
  }), { numRuns: 800 })
  t.pass('800 generated cases')
})

t.test('cobsDecode never throws and never returns a longer frame than its input', async t => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (garbage) => {
    const d = cobsDecode(garbage)
    return d === undefined || d.length < garbage.length
  }), { numRuns: 3000 })
  t.pass('3000 generated cases')
})
