/**
 * Why a device frame was rejected (firmware-bridge/PROTOCOL.md §7). Every rejection is counted
 * per reason. The codecs in src/ingest produce all but the last two, which need the gateway's
 * configuration and state (the ingest pipeline decides them).
 */
export const REJECT_REASONS = ['bad_cobs', 'bad_crc', 'bad_version', 'oversize', 'bad_field', 'bad_auth', 'rate_limited', 'unknown_device'] as const
export type RejectReason = typeof REJECT_REASONS[number]

export function isRejectReason (v: unknown): v is RejectReason {
  return typeof v === 'string' && (REJECT_REASONS as readonly string[]).includes(v)
}

/** The ingest transports, by the name each counts under (the metrics' `transport` label). */
export const TRANSPORT_NAMES = ['udp', 'tcp', 'tcp-jsonl', 'unix', 'serial', 'stdin'] as const
export type TransportName = typeof TRANSPORT_NAMES[number]
