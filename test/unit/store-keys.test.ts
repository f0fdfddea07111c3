/**
 * Store key layout 2: text keys whose byte order is numeric order (the drain, eviction and the
 * expiry sweep all rely on it), and that read back to the numbers they were made from.
 */
import fc from 'fast-check'
import t from 'tap'
import { EVENT_KEY_BYTES, EXPIRY_KEY_BYTES, compareExpiry, entryOfExpiryKey, eventKey, expiryKey, expiryRange, idOfReportKey, priorityRange, reportKey, seqOfEventKey } from '../../src/store/keys.js'
import type { Priority } from '../../src/types.js'

const seq = fc.oneof(fc.integer({ min: 0, max: 2 ** 32 + 5 }), fc.maxSafeInteger().filter(n => n >= 0), fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1))
const priority = fc.constantFrom<Priority>(0, 1, 2, 3)
const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

t.test('event keys: fixed size, printable, read back, ordered by priority then seq', async t => {
  fc.assert(fc.property(priority, seq, priority, seq, (p1, s1, p2, s2) => {
    const k1 = eventKey(p1, s1)
    const k2 = eventKey(p2, s2)
    if (k1.length !== EVENT_KEY_BYTES || Buffer.byteLength(k1) !== EVENT_KEY_BYTES || !/^e[0-3][0-9a-f]{14}$/.test(k1)) return false
    if (seqOfEventKey(k1) !== s1) return false
    const { gte, lt } = priorityRange(p1)
    if (!(byteOrder(gte, k1) <= 0 && byteOrder(k1, lt) < 0)) return false
    return Math.sign(byteOrder(k1, k2)) === Math.sign(p1 - p2 || s1 - s2)
  }), { numRuns: 2000 })
  t.pass('2000 random pairs')
  t.ok(Number.isNaN(seqOfEventKey('e1zz')), 'a malformed key reads as NaN, not as some other seq')
})

t.test('expiry keys: read back, byte order is deadline, priority, seq order; ranges select what is due', async t => {
  const entry = fc.record({ expiresAt: seq, priority, seq })
  fc.assert(fc.property(entry, entry, (a, b) => {
    const ka = expiryKey(a)
    if (ka.length !== EXPIRY_KEY_BYTES || Buffer.byteLength(ka) !== EXPIRY_KEY_BYTES) return false
    const back = entryOfExpiryKey(ka)
    if (back.expiresAt !== a.expiresAt || back.priority !== a.priority || back.seq !== a.seq) return false
    if (Math.sign(byteOrder(ka, expiryKey(b))) !== Math.sign(compareExpiry(a, b))) return false
    // Due before b.expiresAt: exactly the entries with an earlier deadline.
    const { gte, lt } = expiryRange(b.expiresAt, undefined)
    const inRange = byteOrder(gte as string, ka) <= 0 && byteOrder(ka, lt) < 0
    return inRange === (a.expiresAt < b.expiresAt)
  }), { numRuns: 2000 })
  t.pass('2000 random pairs')
})

t.test('report keys read back and sort by id', async t => {
  fc.assert(fc.property(seq, seq, (a, b) => idOfReportKey(reportKey(a)) === a && Math.sign(byteOrder(reportKey(a), reportKey(b))) === Math.sign(a - b)), { numRuns: 1000 })
  t.pass('1000 random pairs')
})
