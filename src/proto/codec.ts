/**
 * The protobuf codecs of the wire contract (proto/edgefwd/v1/edgefwd.proto): the one import
 * other modules use.
 *
 * - Event and Batch are hand-written (event-encode.ts, event-decode.ts): the store encodes every
 *   appended event, and a Batch is stored Event bytes concatenated, never re-encoded.
 * - The other messages go through protobufjs reflection over the embedded schema (schema.ts).
 *   DeviceFrame also has a hand-written reader (device-frame-decode.ts) for the ingest hot path;
 *   it throws WireError, not EdgefwdError, since ingest turns every failure into a `bad_field`
 *   rejection rather than an error.
 *
 * Numbers: uint64 fields are JS numbers and must be safe integers (≤ 2^53-1). Decoding a larger
 * value fails instead of rounding. Enums map to edgefwd names (enums.ts); an enum value with no
 * name fails the decode.
 *
 * Errors: every decode* function (and readGatewayTimeMs) throws only EdgefwdError
 * EDGEFWD_ERR_PROTO_DECODE, with the underlying error as `cause`. encodeEvent throws EdgefwdError
 * EDGEFWD_ERR_EVENT_INVALID for a field of the wrong type or range; the other encoders throw
 * RangeError, since their input comes from edgefwd's own code.
 */
export { encodeEvent, concatBatch } from './event-encode.js'
export { decodeEvent, decodeBatch, readEventTiming, readExpiresAtMs, readGatewayTimeMs, type EventTiming, type StoredEvent } from './event-decode.js'
export {
  encodeEvictionReport, decodeEvictionReport,
  type DropCountData, type DroppedRangeData, type EvictionReportData
} from './eviction-report.js'
export { encodeEnvelope, decodeEnvelope, type EnvelopeData } from './envelope.js'
export { encodeDeviceFrame, decodeDeviceFrame, type DeviceFrameData } from './device-frame.js'
export { readDeviceFrame, type UncheckedDeviceFrame } from './device-frame-decode.js'
export { encodeDeviceHello, decodeDeviceHello, type DeviceHelloData } from './device-hello.js'
export { encodeHeartbeat, decodeHeartbeat, type HeartbeatData } from './heartbeat.js'
export { COMPRESSIONS, type CompressionName } from './enums.js'
