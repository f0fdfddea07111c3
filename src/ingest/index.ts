/**
 * Ingest codecs: the gateway side of the device protocol (firmware-bridge/PROTOCOL.md) as pure
 * functions and one small stateful splitter. Transports (src/ingest/transports) move bytes; these
 * turn bytes into accepted events or counted rejections.
 */
export { crc32c } from './crc32c.js'
export { cobsEncode, cobsDecode, cobsEncodeInto, cobsDecodeInto, cobsMaxEncodedLength } from './cobs.js'
export { REJECT_REASONS, isRejectReason, type RejectReason } from './reasons.js'
export {
  encodeFrame, encodeStreamFrame, toStreamFrame, parseFrame, writeCrc,
  PROTOCOL_VERSION, FRAME_TYPE_CODES, TAG_FLAG, CRC_LENGTH, MIN_FRAME_SIZE, DEFAULT_MAX_FRAME_SIZE,
  type FrameType, type FrameSpec, type FrameOptions, type FrameResult, type FrameRejection, type DeviceEvent
} from './frame.js'
export { AUTH_TAG_LENGTH, MIN_KEY_LENGTH, MAX_KEY_LENGTH } from './auth-tag.js'
export { encodeAck, encodeStreamAck, parseAck, type AckResult } from './ack.js'
export { decodeMsgpackBody, encodeMsgpackEvent, type MsgpackBodyResult } from './msgpack-event.js'
export { parseJsonLine, encodeJsonEvent, encodeJsonAck, type JsonLineOptions } from './json-line.js'
export { StreamDeframer } from './stream-deframer.js'
export { FIELD_LIMITS, deviceIdProblem, isValidDeviceId, eventProblem } from './event-rules.js'
export { encodeDeviceFrame, encodeDeviceHello, type DeviceHelloData } from '../proto/codec.js'
