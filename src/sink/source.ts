/**
 * What the sink command runs, whichever source feeds it: the MQTT subscriber (subscriber.ts) or
 * a JetStream durable consumer (jetstream.ts). Both hand every message to a BatchReceiver and
 * acknowledge it only after the destination's durable write.
 */
import type { ReceiverStats } from './receiver.js'

export interface SinkStats extends ReceiverStats {
  /** Messages received, whatever their fate (redeliveries included). */
  messages: number
  /** Times the connection was lost and made again. */
  reconnects: number
}

export interface SinkSource {
  /** Rejects when the sink cannot go on (the destination failed); never resolves. */
  readonly failed: Promise<never>
  stats: () => SinkStats
  /** Stops taking messages, finishes the one being written, disconnects. */
  close: () => Promise<void>
}
