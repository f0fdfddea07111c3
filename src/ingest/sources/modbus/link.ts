/**
 * One Modbus connection (a TCP socket to a device or gateway, or an RTU serial line) shared by
 * the devices configured on it.
 *
 * - Requests go one at a time, in the order asked (a promise chain): Modbus is request/response,
 *   an RTU bus carries one transaction at a time, and a TCP gateway in front of a serial bus
 *   serializes anyway. The chain holds at most one request per device (a poll reads its requests
 *   one after the other, and a device's polls never overlap).
 * - RTU: before a request, the line stays silent for 3.5 characters after the previous answer or
 *   timeout (Modbus over Serial Line v1.02 §2.5.1.1; fixed 1.75 ms above 19200 baud).
 * - The connection is opened in the background and reopened with Backoff (full jitter, 1 s to
 *   30 s) after a failure or loss; a request while it is down fails at once as `connect`, a
 *   request while it is being opened waits for that attempt (bounded by the connect timeout).
 * - A lost connection fails its request in flight as `connect` at once, not after a timeout.
 * - TCP: a request that timed out while bytes did arrive means a torn or late answer; the stream
 *   can no longer be trusted to be in step (MBAP lengths read from the wrong place), so the
 *   connection is dropped and reopened. A device that never answers keeps its connection.
 * - Logged once per change: opened, failed (again only when the problem changes), lost.
 */
import net from 'node:net'
import { Backoff } from '../../../backoff.js'
import { systemClock, type Clock, type ClockTimer } from '../../../clock.js'
import type { Logger } from '../../../observe/log.js'
import { within } from '../../transports/transport.js'
import { readThrough, type ModbusClient, type ModbusSerial, type ReadOutcome, type ReadRequest } from './client.js'
import { openTtyPort, sttyLine, type ConfigureLine, type RtuLine } from './tty-port.js'

export type LinkTarget = { kind: 'tcp', host: string, port: number } | ({ kind: 'rtu' } & RtuLine)

/** What a device poller needs of a connection. */
export interface ModbusReader {
  /** Never rejects. */
  read (request: ReadRequest): Promise<ReadOutcome>
}

export interface LinkOptions {
  target: LinkTarget
  /** The answer timeout of every request. */
  timeoutMs: number
  logger: Logger
  clock?: Clock
  configureLine?: ConfigureLine
  /** Called on each successful open. */
  onOpen?: () => void
}

const BACKOFF = { initialMs: 1000, maxMs: 30_000, multiplier: 2 }
/** A TCP handshake over a cellular or VPN link can take seconds; a device's answer timeout may be 10 ms. */
const MIN_CONNECT_TIMEOUT_MS = 5000
/** Finds a silently dead peer (a gateway power-cycled behind a NAT) between polls. */
const KEEPALIVE_MS = 10_000

/** An open socket or tty with its client. */
class Connection {
  private listeners = new Set<(reason: unknown) => void>()
  private closed: { reason: unknown } | undefined

  constructor (readonly client: ModbusClient, private readonly destroyAll: () => void, readonly bytesIn: () => number) {}

  /** Calls `fn` once the connection is gone (at once if it is); returns the unsubscribe. */
  onClose (fn: (reason: unknown) => void): () => void {
    if (this.closed !== undefined) { fn(this.closed.reason); return () => {} }
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  closedBy (reason: unknown): void {
    if (this.closed !== undefined) return
    this.closed = { reason }
    const listeners = [...this.listeners]
    this.listeners.clear()
    for (const fn of listeners) fn(reason)
  }

  destroy (): void {
    this.destroyAll()
    this.closedBy(new Error('closed by the gateway'))
  }
}

type State =
  | { kind: 'new' }
  | { kind: 'connecting', done: Promise<void>, abort: AbortController }
  | { kind: 'open', conn: Connection, since: number }
  | { kind: 'backoff', timer: ClockTimer, until: number }
  | { kind: 'stopped' }

export class ModbusLink implements ModbusReader {
  private state: State = { kind: 'new' }
  private queue: Promise<unknown> = Promise.resolve()
  private readonly backoff = new Backoff(BACKOFF)
  private readonly clock: Clock
  private readonly silenceMs: number
  private lib: ModbusSerial | undefined
  private lastAnswerAt = -Infinity
  /** The connection problem logged last; undefined while open. */
  private problem: string | undefined

