/**
 * JSON lines from a Readable, normally process.stdin (passed in by the CLI, never read from a
 * global), for scripts: `sensor-script | edgefwd run --stdin`. Acks go, as JSON lines, to an
 * optional Writable; without one there are none. The streams are not ours: stop() stops reading
 * and detaches, it does not destroy them.
 */
import type { Readable, Writable } from 'node:stream'
import { StreamConnection } from './stream-connection.js'
import type { Transport, TransportContext } from './transport.js'

export interface StdinIo {
  input: Readable
  /** Where `{"ack": ...}` lines go; none when absent. */
  acks?: Writable
}

export class StdinTransport implements Transport {
  readonly name = 'stdin'
  private conn: StreamConnection | undefined

  constructor (private readonly io: StdinIo, private readonly ctx: TransportContext) {}

  async start (): Promise<{ address: string }> {
    if (this.conn !== undefined) throw new Error('stdin transport already started')
    const { input, acks } = this.io
    const conn = new StreamConnection(input, { transport: 'stdin', format: 'jsonl', ctx: this.ctx, ...(acks === undefined ? {} : { ackOut: acks }) })
    this.conn = conn
    input.on('error', this.onError)
    input.on('end', this.onEnd)
    acks?.on('error', this.onError)
    return { address: 'stdin' }
  }

  async stop (): Promise<void> {
    const conn = this.conn
    if (conn === undefined) return
    this.conn = undefined
    await conn.stop()
    this.io.input.off('error', this.onError)
    this.io.input.off('end', this.onEnd)
    this.io.acks?.off('error', this.onError)
  }

  private readonly onError = (err: unknown): void => { this.ctx.pipeline.countError('stdin', err, 'stream') }

  private readonly onEnd = (): void => {
    this.ctx.logger.info({ transport: 'stdin' }, 'stdin ended')
    this.conn?.finish().catch(() => {})
  }
}
