/** A sink destination for tests: it records the batches written and fails while `failWith` is set. */
import type { ReceivedBatch, SinkDestination } from '../../src/sink/destination.js'

export type RecordingDestination = SinkDestination & { batches: ReceivedBatch[], failWith?: Error }

export function recordingDestination (): RecordingDestination {
  const d: RecordingDestination = {
    batches: [],
    async write (batch) {
      if (d.failWith !== undefined) throw d.failWith
      d.batches.push(batch)
    },
    async close () {}
  }
  return d
}
