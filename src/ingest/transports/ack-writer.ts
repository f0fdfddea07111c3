/**
 * Writes device acks to one connection (PROTOCOL.md section 4), one write per batch.
 *
 * aedes-style write path: when write() returns false, nothing more is written until 'drain'.
 * Acks arriving meanwhile are coalesced, one per device (the latest batch's seq), in a bounded
 * table, so a peer that does not read costs no memory growth. If 'drain' does not come within
 * timeoutMs, onTimeout runs (stream transports close the connection); the writer keeps
 * coalescing until a drain that may still come.
 */
import type { Writable } from 'node:stream'
import { LruMap } from '../lru-map.js'
import type { DeviceAck } from '../pipeline.js'
import { within } from './transport.js'

export type AckEncoder = (deviceId: string, seq: number) => Uint8Array

/** Devices one connection may have acks queued for while the peer is not reading. */
const MAX_QUEUED_DEVICES = 1024

export interface AckWriterOptions {
  encode: AckEncoder
  timeoutMs: number
  onTimeout: () => void
  onSent: (acks: number) => void
  onError: (err: unknown) => void
}

export class AckWriter {
  private waiting = false
  private readonly queued = new LruMap<string, number>(MAX_QUEUED_DEVICES)
  private timer: NodeJS.Timeout | undefined
  private closed = false

  constructor (private readonly out: Writable, private readonly opts: AckWriterOptions) {}

  send (acks: readonly DeviceAck[]): void {
    if (this.closed || acks.length === 0) return
    if (this.waiting) {
      for (const a of acks) this.queued.set(a.deviceId, a.seq)
      return
    }
    this.write(acks)
  }

  /** Resolves once nothing waits for 'drain', or after ms; true when all was handed to the stream. */
  async flushed (ms: number): Promise<boolean> {
    if (!this.waiting) return true
    return await within(new Promise<void>(resolve => {
      const check = (): void => { if (!this.waiting || this.closed) resolve(); else this.out.once('drain', () => setImmediate(check)) }
      check()
    }), ms)
  }

  close (): void {
    this.closed = true
    clearTimeout(this.timer)
    this.out.off('drain', this.onDrain)
  }

  private write (acks: readonly DeviceAck[]): void {
    if (this.out.destroyed || !this.out.writable) return
    let ok: boolean
    try {
      const parts = acks.map(a => this.opts.encode(a.deviceId, a.seq))
      ok = this.out.write(parts.length === 1 ? parts[0] : Buffer.concat(parts))
    } catch (err) {
      this.opts.onError(err)
      return
    }
    this.opts.onSent(acks.length)
    if (!ok) {
      this.waiting = true
      this.out.once('drain', this.onDrain)
      this.timer = setTimeout(this.onTimeout, this.opts.timeoutMs)
    }
  }

  private readonly onDrain = (): void => {
    clearTimeout(this.timer)
    this.waiting = false
    if (this.closed || this.queued.size === 0) return
    const acks = Array.from(this.queued.entries(), ([deviceId, seq]) => ({ deviceId, seq }))
    this.queued.clear()
    this.write(acks)
  }

  private readonly onTimeout = (): void => {
    if (!this.closed) this.opts.onTimeout()
  }
}
