/**
 * edgefwd's public API: what `import … from 'edgefwd'` gives a program that embeds the gateway or
 * talks to it. Everything else under src/ is internal and may change without notice.
 *
 * - a gateway: startGateway() with a configuration from loadConfig() or configBuilder(), what
 *   `edgefwd run` runs;
 * - the receiving side: decodeEnvelopeMessage() for what a gateway publishes, BatchDeduper for
 *   redelivered batches, SequenceVerifier to prove nothing was lost;
 * - the device side: the frame, COBS, CRC, JSON-line and MessagePack codecs of the device protocol
 *   (firmware-bridge/PROTOCOL.md), and the protobuf Event/Batch codec;
 * - the types these take and give, the contracts between ingest, store and uplink, and the errors.
 */
export { startGateway, type Gateway, type GatewayDeps, type GatewayStats } from './gateway.js'
export { configBuilder, loadConfig, parseConfigText, type Config, type ConfigBuilder, type LoadConfigOptions } from './config/index.js'

export { decodeEnvelopeMessage, type DecodedEnvelope, type DecodeEnvelopeOptions } from './sink/decode.js'
export { BatchDeduper, type BatchDeduperOptions, type BatchVerdict } from './sink/dedupe.js'
export { SequenceVerifier, type SequenceVerifierOptions, type VerifierSummary, type DeviceSummary, type SequenceGap } from './sink/verify.js'

export {
  crc32c, cobsEncode, cobsDecode, encodeFrame, encodeStreamFrame, parseFrame, encodeAck, encodeStreamAck, parseAck,
  encodeJsonEvent, parseJsonLine, encodeJsonAck, encodeMsgpackEvent, decodeMsgpackBody, encodeDeviceFrame, encodeDeviceHello,
  REJECT_REASONS, PROTOCOL_VERSION, DEFAULT_MAX_FRAME_SIZE,
  type FrameSpec, type FrameResult, type FrameRejection, type DeviceEvent, type AckResult, type RejectReason, type DeviceHelloData
} from './ingest/index.js'
export { encodeEvent, decodeEvent, decodeBatch, decodeEnvelope, decodeHeartbeat } from './proto/codec.js'

export { PRIORITIES, DROP_REASONS, type Priority, type PriorityName, type EventRecord, type EventValue, type DropReasonName } from './types.js'
export type { AppendResult, BatchSource, EventSink, Lease, LeaseOptions } from './contracts.js'
export { EdgefwdError, ConfigError, isEdgefwdError, type ErrorCode, type ConfigIssue } from './errors.js'
