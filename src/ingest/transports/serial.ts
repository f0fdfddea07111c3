/**
 * A serial line (PROTOCOL.md section 1, byte streams): COBS frames in, ack frames out.
 *
 * The tty is put in raw mode with `stty -F PATH raw -echo <baud>` (execFile, no shell), then
 * opened twice, both O_NONBLOCK: a tty.ReadStream reads (epoll, so stop() can always close it;
 * an fs read stream would park a threadpool thread in read() until the device sends, and could
 * not be cancelled), and a TtyWriter writes acks (see tty-writer.ts).
 *
 * A serial port comes and goes (a USB adapter unplugged, not yet enumerated at boot): start()
 * does not fail when the port cannot be opened; the error is counted and logged, and the port is
 * reopened with backoff from 1 s to 30 s, also after a read error or end of input.
 */
import { execFile } from 'node:child_process'
import { constants, open as openCb, closeSync } from 'node:fs'
import tty from 'node:tty'
import { promisify } from 'node:util'
import { StreamConnection } from './stream-connection.js'
import { TtyWriter } from './tty-writer.js'
import { DEFAULT_STOP_TIMEOUT_MS, type Transport, type TransportContext } from './transport.js'

const openFd = promisify(openCb)
const execFileP = promisify(execFile)

export interface SerialPortOptions { path: string, baud: number }

/** Puts the tty in raw mode at `baud`. Replaceable for tests and for systems without GNU stty. */
export type ConfigureTty = (path: string, baud: number) => Promise<void>

export const sttyRaw: ConfigureTty = async (path, baud) => {
  await execFileP('stty', ['-F', path, 'raw', '-echo', String(baud)], { timeout: 5000 })
}

const RETRY_MIN_MS = 1000
const RETRY_MAX_MS = 30_000

type State =
  | { kind: 'new' }
  | { kind: 'open', reader: tty.ReadStream, writer: TtyWriter, conn: StreamConnection }
  | { kind: 'waiting', timer: NodeJS.Timeout }
  | { kind: 'busy' }
  | { kind: 'stopped' }

export class SerialTransport implements Transport {
  readonly name = 'serial'
  private state: State = { kind: 'new' }
  private retryMs = RETRY_MIN_MS

  constructor (private readonly port: SerialPortOptions, private readonly ctx: TransportContext,
    private readonly configure: ConfigureTty = sttyRaw) {}

  async start (): Promise<{ address: string }> {
    if (this.state.kind !== 'new') throw new Error('serial transport already started')
    await this.attempt()
    return { address: this.port.path }
  }

  async stop (): Promise<void> {
    const state = this.state
    this.state = { kind: 'stopped' }
    if (state.kind === 'waiting') clearTimeout(state.timer)
    if (state.kind === 'open') await this.close(state)
  }

  /** Read through a method: TypeScript would keep `state` narrowed across an await. */
  private isStopped (): boolean { return this.state.kind === 'stopped' }

  /** True while the port is open (for tests and status). */
  get isOpen (): boolean { return this.state.kind === 'open' }

  private async attempt (): Promise<void> {
    this.state = { kind: 'busy' }
    try {
      const opened = await this.open()
      if (this.isStopped()) {
        await this.close(opened)
        return
      }
      this.state = opened
      this.retryMs = RETRY_MIN_MS
      this.ctx.logger.info({ transport: 'serial', path: this.port.path, baud: this.port.baud }, 'serial port open')
    } catch (err) {
      this.ctx.pipeline.countError('serial', err, `open ${this.port.path}`)
      this.retryLater()
    }
  }

  private async open (): Promise<Extract<State, { kind: 'open' }>> {
    await this.configure(this.port.path, this.port.baud)
    const flags = constants.O_NOCTTY | constants.O_NONBLOCK
    const readFd = await openFd(this.port.path, constants.O_RDONLY | flags)
    let writeFd: number
    try {
      writeFd = await openFd(this.port.path, constants.O_WRONLY | flags)
    } catch (err) {
      closeSync(readFd)
      throw err
    }
    const reader = new tty.ReadStream(readFd)
    const writer = new TtyWriter(writeFd)
    const conn = new StreamConnection(reader, { transport: 'serial', format: 'frames', ctx: this.ctx, ackOut: writer })
    const lost = (err?: unknown): void => {
      if (err !== undefined) this.ctx.pipeline.countError('serial', err, `read ${this.port.path}`)
      if (this.state.kind === 'open' && this.state.reader === reader) {
        const current = this.state
        this.state = { kind: 'busy' }
        this.close(current).finally(() => this.retryLater())
      }
    }
    reader.on('error', lost)
    reader.on('end', () => lost())
    writer.on('error', (err) => this.ctx.pipeline.countError('serial', err, `write ${this.port.path}`))
    return { kind: 'open', reader, writer, conn }
  }

  private async close (state: Extract<State, { kind: 'open' }>): Promise<void> {
    await state.conn.stop(this.ctx.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS)
    state.reader.destroy()
    state.writer.destroy()
  }

  private retryLater (): void {
    if (this.state.kind === 'stopped') return
    const delay = this.retryMs
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS)
    const timer = setTimeout(() => { this.attempt().catch(() => {}) }, delay)
    timer.unref()
    this.state = { kind: 'waiting', timer }
  }
}
