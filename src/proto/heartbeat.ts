/** Codec for edgefwd.v1.Heartbeat, the periodic health report on <prefix>/<gateway>/health. */
import { decodeGuard } from './decode-error.js'
import { dropCountFromWire, dropCountToWire, type DropCountData } from './eviction-report.js'
import { wireTypes, type WireObject } from './schema.js'
import { bool, messages, num, putBool, putDouble, putI32, putString, putU64, str, u64 } from './wire-fields.js'

export interface HeartbeatData {
  gatewayId: string
  version: string
  uptimeS: number
  timeMs: number
  bufferedEvents: number
  bufferedBytes: number
  capacityBytes: number
  oldestBufferedAgeMs: number
  eventsReceived: number
  eventsDelivered: number
  eventsEvicted: number
  eventsDropped: number
  framesRejected: number
  rssBytes: number
  cpuSeconds: number
  /** Negative once the certificate has expired. */
  certDaysLeft: number
  linkState: string
  /** The store is running on its in-memory fallback. */
  diskDegraded: boolean
  /** Cumulative, by priority and reason. */
  drops: DropCountData[]
}

/** The uint64 fields, in field-number order. */
const U64_FIELDS = [
  'uptimeS', 'timeMs', 'bufferedEvents', 'bufferedBytes', 'capacityBytes', 'oldestBufferedAgeMs',
  'eventsReceived', 'eventsDelivered', 'eventsEvicted', 'eventsDropped', 'framesRejected', 'rssBytes'
] as const satisfies ReadonlyArray<keyof HeartbeatData>

export function encodeHeartbeat (h: HeartbeatData): Uint8Array {
  const o: WireObject = {}
  putString(o, 'gatewayId', h.gatewayId)
  putString(o, 'version', h.version)
  for (const name of U64_FIELDS) putU64(o, name, h[name])
  putDouble(o, 'cpuSeconds', h.cpuSeconds)
  putI32(o, 'certDaysLeft', h.certDaysLeft)
  putString(o, 'linkState', h.linkState)
  putBool(o, 'diskDegraded', h.diskDegraded)
  if (h.drops.length > 0) o.drops = h.drops.map((d, i) => dropCountToWire(d, `drops[${i}]`))
  return wireTypes.Heartbeat.encode(o)
}

/** Throws EdgefwdError EDGEFWD_ERR_PROTO_DECODE on bad bytes or unknown enum values. */
export function decodeHeartbeat (b: Uint8Array): HeartbeatData {
  return decodeGuard('Heartbeat', b, (input) => {
    const m = wireTypes.Heartbeat.decode(input)
    return {
      gatewayId: str(m, 'gatewayId'),
      version: str(m, 'version'),
      uptimeS: u64(m, 'uptimeS'),
      timeMs: u64(m, 'timeMs'),
      bufferedEvents: u64(m, 'bufferedEvents'),
      bufferedBytes: u64(m, 'bufferedBytes'),
      capacityBytes: u64(m, 'capacityBytes'),
      oldestBufferedAgeMs: u64(m, 'oldestBufferedAgeMs'),
      eventsReceived: u64(m, 'eventsReceived'),
      eventsDelivered: u64(m, 'eventsDelivered'),
      eventsEvicted: u64(m, 'eventsEvicted'),
      eventsDropped: u64(m, 'eventsDropped'),
      framesRejected: u64(m, 'framesRejected'),
      rssBytes: u64(m, 'rssBytes'),
      cpuSeconds: num(m, 'cpuSeconds'),
      certDaysLeft: num(m, 'certDaysLeft'),
      linkState: str(m, 'linkState'),
      diskDegraded: bool(m, 'diskDegraded'),
      drops: messages(m, 'drops').map((d, i) => dropCountFromWire(d, `drops[${i}]`))
    }
  })
}
