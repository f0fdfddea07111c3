import t, { type Test } from 'tap'
import { deflateSync, gzipSync } from 'node:zlib'
import { isEdgefwdError } from '../../src/errors.js'
import { concatBatch, encodeEnvelope, encodeEvent, type CompressionName, type EnvelopeData } from '../../src/proto/codec.js'
import { decodeEnvelopeMessage } from '../../src/sink/decode.js'
import type { EventRecord } from '../../src/types.js'

function event (deviceSeq: number): EventRecord {
  return { deviceId: 'dev-1', deviceSeq, gatewayTimeMs: 1_700_000_000_000 + deviceSeq, priority: 1, stream: 's', value: { kind: 'number', number: deviceSeq / 2 } }
}

function envelope (compression: CompressionName, payload: Uint8Array, over: Partial<EnvelopeData> = {}): Uint8Array {
  return encodeEnvelope({
    schemaVersion: 1, gatewayId: 'gw-1', batchSeq: 7, compression, firstStoreSeq: 100, lastStoreSeq: 102,
    eventCount: 3, payload, createdMs: 1_700_000_000_999, ...over
  })
}

const batch = concatBatch([1, 2, 3].map((s) => encodeEvent(event(s), 99 + s)))

function rejects (t: Test, fn: () => unknown, pattern: RegExp): void {
  try {
    fn()
    t.fail('expected a decode error')
  } catch (err) {
    t.ok(isEdgefwdError(err, 'EDGEFWD_ERR_PROTO_DECODE'), 'EDGEFWD_ERR_PROTO_DECODE')
    t.match((err as Error).message, pattern)
  }
}

t.test('decodes each compression', async (t) => {
  const payloads: Record<CompressionName, Uint8Array> = { none: batch, gzip: gzipSync(batch), deflate: deflateSync(batch) }
  for (const [compression, payload] of Object.entries(payloads) as Array<[CompressionName, Uint8Array]>) {
    const { envelope: e, events } = decodeEnvelopeMessage(envelope(compression, payload))
    t.equal(e.compression, compression)
    t.equal(e.gatewayId, 'gw-1')
    t.equal(e.batchSeq, 7)
    t.same(events.map((x) => [x.deviceSeq, x.storeSeq]), [[1, 100], [2, 101], [3, 102]], compression)
    t.same(events[1]?.value, { kind: 'number', number: 1 })
  }
})

t.test('a decompression bomb is refused without inflating it', async (t) => {
  const bomb = Buffer.alloc(80 * 1024 * 1024) // 80 MiB of zeros gzips to ~80 KiB
  const gz = gzipSync(bomb, { level: 9 })
  t.ok(gz.length < 1024 * 1024)
  rejects(t, () => decodeEnvelopeMessage(envelope('gzip', gz)), /inflates beyond the limit of 67108864 bytes/)
  rejects(t, () => decodeEnvelopeMessage(envelope('deflate', deflateSync(batch)), { maxDecompressedBytes: 10 }), /deflate payload inflates beyond the limit of 10 bytes/)
  rejects(t, () => decodeEnvelopeMessage(envelope('none', batch), { maxDecompressedBytes: 10 }), /payload of \d+ bytes exceeds the limit of 10 bytes/)
})

t.test('bad input is EDGEFWD_ERR_PROTO_DECODE with a clear message', async (t) => {
  rejects(t, () => decodeEnvelopeMessage(Uint8Array.of(0xff, 0xff, 0xff)), /Envelope/)
  rejects(t, () => decodeEnvelopeMessage(envelope('gzip', batch)), /envelope "gw-1"#7: bad gzip payload/)
  rejects(t, () => decodeEnvelopeMessage(envelope('deflate', gzipSync(batch))), /bad deflate payload/)
  rejects(t, () => decodeEnvelopeMessage(envelope('none', Uint8Array.of(0x0a, 0x05, 0x01))), /bad payload/)
  rejects(t, () => decodeEnvelopeMessage(envelope('none', batch, { eventCount: 4 })), /payload holds 3 events, envelope says 4/)
  rejects(t, () => decodeEnvelopeMessage(envelope('none', batch, { schemaVersion: 2 })), /unsupported schema version 2/)
  t.throws(() => decodeEnvelopeMessage(envelope('none', batch), { maxDecompressedBytes: -1 }), RangeError)
})
