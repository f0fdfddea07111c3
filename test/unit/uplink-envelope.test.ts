import { randomBytes } from 'node:crypto'
import { gunzipSync, inflateSync } from 'node:zlib'
import t from 'tap'
import { concatBatch, decodeBatch, decodeEnvelope, encodeEvent } from '../../src/proto/codec.js'
import { compressBatch, encodeLeaseEnvelope } from '../../src/uplink/envelope.js'

function lease (n: number, raw: (i: number) => Uint8Array | undefined) {
  const events = Array.from({ length: n }, (_, i) => {
    const r = raw(i)
    return encodeEvent({ deviceId: `dev-${i % 5}`, deviceSeq: i + 1, gatewayTimeMs: 1_795_000_000_000 + i, priority: 1, stream: 'env',
      value: r === undefined ? { kind: 'numbers', numbers: { temp: 20 + (i % 7), rh: 40 } } : { kind: 'raw', raw: r } }, 100 + i)
  })
  return { events, batch: concatBatch(events), firstStoreSeq: 100, lastStoreSeq: 99 + n, report: undefined }
}

t.test('the envelope carries the lease: sequence numbers, count, gateway, batch; the events decode back', async t => {
  const l = lease(500, () => undefined)
  const { bytes, compression, batchBytes } = encodeLeaseEnvelope(l, { gatewayId: 'gw-7', batchSeq: 42, nowMs: 1_795_000_001_000 }, { compression: 'auto' })
  t.equal(compression, 'gzip', 'sensor readings compress')
  const e = decodeEnvelope(bytes)
  t.match(e, { schemaVersion: 1, gatewayId: 'gw-7', batchSeq: 42, compression: 'gzip', firstStoreSeq: 100, lastStoreSeq: 599, eventCount: 500, createdMs: 1_795_000_001_000 })
  t.notOk('evictionReport' in e, 'no report, no field')
  const events = decodeBatch(gunzipSync(e.payload))
  t.same(events.map(x => x.storeSeq), Array.from({ length: 500 }, (_, i) => 100 + i))
  t.ok(bytes.byteLength < batchBytes / 2, `${bytes.byteLength} bytes on the wire for a ${batchBytes}-byte batch`)
})

t.test('auto leaves small and incompressible batches alone; explicit choices are honoured', async t => {
  t.equal(compressBatch(lease(1, () => undefined).batch, { compression: 'auto' }).compression, 'none', 'too small to gain')
  t.equal(compressBatch(lease(50, () => randomBytes(2000)).batch, { compression: 'auto' }).compression, 'none', 'random bytes (encrypted payloads) do not shrink by a tenth')
  const b = lease(100, () => undefined).batch
  t.same(inflateSync(compressBatch(b, { compression: 'deflate', level: 6 }).payload), Buffer.from(b), 'deflate is the zlib format')
  t.same(gunzipSync(compressBatch(b, { compression: 'gzip' }).payload), Buffer.from(b))
  t.equal(compressBatch(b, { compression: 'none' }).payload, b)
})

t.test('an eviction report rides along', async t => {
  const report = { counts: [{ priority: 0 as const, reason: 'evicted_for_space' as const, count: 3, bytes: 600, firstGatewayTimeMs: 1, lastGatewayTimeMs: 2 }], ranges: [], rangesTruncated: false }
  const { bytes } = encodeLeaseEnvelope({ ...lease(3, () => undefined), report }, { gatewayId: 'g', batchSeq: 1, nowMs: 5 }, { compression: 'none' })
  t.match(decodeEnvelope(bytes).evictionReport, { counts: [{ reason: 'evicted_for_space', count: 3 }] })
})

t.test('deflate and gzip at any level decode back to the batch; none is the batch itself', async t => {
  const b = lease(100, () => undefined).batch
  t.same(inflateSync(compressBatch(b, { compression: 'deflate', level: 6 }).payload), Buffer.from(b))
  t.same(gunzipSync(compressBatch(b, { compression: 'gzip' }).payload), Buffer.from(b))
  t.equal(compressBatch(b, { compression: 'none' }).payload, b)
})
