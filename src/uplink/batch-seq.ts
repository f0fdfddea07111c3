/**
 * Batch sequence numbers that are never reused, across restarts and crashes: with the gateway id
 * they are the receiver's dedupe key, so a number used twice for different events would make the
 * receiver drop real data as a duplicate.
 *
 * Numbers are handed out from blocks reserved on disk: the file records the end of the reserved
 * block (written to a temporary file, fsynced, renamed over). After a crash the numbers of the
 * unused rest of a block are skipped, never reused. One write per `blockSize` batches. A clock is
 * not used: a Raspberry Pi without RTC starts in the past until NTP syncs.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { EdgefwdError } from '../errors.js'

export class BatchSequence {
  private nextSeq: number
  private reservedTo: number

  private constructor (private readonly path: string, private readonly blockSize: number, lastReserved: number) {
    this.nextSeq = lastReserved + 1
    this.reservedTo = lastReserved
  }

  static open (path: string, blockSize = 10_000): BatchSequence {
    let last = 0
    try {
      const parsed = JSON.parse(readFileSync(path, 'utf8')) as { reservedTo?: unknown }
      if (typeof parsed.reservedTo !== 'number' || !Number.isSafeInteger(parsed.reservedTo) || parsed.reservedTo < 0) throw new Error('no reservedTo')
      last = parsed.reservedTo
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new EdgefwdError('EDGEFWD_ERR_UPLINK_BATCH_SEQ', `batch sequence file ${path} is unreadable or damaged; refusing to guess (a reused number would make receivers drop data)`, {
          cause: err, hint: `if the store was reset too, delete ${path}; otherwise write {"reservedTo": N} with N above the last batch sequence receivers saw`
        })
      }
    }
    return new BatchSequence(path, blockSize, last)
  }

  next (): number {
    if (this.nextSeq > this.reservedTo) this.reserve(this.nextSeq + this.blockSize - 1)
    return this.nextSeq++
  }

  private reserve (to: number): void {
    const temp = `${this.path}.tmp`
    const fd = openSync(temp, 'w', 0o644)
    try {
      writeSync(fd, `${JSON.stringify({ reservedTo: to })}\n`)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(temp, this.path)
    this.reservedTo = to
  }
}
