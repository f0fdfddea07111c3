/** Codec for edgefwd.v1.Envelope, what the uplink publishes on <prefix>/<gateway>/events. */
import { decodeGuard } from './decode-error.js'
import { compressionFromWire, compressionToWire, type CompressionName } from './enums.js'
import { evictionReportFromWire, evictionReportToWire, type EvictionReportData } from './eviction-report.js'
import { wireTypes, type WireObject } from './schema.js'
import { bytes, message, num, putBytes, putString, putU32, putU64, str, u64 } from './wire-fields.js'

export interface EnvelopeData {
  schemaVersion: number
  gatewayId: string
  batchSeq: number
  compression: CompressionName
  firstStoreSeq: number
  lastStoreSeq: number
  /** Present on the wire (possibly empty) exactly when set here. */
  evictionReport?: EvictionReportData
  eventCount: number
  /** An encoded Batch, compressed as `compression` says. A decoded payload is a view of the input bytes. */
  payload: Uint8Array
  createdMs: number
}

export function encodeEnvelope (e: EnvelopeData): Uint8Array {
  const o: WireObject = {}
  putU32(o, 'schemaVersion', e.schemaVersion)
  putString(o, 'gatewayId', e.gatewayId)
  putU64(o, 'batchSeq', e.batchSeq)
  const compression = compressionToWire(e.compression, 'compression')
  if (compression !== 0) o.compression = compression
  putU64(o, 'firstStoreSeq', e.firstStoreSeq)
  putU64(o, 'lastStoreSeq', e.lastStoreSeq)
  if (e.evictionReport !== undefined) o.evictionReport = evictionReportToWire(e.evictionReport)
  putU32(o, 'eventCount', e.eventCount)
  putBytes(o, 'payload', e.payload)
  putU64(o, 'createdMs', e.createdMs)
  return wireTypes.Envelope.encode(o)
}

/** Throws EdgefwdError EDGEFWD_ERR_PROTO_DECODE on bad bytes or unknown enum values. */
export function decodeEnvelope (b: Uint8Array): EnvelopeData {
  return decodeGuard('Envelope', b, (input) => {
    const m = wireTypes.Envelope.decode(input)
    const report = message(m, 'evictionReport')
    const envelope: EnvelopeData = {
      schemaVersion: num(m, 'schemaVersion'),
      gatewayId: str(m, 'gatewayId'),
      batchSeq: u64(m, 'batchSeq'),
      compression: compressionFromWire(num(m, 'compression'), 'compression'),
      firstStoreSeq: u64(m, 'firstStoreSeq'),
      lastStoreSeq: u64(m, 'lastStoreSeq'),
      eventCount: num(m, 'eventCount'),
      payload: bytes(m, 'payload'),
      createdMs: u64(m, 'createdMs')
    }
    if (report !== undefined) envelope.evictionReport = evictionReportFromWire(report)
    return envelope
  })
}
