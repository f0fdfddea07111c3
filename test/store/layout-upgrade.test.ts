/**
 * A store written by an earlier build (key layout 1: binary keys) opens with every event, report,
 * deadline, drop total and sequence intact, its keys converted to layout 2, also when an earlier
 * conversion was cut off half-way.
 */
import { ClassicLevel } from 'classic-level'
import t from 'tap'
import { decodeBatch, encodeEvent, encodeEvictionReport } from '../../src/proto/codec.js'
import { openLevelStore } from '../../src/store/index.js'
import { eventKey } from '../../src/store/keys.js'
import type { EventRecord, Priority } from '../../src/types.js'
import { silentLogger } from '../helpers/logger.js'

const NOW = 1_700_000_000_000

function u64 (n: number): Buffer {
  const b = Buffer.alloc(8)
  b.writeUInt32BE(Math.floor(n / 0x1_0000_0000), 0)
  b.writeUInt32BE(n >>> 0, 4)
  return b
}
const v1Event = (priority: Priority, seq: number): Buffer => Buffer.concat([Buffer.from([0x65, priority]), u64(seq)])
const v1Report = (id: number): Buffer => Buffer.concat([Buffer.from([0x72]), u64(id)])
const v1Expiry = (at: number, priority: Priority, seq: number): Buffer => Buffer.concat([Buffer.from([0x78]), u64(at), Buffer.from([priority]), u64(seq)])

function ev (deviceSeq: number, priority: Priority, expiresAtMs?: number): EventRecord {
  const e: EventRecord = { deviceId: 'plc-1', deviceSeq, gatewayTimeMs: NOW, priority, stream: 's', value: { kind: 'raw', raw: new Uint8Array(50) } }
  if (expiresAtMs !== undefined) e.expiresAtMs = expiresAtMs
  return e
}

/** Writes a layout-1 store: events seq 1-3 (normal), 4 (critical, with a deadline), one pending report, meta. */
async function writeLayout1 (path: string, options: { alreadyConverted: number[] } = { alreadyConverted: [] }): Promise<void> {
  const db = new ClassicLevel<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await db.open()
  const events: Array<[Priority, number, EventRecord]> = [[1, 1, ev(1, 1)], [1, 2, ev(2, 1)], [1, 3, ev(3, 1)], [3, 4, ev(4, 3, NOW + 60_000)]]
  for (const [priority, seq, record] of events) {
    const value = Buffer.from(encodeEvent(record, seq))
    // A conversion cut off by a crash: some events already under their new key, none under both.
    if (options.alreadyConverted.includes(seq)) await db.put(Buffer.from(eventKey(priority, seq)), value)
    else await db.put(v1Event(priority, seq), value)
  }
  await db.put(v1Expiry(NOW + 60_000, 3, 4), Buffer.alloc(0))
  const report = { counts: [{ priority: 0 as Priority, reason: 'evicted_for_space' as const, count: 2, bytes: 140, firstGatewayTimeMs: NOW - 5, lastGatewayTimeMs: NOW - 1 }], ranges: [], rangesTruncated: false }
  await db.put(v1Report(7), Buffer.from(encodeEvictionReport(report)))
  // Layout-1 byte counts: 10-byte event keys, 18-byte index keys.
  const meta = { v: 1, nextSeq: 5, nextReportId: 8, live: [[0, 0], [3, 3 * 10 + 3 * 66], [0, 0], [1, 10 + 75 + 18]], drops: { '0:evicted_for_space': [2, 140] } }
  await db.put(Buffer.from('m'), Buffer.from(JSON.stringify(meta)))
  await db.close()
}

async function layout1Keys (path: string): Promise<number> {
  const db = new ClassicLevel<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await db.open()
  let n = 0
  for await (const key of db.keys()) if (key.length > 1 && (key[1] as number) < 0x30) n++
  await db.close()
  return n
}

for (const alreadyConverted of [[], [1, 4]]) {
  t.test(`a layout-1 store opens whole${alreadyConverted.length > 0 ? ', after a conversion cut off half-way' : ''}`, async t => {
    const path = `${t.testdir()}/store`
    await writeLayout1(path, { alreadyConverted })
    const clock = { now: NOW }
    const store = await openLevelStore(path, { capacityBytes: 1 << 20, expiryIntervalMs: 0, now: () => clock.now }, silentLogger())

    const stats = store.stats()
    t.same(stats.perPriority.map(p => p.events), [0, 3, 0, 1], 'every event')
    t.same(stats.drops.map(d => [d.priority, d.reason, d.count]), [['low', 'evicted_for_space', 2]], 'the drop totals')
    t.equal(stats.nextSeq, 5, 'the sequence goes on')
    // Layout 2: 16-byte event keys, 30-byte index keys.
    const valueBytes = (e: EventRecord, seq: number): number => encodeEvent(e, seq).byteLength
    t.same([stats.perPriority[1]!.bytes, stats.perPriority[3]!.bytes],
      [3 * 16 + valueBytes(ev(1, 1), 1) + valueBytes(ev(2, 1), 2) + valueBytes(ev(3, 1), 3), 16 + valueBytes(ev(4, 3, NOW + 60_000), 4) + 30],
      'bytes recounted with the new key sizes')

    const lease = await store.lease(10, 1 << 20)
    t.same(decodeBatch(lease!.batch).map(e => [e.priority, e.storeSeq]), [[3, 4], [1, 1], [1, 2], [1, 3]], 'drained in order')
    t.same(lease!.report?.counts.map(c => c.count), [2], 'the pending report travels with the next batch')
    store.nack(lease!.id)

    clock.now += 61_000
    t.equal(await store.expire(), 1, 'the deadline still expires the critical event')
    const appended = await store.append([ev(9, 2)])
    t.equal(appended.accepted, 1)
    const next = await store.lease(10, 1 << 20)
    t.same(decodeBatch(next!.batch).map(e => e.storeSeq), [5, 1, 2, 3], 'a new event gets seq 5')
    await store.ack(next!.id)
    t.equal(store.stats().events, 0)
    await store.close()
    t.equal(await layout1Keys(path), 0, 'no layout-1 key is left')
  })
}