  constructor (private readonly options: LinkOptions) {
    this.clock = options.clock ?? systemClock
    const t = options.target
    this.silenceMs = t.kind === 'rtu' ? (t.baud > 19_200 ? 2 : Math.ceil(3.5 * 11 * 1000 / t.baud)) : 0
  }

  get isOpen (): boolean { return this.state.kind === 'open' }

  /** Starts connecting in the background. */
  start (lib: ModbusSerial): void {
    if (this.state.kind !== 'new') return
    this.lib = lib
    this.connect()
  }

  read (request: ReadRequest): Promise<ReadOutcome> {
    const run = this.queue.then(async () => await this.readNow(request))
    this.queue = run.catch(() => {})
    return run
  }

  /** Closes the connection; requests in flight fail as `connect`. Bounded by `timeoutMs`. */
  async stop (timeoutMs: number): Promise<void> {
    const s = this.state
    this.state = { kind: 'stopped' }
    if (s.kind === 'backoff') this.clock.clearTimer(s.timer)
    if (s.kind === 'open') s.conn.destroy()
    if (s.kind === 'connecting') {
      s.abort.abort()
      await within(s.done, timeoutMs)
    }
    await within(this.queue, timeoutMs)
  }

  /** Read through a method: TypeScript would keep `state` narrowed across an await. */
  private current (): State { return this.state }

  private async readNow (request: ReadRequest): Promise<ReadOutcome> {
    const before = this.current()
    if (before.kind === 'connecting') await before.done
    const state = this.current()
    if (state.kind !== 'open') return { ok: false, failure: 'connect', detail: this.problem ?? 'not connected' }
    const { conn } = state
    const rtu = this.options.target.kind === 'rtu'
    const wait = this.lastAnswerAt + this.silenceMs - this.clock.now()
    if (wait > 0) await this.clock.sleep(wait)
    const bytesBefore = conn.bytesIn()
    const lost = new AbortController()
    const unsubscribe = conn.onClose(reason => { lost.abort(reason) })
    const outcome = await readThrough(conn.client, request, this.options.timeoutMs, rtu ? 5 : 9, lost.signal)
    unsubscribe()
    this.lastAnswerAt = this.clock.now()
    if (!rtu && !outcome.ok && outcome.failure === 'timeout' && conn.bytesIn() !== bytesBefore) {
      this.lost(conn, 'a torn or late answer: the TCP stream is out of step')
    }
    return outcome
  }

  private connect (): void {
    const lib = this.lib
    if (this.state.kind === 'stopped' || lib === undefined) return
    const abort = new AbortController()
    const done = this.dial(lib, abort.signal)
      .then(conn => { this.opened(conn) }, err => { this.failed(err) })
      .catch(err => { this.options.logger.error({ err }, 'modbus connection handling failed') })
    this.state = { kind: 'connecting', done, abort }
  }

  private opened (conn: Connection): void {
    if (this.state.kind === 'stopped') { conn.destroy(); return }
    this.state = { kind: 'open', conn, since: this.clock.now() }
    const attempts = this.backoff.failures
    this.backoff.reset()
    this.problem = undefined
    this.options.logger.info(attempts > 0 ? { failedAttempts: attempts } : {}, 'modbus connection open')
    conn.onClose(reason => { this.lost(conn, reason) })
    this.options.onOpen?.()
  }

