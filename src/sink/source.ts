/**
 * What the sink command runs, whichever source feeds it: the MQTT subscriber (subscriber.ts) or
 * a JetStream durable consumer (jetstream.ts). Both hand every message to a BatchReceiver and
 * acknowledge it only after the destination's durable write.
 */
import type { BatchDeduper } from './dedupe.js'
import type { SinkDestination } from './destination.js'
import type { ReceiverStats } from './receiver.js'
import type { SequenceVerifier } from './verify.js'

/** What every source is given, whatever it connects to. */
export interface SourceOptions {
  /** Where the batches go (destination.ts); the source does not close it. */
  destination: SinkDestination
  verifier?: SequenceVerifier
  deduper?: BatchDeduper
  /** One line, without newline, for operators (stderr in the CLI). */
  log: (line: string) => void
  /** Called for every message received, whatever its fate (idle detection). */
  onActivity?: () => void
  /** Bound on the first connection. */
  connectTimeoutMs?: number
}

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
