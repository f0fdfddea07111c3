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
  intervalS: number
  framesReceived: number
  eventsPublished: number
  eventsResent: number
  uplinkConnects: number
  connectFailures: number
  authFailures: number
  /** usedBytes / capacity, 0..1. */
  bufferFill: number
  deliverySuccessRatio: number
  deliverySuccessRatioInterval: number
  lossRatio: number
  lossRatioInterval: number
  pubackLatencyP99S: number
  deliveryLagP99S: number
  eventLoopDelayP99S: number
  configVersion: number
}

/** The uint64 fields, in field-number order. */
const U64_FIELDS = [
  'uptimeS', 'timeMs', 'bufferedEvents', 'bufferedBytes', 'capacityBytes', 'oldestBufferedAgeMs',
  'eventsReceived', 'eventsDelivered', 'eventsEvicted', 'eventsDropped', 'framesRejected', 'rssBytes',
  'intervalS', 'framesReceived', 'eventsPublished', 'eventsResent', 'uplinkConnects', 'connectFailures', 'authFailures', 'configVersion'
] as const satisfies ReadonlyArray<keyof HeartbeatData>

/** The double fields, in field-number order. */
const DOUBLE_FIELDS = [
  'cpuSeconds', 'bufferFill', 'deliverySuccessRatio', 'deliverySuccessRatioInterval', 'lossRatio', 'lossRatioInterval',
  'pubackLatencyP99S', 'deliveryLagP99S', 'eventLoopDelayP99S'
] as const satisfies ReadonlyArray<keyof HeartbeatData>

export function encodeHeartbeat (h: HeartbeatData): Uint8Array {
  const o: WireObject = {}
  putString(o, 'gatewayId', h.gatewayId)
  putString(o, 'version', h.version)
  for (const name of U64_FIELDS) putU64(o, name, h[name])
  for (const name of DOUBLE_FIELDS) putDouble(o, name, h[name])
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
      drops: messages(m, 'drops').map((d, i) => dropCountFromWire(d, `drops[${i}]`)),
      intervalS: u64(m, 'intervalS'),
      framesReceived: u64(m, 'framesReceived'),
      eventsPublished: u64(m, 'eventsPublished'),
      eventsResent: u64(m, 'eventsResent'),
      uplinkConnects: u64(m, 'uplinkConnects'),
      connectFailures: u64(m, 'connectFailures'),
      authFailures: u64(m, 'authFailures'),
      bufferFill: num(m, 'bufferFill'),
      deliverySuccessRatio: num(m, 'deliverySuccessRatio'),
      deliverySuccessRatioInterval: num(m, 'deliverySuccessRatioInterval'),
      lossRatio: num(m, 'lossRatio'),
      lossRatioInterval: num(m, 'lossRatioInterval'),
      pubackLatencyP99S: num(m, 'pubackLatencyP99S'),
      deliveryLagP99S: num(m, 'deliveryLagP99S'),
      eventLoopDelayP99S: num(m, 'eventLoopDelayP99S'),
      configVersion: u64(m, 'configVersion')
    }
  })
}
