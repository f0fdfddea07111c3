/**
 * Priority rules: `{ device?, stream?, priority }`, first match wins (DESIGN.md section 3).
 *
 * Rules set priority only. A per-rule TTL would need the store to expire events by a deadline
 * carried on each event; today it expires by priority (`store.ttl.<priority>`), so a rule that
 * raises or lowers priority also picks which TTL applies.
 *
 * The device half of every rule is evaluated once per device (when the device enters the
 * device table), so a frame costs at most one stream test per rule that names its device.
 */
import type { Priority } from '../types.js'
import { matcher, type Matcher } from './glob.js'
import type { PriorityRule } from './options.js'

export interface DeviceRule { stream: Matcher, priority: Priority }

export class PriorityRules {
  private readonly rules: ReadonlyArray<{ device: Matcher, stream: Matcher, priority: Priority }>

  constructor (rules: readonly PriorityRule[]) {
    this.rules = rules.map(r => ({ device: matcher(r.device), stream: matcher(r.stream), priority: r.priority }))
  }

  /** The rules that can apply to `deviceId`, in order; undefined when none. */
  forDevice (deviceId: string): readonly DeviceRule[] | undefined {
    const matching = this.rules.filter(r => r.device(deviceId)).map(r => ({ stream: r.stream, priority: r.priority }))
    return matching.length === 0 ? undefined : matching
  }
}

/** The priority an event gets: the first rule matching its stream, else the device's choice. */
export function applyRules (rules: readonly DeviceRule[] | undefined, stream: string, devicePriority: Priority): Priority {
  if (rules === undefined) return devicePriority
  for (const r of rules) if (r.stream(stream)) return r.priority
  return devicePriority
}