  private failed (err: unknown): void {
    if (this.state.kind === 'stopped') return
    const problem = describe(err)
    const delay = this.backoff.next()
    if (problem !== this.problem) {
      this.problem = problem
      this.options.logger.warn({ reason: problem, retryInMs: delay }, 'modbus connection failed')
    }
    this.retryIn(delay)
  }

  private lost (conn: Connection, reason: unknown): void {
    const s = this.state
    if (s.kind !== 'open' || s.conn !== conn) return
    // State first: destroying calls the close listeners, this one among them.
    const delay = this.backoff.next()
    this.retryIn(delay)
    this.problem = `lost: ${describe(reason)}`
    conn.destroy()
    this.options.logger.warn({ reason: describe(reason), retryInMs: delay }, 'modbus connection lost')
  }

  private retryIn (delay: number): void {
    const timer = this.clock.setTimer(() => { this.connect() }, delay)
    this.state = { kind: 'backoff', timer, until: this.clock.now() + delay }
  }

  private async dial (lib: ModbusSerial, signal: AbortSignal): Promise<Connection> {
    const t = this.options.target
    return t.kind === 'tcp' ? await this.dialTcp(lib, t.host, t.port, signal) : await this.dialRtu(lib, t, signal)
  }

  private async dialTcp (lib: ModbusSerial, host: string, port: number, signal: AbortSignal): Promise<Connection> {
    const socket = new net.Socket()
    let lastError: unknown
    socket.on('error', (err) => { lastError = err })
    const ms = Math.max(this.options.timeoutMs, MIN_CONNECT_TIMEOUT_MS)
    await new Promise<void>((resolve, reject) => {
      const timer = this.clock.setTimer(() => { socket.destroy(new Error(`no TCP connection within ${ms} ms`)) }, ms)
      const onAbort = (): void => { socket.destroy(new Error('stopped')) }
      const end = (err?: unknown): void => {
        this.clock.clearTimer(timer)
        signal.removeEventListener('abort', onAbort)
        socket.off('connect', onConnect)
        socket.off('close', onClose)
        if (err === undefined) resolve()
        else reject(err)
      }
      const onConnect = (): void => { end() }
      const onClose = (): void => { end(lastError ?? new Error('connection closed')) }
      signal.addEventListener('abort', onAbort, { once: true })
      socket.once('connect', onConnect)
      socket.once('close', onClose)
      socket.connect({ host, port })
    })
    socket.setNoDelay(true)
    socket.setKeepAlive(true, KEEPALIVE_MS)
    const client = new lib.Client(new lib.TcpPort({ socket }))
    let received = 0
    socket.on('data', (d: Buffer) => { received += d.length })
    const conn = new Connection(client, () => { client.destroy(() => {}); socket.destroy() }, () => received)
    socket.once('close', () => { conn.closedBy(lastError ?? new Error('closed by the device')) })
    await this.openClient(client)
    return conn
  }

  private async dialRtu (lib: ModbusSerial, line: RtuLine, signal: AbortSignal): Promise<Connection> {
    const port = await openTtyPort(line, this.options.configureLine ?? sttyLine)
    if (signal.aborted) {
      port.destroy()
      throw new Error('stopped')
    }
    const client = new lib.Client(port)
    const conn = new Connection(client, () => { client.destroy(() => {}); port.destroy() }, () => 0)
    port.once('close', () => { conn.closedBy(port.closeReason ?? new Error('serial line closed')) })
    await this.openClient(client)
    return conn
  }

  private async openClient (client: ModbusClient): Promise<void> {
    // The client re-emits port errors as 'error'; an EventEmitter 'error' without a listener
    // throws. The link learns of a broken line from the socket or tty itself.
    client.on('error', () => {})
    client.setTimeout(this.options.timeoutMs)
    await new Promise<void>((resolve, reject) => {
      client.open(err => { if (err === null || err === undefined) resolve(); else reject(err) })
    })
  }
}

function describe (err: unknown): string {
  if (typeof err === 'string') return err
  if (err instanceof Error) return err.message
  return String(err)
}
