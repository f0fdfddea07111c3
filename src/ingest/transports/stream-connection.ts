/**
 * One byte-stream connection (a TCP or unix socket, a serial line, stdin): decode, submit, ack.
 *
 * - Every 'data' chunk is decoded at once (COBS frames or JSON lines) and its frames go to the
 *   pipeline as ONE submit, so the store sees one append per read.
 * - Backpressure: while more than `connectionEvents` frames of this connection are in flight
 *   (submitted, append not resolved), or more than `pendingEvents` over all transports, the
 *   source is paused; it resumes once both are at half. A paused socket stops reading from the
 *   kernel, so its receive window closes and the device's writes block: the push-back reaches
 *   the firmware instead of piling up in gateway memory. The per-connection bound keeps one busy
 *   device from taking the whole global one. A chunk that arrives while the global bound is
 *   already reached is held as it came, not decoded, until the pipeline is back at half: parsed
 *   events cost ~4× their bytes, and with 50 connections each decoding one 64 KiB read past the
 *   bound, ~14k events more than the bound were held (burst test, 96 MiB budget: out of heap).
 * - Acks: each submit's durable acks go to an AckWriter, in submit order (the store resolves
 *   appends in order).
 * - Nothing a peer sends can throw out of here: decoder exceptions are counted and the decoder
 *   reset; the pipeline never rejects.
 */
import type { Readable, Writable } from 'node:stream'
import { encodeJsonAck } from '../json-line.js'
import { encodeStreamAck } from '../ack.js'
import type { FrameResult } from '../frame.js'
import { StreamDeframer } from '../stream-deframer.js'
import { AckWriter } from './ack-writer.js'
import { JsonLineSplitter } from './line-splitter.js'
import { DEFAULT_STOP_TIMEOUT_MS, pipelineOverBound, resumeBounds, within, type TransportContext } from './transport.js'

export type StreamFormat = 'frames' | 'jsonl'

export interface StreamConnectionOptions {
  transport: string
  format: StreamFormat
  ctx: TransportContext
  /** Where acks go; no acks when absent. */
  ackOut?: Writable
  /** The peer has not read acks for ackTimeoutMs (counted before this is called). */
  onAckTimeout?: () => void
}

interface Decoder { push (chunk: Uint8Array): void, reset (): void, end?: () => void }

export class StreamConnection {
  private batch: FrameResult[] = []
  /** Chunks read while the pipeline was over its global bound, not decoded yet. */
  private held: Buffer[] = []
  private readonly decoder: Decoder
  private readonly acks: AckWriter | undefined
  private readonly appends = new Set<Promise<void>>()
  private inFlight = 0
  private paused = false
  private waitingForPipeline = false
  private finishing = false
  /** Set while finish() waits for the held reads to be decoded. */
  private heldDecoded: (() => void) | undefined
  private stopping: Promise<void> | undefined

  constructor (private readonly source: Readable, private readonly opts: StreamConnectionOptions) {
    const { pipeline } = opts.ctx
    const collect = (r: FrameResult): void => { this.batch.push(r) }
    this.decoder = opts.format === 'frames'
      ? new StreamDeframer(pipeline.frameOptions, collect)
      : new JsonLineSplitter(pipeline.frameOptions, collect)
    if (opts.ackOut !== undefined) {
      const encode = opts.format === 'frames' ? encodeStreamAck : (id: string, seq: number) => Buffer.from(encodeJsonAck(id, seq))
      this.acks = new AckWriter(opts.ackOut, {
        encode,
        timeoutMs: opts.ctx.ackTimeoutMs,
        onSent: (n) => pipeline.countAcks(opts.transport, n),
        onError: (err) => pipeline.countError(opts.transport, err, 'ack write'),
        onTimeout: () => {
          pipeline.countAckTimeout(opts.transport)
          opts.onAckTimeout?.()
        }
      })
    }
    source.on('data', this.onData)
  }

  /** Frames of this connection submitted and not yet settled. */
  get eventsInFlight (): number { return this.inFlight }

  get isPaused (): boolean { return this.paused }

