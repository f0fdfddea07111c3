/** Types shared by ingest, store and uplink. Nothing here does I/O. */

export const PRIORITIES = ['low', 'normal', 'high', 'critical'] as const
export type PriorityName = typeof PRIORITIES[number]
/** 0 = low … 3 = critical; the numeric value is the protobuf enum value and the store key byte. */
export type Priority = 0 | 1 | 2 | 3
export const PRIORITY_COUNT = 4

export function priorityName (p: Priority): PriorityName {
  return PRIORITIES[p] as PriorityName
}

export function isPriority (p: unknown): p is Priority {
  return p === 0 || p === 1 || p === 2 || p === 3
}

export type EventValue =
  | { kind: 'number', number: number }
  | { kind: 'numbers', numbers: Record<string, number> }
  | { kind: 'text', text: string }
  | { kind: 'raw', raw: Uint8Array }

/** An event as ingest hands it to the store. */
export interface EventRecord {
  deviceId: string
  /** Per-device sequence; uint64 on the wire, a safe integer (≤ 2^53-1) here. */
  deviceSeq: number
  deviceTimeMs?: number
  deviceUptimeMs?: number
  gatewayTimeMs: number
  priority: Priority
  stream: string
  value?: EventValue
  tags?: Record<string, string>
  clockSkewed?: boolean
  /**
   * Gateway time (Unix ms) after which the store drops the event as `expired_ttl` if it has not
   * been delivered; set by a TTL rule. Independent of the priority TTL: whichever comes first.
   */
  expiresAtMs?: number
}

/** Why an event was dropped; mirrors the protobuf DropReason enum values 1..6. */
export const DROP_REASONS = ['evicted_for_space', 'expired_ttl', 'rejected_full', 'memory_queue_full', 'rejected_rate_limit', 'malformed'] as const
export type DropReasonName = typeof DROP_REASONS[number]

/** What found an uplink connection dead: no PUBACK within uplink.pubackTimeout, or no PINGRESP (the MQTT keepalive). */
export const DEAD_LINK_REASONS = ['puback_timeout', 'keepalive'] as const
export type DeadLinkReason = typeof DEAD_LINK_REASONS[number]
