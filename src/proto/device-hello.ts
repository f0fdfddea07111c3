/**
 * Codec for edgefwd.v1.DeviceHello, what a device may send once after connecting (frame type
 * 0x04, firmware-bridge/PROTOCOL.md §6). Rare (once per connection), so reflection is fast enough.
 */
import { decodeGuard } from './decode-error.js'
import { wireTypes, type WireObject } from './schema.js'
import { num, putString, putU32, str } from './wire-fields.js'

export interface DeviceHelloData {
  deviceId: string
  firmwareVersion: string
  /** Bit 0: the device wants acks. Other bits are reserved and passed through. */
  capabilities: number
}

export function encodeDeviceHello (h: DeviceHelloData): Uint8Array {
  const o: WireObject = {}
  putString(o, 'deviceId', h.deviceId)
  putString(o, 'firmwareVersion', h.firmwareVersion)
  putU32(o, 'capabilities', h.capabilities)
  return wireTypes.DeviceHello.encode(o)
}

/** Throws EdgefwdError EDGEFWD_ERR_PROTO_DECODE on bad bytes. */
export function decodeDeviceHello (b: Uint8Array): DeviceHelloData {
  return decodeGuard('DeviceHello', b, (input) => {
    const m = wireTypes.DeviceHello.decode(input)
    // protobufjs returns uint32 as a JS number already in 0..2^32-1.
    return { deviceId: str(m, 'deviceId'), firmwareVersion: str(m, 'firmwareVersion'), capabilities: num(m, 'capabilities') >>> 0 }
  })
}
