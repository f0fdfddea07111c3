/**
 * Small EventSink fakes for ingest tests: one that records (and can report durable=false, refuse
 * events or throw), and a gate that holds appends until released, for backpressure.
 */
import type { AppendResult, EventSink } from '../../../src/store/event-store.js'
import type { DropReasonName, EventRecord } from '../../../src/types.js'

export class FakeSink implements EventSink {
  readonly events: EventRecord[] = []
  readonly calls: number[] = []
  durable = true
  /** Indices (within one append) to refuse, with a reason. */
  refuse: (e: EventRecord) => DropReasonName | undefined = () => undefined
  fail: ((events: readonly EventRecord[]) => unknown) | undefined
  private blocked: Array<() => void> | undefined

  /** EventSink.durableNow: what `durable` says. */
  readonly durableNow = (): boolean => this.durable

  /** From now on appends wait until release(). */
  block (): void { this.blocked ??= [] }

  release (): void {
    const waiting = this.blocked ?? []
    this.blocked = undefined
    for (const go of waiting) go()
  }

  async append (events: readonly EventRecord[]): Promise<AppendResult> {
    this.calls.push(events.length)
    if (this.blocked !== undefined) {
      const waiting = this.blocked
      await new Promise<void>(resolve => waiting.push(resolve))
    }
    const err = this.fail?.(events)
    if (err !== undefined) throw err
    const rejected: AppendResult['rejected'] = []
    events.forEach((e, index) => {
      const reason = this.refuse(e)
      if (reason === undefined) this.events.push(e)
      else rejected.push({ index, reason })
    })
    return { accepted: events.length - rejected.length, rejected, evicted: 0, durable: this.durable }
  }
}
