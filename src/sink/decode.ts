/**
 * Decoding what a gateway publishes on `<prefix>/<gateway>/events`: an Envelope whose payload is
 * an encoded Batch, compressed as the envelope says.
 *
 * The bytes come from the network, so every failure is EdgefwdError EDGEFWD_ERR_PROTO_DECODE and
 * nothing here may take the process down: decompression is bounded by `maxDecompressedBytes`
 * (zlib's `maxOutputLength` stops inflating at the bound, so a decompression bomb costs at most
 * that much memory, never the full expansion). The bound applies to 'none' too, so one limit
 * describes the largest Batch the sink will decode.
 */
import { gunzipSync, inflateSync } from 'node:zlib'
import { EdgefwdError } from '../errors.js'
import { decodeBatch, decodeEnvelope, type EnvelopeData, type StoredEvent } from '../proto/codec.js'

/** The uplink batches ≤ 128 KiB by default (DESIGN §5); 64 MiB leaves room for any sane config. */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
export const SUPPORTED_SCHEMA_VERSION = 1

export interface DecodeEnvelopeOptions {
  /** Largest decoded Batch accepted, in bytes. Default DEFAULT_MAX_DECOMPRESSED_BYTES. */
  maxDecompressedBytes?: number
}

export interface DecodedEnvelope {
  envelope: EnvelopeData
  events: StoredEvent[]
}

function decodeError (envelope: EnvelopeData | undefined, message: string, cause?: unknown): EdgefwdError {
  const where = envelope === undefined ? 'envelope' : `envelope ${JSON.stringify(envelope.gatewayId)}#${envelope.batchSeq}`
  return new EdgefwdError('EDGEFWD_ERR_PROTO_DECODE', `cannot decode ${where}: ${message}`,
    cause === undefined ? {} : { cause })
}

function decompress (e: EnvelopeData, maxOutputLength: number): Uint8Array {
  if (e.compression === 'none') {
    if (e.payload.length > maxOutputLength) {
      throw decodeError(e, `payload of ${e.payload.length} bytes exceeds the limit of ${maxOutputLength} bytes`)
    }
    return e.payload
  }
  try {
    return e.compression === 'gzip'
      ? gunzipSync(e.payload, { maxOutputLength })
      : inflateSync(e.payload, { maxOutputLength })
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (code === 'ERR_BUFFER_TOO_LARGE') {
      throw decodeError(e, `${e.compression} payload inflates beyond the limit of ${maxOutputLength} bytes`, err)
    }
    const reason = err instanceof Error ? err.message : String(err)
    throw decodeError(e, `bad ${e.compression} payload: ${reason}`, err)
  }
}

/**
 * Decodes an Envelope and the events of its payload. Checks the schema version and that the
 * payload holds `eventCount` events. Throws only EdgefwdError EDGEFWD_ERR_PROTO_DECODE.
 */
export function decodeEnvelopeMessage (bytes: Uint8Array, options: DecodeEnvelopeOptions = {}): DecodedEnvelope {
  const max = options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES
  if (!Number.isSafeInteger(max) || max < 0) throw new RangeError(`maxDecompressedBytes must be a non-negative integer, got ${max}`)
  const envelope = decodeEnvelope(bytes)
  if (envelope.schemaVersion !== SUPPORTED_SCHEMA_VERSION) {
    throw decodeError(envelope, `unsupported schema version ${envelope.schemaVersion} (this sink reads ${SUPPORTED_SCHEMA_VERSION})`)
  }
  const batch = decompress(envelope, max)
  let events: StoredEvent[]
  try {
    events = decodeBatch(batch)
  } catch (err) {
    throw decodeError(envelope, `bad payload: ${err instanceof Error ? err.message : String(err)}`, err)
  }
  if (events.length !== envelope.eventCount) {
    throw decodeError(envelope, `payload holds ${events.length} events, envelope says ${envelope.eventCount}`)
  }
  return { envelope, events }
}
