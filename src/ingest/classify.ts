/**
 * Classification of events by the `ingest.rules` list: `{ device?, stream?, priority?, ttl? }` in order (DESIGN.md section 3). For each of
 * priority and TTL, the first matching rule that sets it wins; so one rule can give a stream a
 * time limit and a later one a device's priority, and both apply to that device's stream.
 *
 * A rule's TTL becomes the event's own deadline (`expiresAtMs = gatewayTimeMs + ttl`), which the
 * store enforces through its expiry index, independently of the priority TTL (`store.ttl.*`):
 * whichever comes first drops the event as `expired_ttl`.
 *
 * The device half of every rule is evaluated once per device (when the device enters the
 * device table), so a frame costs at most one stream test per rule that names its device.
 */
import type { Priority } from '../types.js'
import { matcher, type Matcher } from './glob.js'
import type { IngestRule } from './options.js'

export interface DeviceRule { stream: Matcher, priority: Priority | undefined, ttlMs: number | undefined }

/** What the rules decide for one event; `ttlMs` undefined: no deadline from the rules. */
export interface RuleOutcome { priority: Priority, ttlMs: number | undefined }

export class Classifier {
  private readonly rules: ReadonlyArray<{ device: Matcher } & DeviceRule>

  constructor (rules: readonly IngestRule[]) {
    this.rules = rules.map(r => ({ device: matcher(r.device), stream: matcher(r.stream), priority: r.priority, ttlMs: r.ttlMs }))
  }

  /** The rules that can apply to `deviceId`, in order; undefined when none. */
  forDevice (deviceId: string): readonly DeviceRule[] | undefined {
    const matching = this.rules.filter(r => r.device(deviceId)).map(r => ({ stream: r.stream, priority: r.priority, ttlMs: r.ttlMs }))
    return matching.length === 0 ? undefined : matching
  }
}

/** Priority and TTL of an event: per attribute, the first rule matching its stream that sets it. */
export function applyRules (rules: readonly DeviceRule[] | undefined, stream: string, devicePriority: Priority): RuleOutcome {
  let priority: Priority | undefined
  let ttlMs: number | undefined
  if (rules !== undefined) {
    for (const r of rules) {
      if ((priority !== undefined || r.priority === undefined) && (ttlMs !== undefined || r.ttlMs === undefined)) continue
      if (!r.stream(stream)) continue
      priority ??= r.priority
      ttlMs ??= r.ttlMs
      if (priority !== undefined && ttlMs !== undefined) break
    }
  }
  return { priority: priority ?? devicePriority, ttlMs }
}
