/**
 * Where the receiving side puts what it received: one interface, so that the sources (the MQTT
 * subscriber today, a broker's durable consumer next) never know the destination, and a new
 * destination (a database, object storage) is one more implementation. JSON lines are the
 * default: to a stream (standard output) or appended to a file.
 *
 * The contract that makes delivery end to end: write() resolves only once the batch is as
 * durable as the destination can make it, and a source acknowledges the broker's message only
 * after that. A destination that cannot write rejects, and the source stops unacknowledged.
 */
import { open } from 'node:fs/promises'
import { EdgefwdError } from '../errors.js'
import type { StoredEvent } from '../proto/codec.js'
import { formatBatchLines } from './jsonl.js'

/** One gateway batch as decoded, after the dedupe dropped redeliveries. */
export interface ReceivedBatch {
  gatewayId: string
  batchSeq: number
  events: readonly StoredEvent[]
}

export interface SinkDestination {
  /** Resolves once the batch is durable here; the message is acknowledged after. */
  write (batch: ReceivedBatch): Promise<void>
  /** Flushes and lets go of what it holds; resolves when done. */
  close (): Promise<void>
}

/** A text stream such as standard output: write() says false when its buffer is full. */
export interface TextStream {
  write (text: string): unknown
  once?: (event: 'drain', listener: () => void) => unknown
}

/**
 * JSON lines to a stream (standard output): waits for 'drain' when the stream's buffer is full.
 * Durable only as far as the reader of the stream makes it.
 */
export function jsonLinesToStream (stream: TextStream): SinkDestination {
  return {
    async write ({ gatewayId, batchSeq, events }) {
      if (events.length === 0) return
      if (stream.write(formatBatchLines(gatewayId, batchSeq, events)) !== false || typeof stream.once !== 'function') return
      await new Promise<void>(resolve => { stream.once?.('drain', resolve) })
    },
    async close () {}
  }
}

/**
 * JSON lines appended to a file; each batch is on the disk (fdatasync) before write() resolves,
 * so a message the sink acknowledged survives a power cut of the sink's machine.
 * @throws EDGEFWD_ERR_USAGE when the file cannot be opened for appending
 */
export async function jsonLinesToFile (path: string): Promise<SinkDestination> {
  let handle
  try {
    handle = await open(path, 'a')
  } catch (err) {
    throw new EdgefwdError('EDGEFWD_ERR_USAGE', `sink: cannot open ${path} for appending: ${(err as Error).message}`, { cause: err })
  }
  const fh = handle
  return {
    async write ({ gatewayId, batchSeq, events }) {
      if (events.length === 0) return
      await fh.appendFile(formatBatchLines(gatewayId, batchSeq, events))
      await fh.datasync()
    },
    async close () { await fh.close() }
  }
}

/** Takes every batch and keeps nothing: for a source whose verifier is all that matters (the simulation). */
export const discardBatches: SinkDestination = { write: async () => {}, close: async () => {} }
