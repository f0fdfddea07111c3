/**
 * Why a device frame was rejected (firmware-bridge/PROTOCOL.md §7). Every rejection is counted
 * per reason. The codecs in src/ingest produce the first five and `bad_auth`; `rate_limited` and
 * `unknown_device` need the gateway's configuration and state (the ingest pipeline decides them);
 * `bad_payload` is an input that is not a frame (an MQTT message) which its mapping cannot read.
 */
export const REJECT_REASONS = ['bad_cobs', 'bad_crc', 'bad_version', 'oversize', 'bad_field', 'bad_auth', 'rate_limited', 'unknown_device', 'bad_payload'] as const
export type RejectReason = typeof REJECT_REASONS[number]

export function isRejectReason (v: unknown): v is RejectReason {
  return typeof v === 'string' && (REJECT_REASONS as readonly string[]).includes(v)
}

/**
 * The ingest transports, by the name each counts under (the metrics' `transport` label). `mqtt`
 * and `modbus` are sources: they read devices that do not speak the framed protocol (a local
 * broker's topics, polled registers) and map what they read to events.
 */
export const TRANSPORT_NAMES = ['udp', 'tcp', 'tcp-jsonl', 'unix', 'serial', 'stdin', 'mqtt', 'modbus'] as const

/**
 * Why a source could not read its devices, counted per transport (edgefwd_ingest_source_failures_total):
 * `connect` the broker or device could not be reached or the connection was lost; `refused` the
 * broker refused the connection or subscription; `timeout` a device did not answer a poll in
 * time; `exception` a Modbus device answered with an exception code.
 */
export const SOURCE_FAILURES = ['connect', 'refused', 'timeout', 'exception'] as const
export type SourceFailure = typeof SOURCE_FAILURES[number]
export type TransportName = typeof TRANSPORT_NAMES[number]
