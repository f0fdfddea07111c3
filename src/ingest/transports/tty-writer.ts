/**
 * A Writable over a non-blocking tty fd, for acks to a serial line.
 *
 * Why not fs.createWriteStream: on a blocking fd a write to a full tty output buffer (a device
 * that does not read, or hardware flow control holding us off) parks a libuv threadpool thread
 * until the line drains, and the store's LevelDB work shares that pool. Why not tty.WriteStream:
 * Node makes tty writes blocking, which would stall the event loop instead. So: O_NONBLOCK, and
 * on EAGAIN retry after a short delay. The stream's buffer above highWaterMark makes write()
 * return false, which AckWriter turns into its drain wait with a timeout.
 */
import { close, write } from 'node:fs'
import { Writable } from 'node:stream'

const RETRY_MS = 20

export class TtyWriter extends Writable {
  /** An fs.write is running in the threadpool: the fd must not be closed (and reused) under it. */
  private writing = false
  private closeWhenIdle: (() => void) | undefined

  constructor (private readonly fd: number) {
    super({ highWaterMark: 4096, decodeStrings: true })
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.writeFrom(chunk, 0, callback)
  }

  override _destroy (err: Error | null, callback: (err?: Error | null) => void): void {
    const closeFd = (): void => close(this.fd, () => callback(err))
    if (this.writing) this.closeWhenIdle = closeFd
    else closeFd()
  }

  private writeFrom (chunk: Buffer, offset: number, callback: (err?: Error | null) => void): void {
    if (this.destroyed) { callback(); return }
    this.writing = true
    write(this.fd, chunk, offset, chunk.length - offset, null, (err, written) => {
      this.writing = false
      if (this.closeWhenIdle !== undefined) { this.closeWhenIdle(); callback(); return }
      if (err !== null && err.code !== 'EAGAIN') { callback(err); return }
      const next = offset + (err === null ? written : 0)
      if (next >= chunk.length) callback()
      else setTimeout(() => this.writeFrom(chunk, next, callback), err === null ? 0 : RETRY_MS)
    })
  }
}
