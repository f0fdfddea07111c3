/**
 * A store lease as the bytes published on `<prefix>/<gateway>/events`: an Envelope (schema
 * version, gateway id, batch sequence, compression, first/last store sequence, eviction report,
 * event count, created time) around the lease's Batch, compressed when that pays.
 *
 * Compression `auto` is gzip at level 1 unless the batch is small or does not shrink by a tenth.
 * Measured here on 500-event batches of sensor readings (132 B/event encoded): level 1 gives
 * 34.0 B/event in 0.54 ms, level 3 32.9 B/event in 0.94 ms, level 6 31.6 B/event in 1.85 ms: level
 * 1 keeps almost all of the gain for a third of the CPU, which on a Pi is the scarcer resource.
 * Random bytes (encrypted or already compressed payloads) do not shrink: they go uncompressed.
 *
 * Compression is synchronous, on the uplink's own thread, between lease and publish. gzip on
 * the libuv thread pool with a pipelined pump (two batches compressing while the previous one is
 * published) was measured and not kept: 154-181k events/s against 161-182k (docs/benchmarks.md,
 * Uplink), the main thread idle more, not less.
 */
import { deflateSync, gzipSync } from 'node:zlib'
import { encodeEnvelope, type CompressionName } from '../proto/codec.js'
import type { Lease } from '../contracts.js'

export const ENVELOPE_SCHEMA_VERSION = 1

export interface CompressionOptions {
  /** `auto`: gzip when it saves at least a tenth, else none. */
  compression: 'auto' | CompressionName
  /** zlib level 1 (fastest) to 9; default 1. */
  level?: number
}

/** Batches smaller than this are sent as they are under `auto`: headers would eat the gain. */
const AUTO_MIN_BYTES = 256

export function compressBatch (batch: Uint8Array, options: CompressionOptions): { payload: Uint8Array, compression: CompressionName } {
  const level = options.level ?? 1
  switch (options.compression) {
    case 'none': return { payload: batch, compression: 'none' }
    case 'gzip': return { payload: gzipSync(batch, { level }), compression: 'gzip' }
    case 'deflate': return { payload: deflateSync(batch, { level }), compression: 'deflate' }
    case 'auto': {
      if (batch.byteLength < AUTO_MIN_BYTES) return { payload: batch, compression: 'none' }
      const zipped = gzipSync(batch, { level })
      return zipped.byteLength <= batch.byteLength * 0.9 ? { payload: zipped, compression: 'gzip' } : { payload: batch, compression: 'none' }
    }
  }
}

export interface EnvelopeContext {
  gatewayId: string
  /** Unique per gateway, increasing, never reused (with the gateway id, the receiver's dedupe key). */
  batchSeq: number
  nowMs: number
}

/** What an envelope needs of a lease (of its events, only the count). */
export type LeaseForEnvelope = Pick<Lease, 'batch' | 'firstStoreSeq' | 'lastStoreSeq' | 'report'> & { events: { length: number } }

export interface EncodedEnvelope { bytes: Uint8Array, compression: CompressionName, batchBytes: number }

export function encodeLeaseEnvelope (lease: LeaseForEnvelope, context: EnvelopeContext, options: CompressionOptions): EncodedEnvelope {
  const { payload, compression } = compressBatch(lease.batch, options)
  return wrap(lease, context, payload, compression)
}

function wrap (lease: LeaseForEnvelope, context: EnvelopeContext, payload: Uint8Array, compression: CompressionName): EncodedEnvelope {
  const envelope = {
    schemaVersion: ENVELOPE_SCHEMA_VERSION,
    gatewayId: context.gatewayId,
    batchSeq: context.batchSeq,
    compression,
    firstStoreSeq: lease.firstStoreSeq,
    lastStoreSeq: lease.lastStoreSeq,
    eventCount: lease.events.length,
    payload,
    createdMs: context.nowMs,
    ...(lease.report === undefined ? {} : { evictionReport: lease.report })
  }
  return { bytes: encodeEnvelope(envelope), compression, batchBytes: lease.batch.byteLength }
}
