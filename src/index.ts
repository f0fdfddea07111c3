/**
 * edgefwd's public API: what `import … from 'edgefwd'` gives a program that embeds the gateway or
 * talks to it. Everything else under src/ is internal and may change without notice.
 *
 * - a gateway: startGateway() with a configuration from loadConfig() or configBuilder(), what
 *   `edgefwd run` runs; parseDuration() reads durations as the configuration writes them;
 * - the receiving side: SinkSubscriber (the MQTT client of `edgefwd sink`, to a broker address
 *   from parseBrokerUrl()), decodeEnvelopeMessage() for what a gateway publishes, BatchDeduper
 *   for redelivered batches, SequenceVerifier to prove nothing was lost;
 * - the device side: the frame, COBS, CRC, JSON-line and MessagePack codecs of the device protocol
 *   (firmware-bridge/PROTOCOL.md), the checks the gateway applies to a device's id and events
 *   (deviceIdProblem, eventProblem), and the protobuf Event/Batch codec;
 * - certificates for development and tests: createCa() and issueCertificate(), what
 *   `edgefwd certs init-ca` and `certs issue` make;
 * - serveMcpStdio(): the agent interface of `edgefwd mcp` on stdio, for a gateway's agent socket;
 * - the shape of a CLI command (CommandSpec) and the exit codes, for commands kept outside src/
 *   that bin/commands.ts adds to the edgefwd CLI (`simulate`);
 * - the types these take and give, the contracts between ingest, store and uplink, and the errors.
 *
 * simulate/ uses src/ through this file only, as a user's program would
 * (test/unit/import-directions.test.ts checks it).
 */
export { startGateway, type Gateway, type GatewayDeps, type GatewayStats } from './gateway.js'
export { configBuilder, loadConfig, parseConfigText, type Config, type ConfigBuilder, type LoadConfigOptions } from './config/index.js'
/** The configuration's units (`10s`, `64KiB`) and its one-line problem format, for files that read like it (simulation scenarios). */
export { formatDuration, parseDuration, parseSize, type UnitParse } from './config/index.js'

export { decodeEnvelopeMessage, type DecodedEnvelope, type DecodeEnvelopeOptions } from './sink/decode.js'
export { BatchDeduper, type BatchDeduperOptions, type BatchVerdict } from './sink/dedupe.js'
export { SinkSubscriber, type SinkSubscriberOptions, type SinkStats } from './sink/subscriber.js'
/** Where the receiving side writes: JSON lines to a stream or a file (fdatasync per batch), or any SinkDestination. */
export { jsonLinesToFile, jsonLinesToStream, discardBatches, type SinkDestination, type ReceivedBatch, type TextStream } from './sink/destination.js'
export { BatchReceiver, type ReceiverOptions, type ReceiverStats } from './sink/receiver.js'
export { parseBrokerUrl, type BrokerAddress } from './uplink/connect.js'
export type { TlsCredentials } from './pki/tls-options.js'
export { SequenceVerifier, type SequenceVerifierOptions, type VerifierSummary, type DeviceSummary, type SequenceGap } from './sink/verify.js'

export {
  crc32c, cobsEncode, cobsDecode, encodeFrame, encodeStreamFrame, parseFrame, encodeAck, encodeStreamAck, parseAck,
  encodeJsonEvent, parseJsonLine, encodeJsonAck, encodeMsgpackEvent, decodeMsgpackBody, encodeDeviceFrame, encodeDeviceHello,
  deviceIdProblem, eventProblem,
  REJECT_REASONS, PROTOCOL_VERSION, DEFAULT_MAX_FRAME_SIZE,
  type FrameSpec, type FrameResult, type FrameRejection, type DeviceEvent, type AckResult, type RejectReason, type DeviceHelloData
} from './ingest/index.js'
export type { PemPair, CaOptions, IssueOptions, CertificateKind } from './pki/generate.js'
import type { PemPair, CaOptions, IssueOptions } from './pki/generate.js'
export { encodeEvent, decodeEvent, decodeBatch, decodeEnvelope, decodeHeartbeat } from './proto/codec.js'

export { PRIORITIES, DROP_REASONS, type Priority, type PriorityName, type EventRecord, type EventValue, type DropReasonName } from './types.js'
export type { AppendResult, BatchSource, EventSink, Lease, LeaseOptions } from './contracts.js'
export { EdgefwdError, ConfigError, isEdgefwdError, formatConfigIssue, type ErrorCode, type ConfigIssue } from './errors.js'
export { ExitCode } from './cli/exit-codes.js'
export type { CommandSpec, CommandContext, CommandInput, CliIo, TextSink, OptionSpec, PositionalSpec } from './cli/command.js'

/**
 * A development CA (what `edgefwd certs init-ca` makes). node-forge (~1.3 MB of heap once the
 * rest of edgefwd is loaded) is loaded on the first call rather than by importing 'edgefwd', so a
 * program that only runs a gateway does not carry it (test/integration/npm-package.test.ts checks what an import loads).
 */
export async function createCa (options: CaOptions): Promise<PemPair> {
  return (await import('./pki/generate.js')).createCa(options)
}

/** A client or server certificate signed by `ca` (what `edgefwd certs issue` makes); loads node-forge on first use, as createCa. */
export async function issueCertificate (ca: PemPair, options: IssueOptions): Promise<PemPair> {
  return (await import('./pki/generate.js')).issueCertificate(ca, options)
}

/**
 * Serves MCP on standard input and output for a gateway's agent socket, as `edgefwd mcp` does
 * (`simulate --mcp` points an agent at a simulated gateway with it). Resolves when standard input
 * ends. The MCP SDK is loaded on the first call, not by importing 'edgefwd'.
 */
export async function serveMcpStdio (options: { socket: string, version: string, logTo: { write (line: string): void } }): Promise<void> {
  const [{ serveStdio }, { createLogger }] = await Promise.all([import('./mcp/server.js'), import('./observe/log.js')])
  await serveStdio({ socket: options.socket, version: options.version, logger: createLogger({ level: 'warn', destination: options.logTo }) })
}