  /**
   * End of input from the peer. What was read and held over the global bound still counts: it is
   * decoded once the pipeline is back at half, as it would have been without the end, then the
   * last unterminated JSON line. Resolves once all of it was submitted (or stop() was called), so
   * its acks can follow before the connection closes.
   */
  async finish (): Promise<void> {
    if (this.stopping !== undefined || this.finishing) return
    this.finishing = true
    if (this.held.length > 0) await new Promise<void>(resolve => { this.heldDecoded = resolve })
    if (this.stopping !== undefined) return
    this.guard(() => this.decoder.end?.())
    this.submitBatch()
  }

  /** Resolves once every append submitted so far has settled and its acks were written (or ms passed). */
  async settle (ms = this.opts.ctx.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + ms
    await within(Promise.allSettled([...this.appends]), ms)
    await this.acks?.flushed(deadline - Date.now())
  }

  /** Stops reading, then settles (bounded). Idempotent. */
  async stop (ms = this.opts.ctx.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
    this.stopping ??= (async () => {
      this.source.off('data', this.onData)
      this.source.pause()
      // Never acknowledged, so the device sends them again.
      this.held = []
      this.wakeFinish()
      await this.settle(ms)
      this.acks?.close()
    })()
    await this.stopping
  }

  private readonly onData = (chunk: Buffer | string): void => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    if (this.held.length > 0 || this.pipelineOverBound()) {
      this.held.push(bytes)
      this.pause()
      return
    }
    this.decode(bytes)
  }

  private decode (bytes: Buffer): void {
    this.guard(() => this.decoder.push(bytes))
    this.submitBatch()
  }

  private pipelineOverBound (): boolean { return pipelineOverBound(this.opts.ctx) }

  private pause (): void {
    if (this.paused || this.stopping !== undefined) return
    this.paused = true
    this.source.pause()
    this.maybeResume()
  }

  private guard (fn: () => void): void {
    try {
      fn()
    } catch (err) {
      // The codecs promise not to throw; if one does, that input is lost but the connection lives.
      this.opts.ctx.pipeline.countError(this.opts.transport, err, 'decode')
      this.decoder.reset()
    }
  }

  private submitBatch (): void {
    if (this.batch.length === 0) return
    const frames = this.batch
    this.batch = []
    const n = frames.length
    this.inFlight += n
    const done = this.deliver(frames).finally(() => {
      this.inFlight -= n
      this.appends.delete(done)
      this.maybeResume()
    })
    this.appends.add(done)
    this.maybePause()
  }

  private maybePause (): void {
    if (this.inFlight > this.opts.ctx.connectionEvents || this.pipelineOverBound()) this.pause()
  }

  /** Resumes once this connection is at half its bound and the pipeline at half the global one. */
  private maybeResume (): void {
    if (!this.paused || this.stopping !== undefined || this.inFlight > this.opts.ctx.connectionEvents / 2) return
    const { pipeline } = this.opts.ctx
    const { events, bytes } = resumeBounds(this.opts.ctx)
    if (pipeline.pendingEvents > events || pipeline.pendingBytes > bytes) {
      // Woken by the pipeline, not by this connection's appends: it may have none in flight.
      if (!this.waitingForPipeline) {
        this.waitingForPipeline = true
        pipeline.pendingAtMost(events, bytes).then(() => {
          this.waitingForPipeline = false
          this.maybeResume()
        }, () => {})
      }
      return
    }
    this.paused = false
    // What was held goes first, in order; decoding it may pause the connection again.
    while (this.held.length > 0 && !this.paused && this.stopping === undefined) this.decode(this.held.shift() as Buffer)
    if (this.held.length === 0) this.wakeFinish()
    if (!this.paused && this.stopping === undefined) this.source.resume()
  }

  private wakeFinish (): void {
    const wake = this.heldDecoded
    this.heldDecoded = undefined
    wake?.()
  }

  private async deliver (frames: FrameResult[]): Promise<void> {
    try {
      const result = await this.opts.ctx.pipeline.submit(this.opts.transport, frames)
      if (result.acks.length > 0) this.acks?.send(result.acks)
    } catch (err) {
      // submit() never rejects and send() catches its own errors: a bug, but not a crash.
      this.opts.ctx.pipeline.countError(this.opts.transport, err, 'submit')
    }
  }
}
