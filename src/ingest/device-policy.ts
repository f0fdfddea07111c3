/**
 * What the configuration says about one device id: whether it is allowed, its key, its rate
 * limit. Exact ids are looked up in a Map; patterns are tried in configuration order.
 */
import { isGlob, matcher, type Matcher } from './glob.js'
import type { DeviceEntry, IngestOptions } from './options.js'
import type { RateLimit } from './rate-limit.js'

export interface DevicePolicy {
  key: Uint8Array | undefined
  rateLimit: RateLimit
}

export class DevicePolicies {
  private readonly exact = new Map<string, DevicePolicy>()
  private readonly patterns: Array<{ match: Matcher, policy: DevicePolicy }> = []
  private readonly keyed: boolean
  private readonly fallback: DevicePolicy | undefined

  constructor (options: Pick<IngestOptions, 'devices' | 'rateLimit' | 'allowUnknownDevices'>) {
    const policy = (d: DeviceEntry): DevicePolicy => ({ key: d.key, rateLimit: { ...options.rateLimit, ...d.rateLimit } })
    for (const d of options.devices) {
      if (isGlob(d.pattern)) this.patterns.push({ match: matcher(d.pattern), policy: policy(d) })
      else this.exact.set(d.pattern, policy(d))
    }
    this.keyed = options.devices.some(d => d.key !== undefined)
    this.fallback = options.allowUnknownDevices ? { key: undefined, rateLimit: options.rateLimit } : undefined
  }

  /** The policy for `deviceId`; undefined when the device is unknown and unknown ones are refused. */
  lookup (deviceId: string): DevicePolicy | undefined {
    const exact = this.exact.get(deviceId)
    if (exact !== undefined) return exact
    for (const p of this.patterns) if (p.match(deviceId)) return p.policy
    return this.fallback
  }

  /**
   * The key parseFrame checks tags against. Called for every frame, so the common case of no
   * keyed device at all returns at once.
   */
  readonly keyFor = (deviceId: string): Uint8Array | undefined => {
    if (!this.keyed) return undefined
    return this.lookup(deviceId)?.key
  }
}
