/**
 * What the receiving side does with one message, whichever source it came from (the MQTT
 * subscriber, a broker's durable consumer): decode the batch, drop it when it is a redelivery
 * (BatchDeduper: gateway id and batch seq), write it to the destination and wait until it is
 * durable there, then tell the verifier. The source acknowledges the message once receive()
 * resolves; when it rejects (the destination failed) the source stops with it unacknowledged.
 *
 * A message that does not decode resolves (it is acknowledged: a redelivery would not decode
 * better), counted and logged.
 */
import { decodeEnvelopeMessage } from './decode.js'
import { BatchDeduper } from './dedupe.js'
import type { SinkDestination } from './destination.js'
import type { SequenceVerifier } from './verify.js'

export interface ReceiverOptions {
  destination: SinkDestination
  deduper?: BatchDeduper
  verifier?: SequenceVerifier
  /** One line, without newline, for operators (stderr in the CLI). */
  log: (line: string) => void
}

export interface ReceiverStats {
  batchesWritten: number
  eventsWritten: number
  /** Batches dropped as redelivered (same gateway and batch seq as one already written). */
  duplicateBatches: number
  /** Batches older than the dedupe window: written (at-least-once), perhaps a duplicate. */
  beyondWindowBatches: number
  malformed: number
}

export class BatchReceiver {
  readonly #options: ReceiverOptions
  readonly #deduper: BatchDeduper
  readonly #stats: ReceiverStats = { batchesWritten: 0, eventsWritten: 0, duplicateBatches: 0, beyondWindowBatches: 0, malformed: 0 }

  constructor (options: ReceiverOptions) {
    this.#options = options
    this.#deduper = options.deduper ?? new BatchDeduper()
  }

  stats (): ReceiverStats { return { ...this.#stats } }

  /**
   * Handles one message; resolves when it may be acknowledged.
   * @param from where it came from, for the log (a topic or subject)
   * @throws what the destination's write() throws
   */
  async receive (payload: Uint8Array, from: string): Promise<void> {
    let decoded
    try {
      decoded = decodeEnvelopeMessage(payload)
    } catch (err) {
      this.#stats.malformed++
      this.#options.log(`malformed message on ${from} (${payload.byteLength} bytes), acknowledged and skipped: ${err instanceof Error ? err.message : String(err)}`)
      return
    }
    const { gatewayId, batchSeq } = decoded.envelope
    const verdict = this.#deduper.check(gatewayId, batchSeq)
    if (verdict === 'duplicate') {
      this.#stats.duplicateBatches++
      return
    }
    if (verdict === 'beyond-window') this.#stats.beyondWindowBatches++
    try {
      await this.#options.destination.write({ gatewayId, batchSeq, events: decoded.events })
    } catch (err) {
      // Not written: its redelivery (the message stays unacknowledged) must not count as a duplicate.
      if (verdict === 'new') this.#deduper.forget(gatewayId, batchSeq)
      throw err
    }
    this.#stats.batchesWritten++
    this.#stats.eventsWritten += decoded.events.length
    this.#options.verifier?.addEnvelope(decoded)
  }
}
