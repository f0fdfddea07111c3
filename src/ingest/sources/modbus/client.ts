/**
 * The seam to modbus-serial: loading it, one read request through its client, and what its
 * errors mean for us.
 *
 * Loaded with a dynamic import on the first start() of a Modbus source, so a gateway without
 * Modbus never loads it. Only the client class (PDU encoding, CRC, transaction matching and its
 * per-request timeout) and its TcpPort are used; the serial side is ours (tty-port.ts).
 * modbus-serial ships typings for its client, not for TcpPort or the callback API's error
 * objects, hence the small interfaces below.
 *
 * A request settles exactly once: the library can call back more than once for one transaction
 * (its timeout, then a late response that fails a check), and it may never call back at all if
 * the port swallowed the write; a guard timer `timeout + GUARD_MS` bounds the wait regardless.
 */
import type { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import type { ModbusTable } from './decode.js'

interface ReadResult { data: ReadonlyArray<number | boolean>, buffer: Buffer }
type ReadCallback = (err: unknown, result?: ReadResult) => void

/** What we use of modbus-serial's ModbusRTU class. */
export interface ModbusClient {
  setTimeout (ms: number): void
  open (callback: (err: unknown) => void): void
  /** Cancels pending transactions' timers and destroys the port. */
  destroy (callback: () => void): void
  on (event: 'error' | 'close', listener: (...args: unknown[]) => void): unknown
  writeFC1 (unitId: number, address: number, count: number, next: ReadCallback): void
  writeFC2 (unitId: number, address: number, count: number, next: ReadCallback): void
  writeFC3 (unitId: number, address: number, count: number, next: ReadCallback): void
  writeFC4 (unitId: number, address: number, count: number, next: ReadCallback): void
}

export interface ModbusSerial {
  Client: new (port: EventEmitter) => ModbusClient
  /** modbus-serial's TCP port over a socket we connected (`{ socket }`): MBAP framing. */
  TcpPort: new (options: { socket: Socket }) => EventEmitter
}

export async function loadModbusSerial (): Promise<ModbusSerial> {
  const module = await import('modbus-serial')
  // CommonJS: the class is module.exports, its ports are properties of it.
  const Client = module.default as unknown as ModbusSerial['Client'] & { TcpPort?: ModbusSerial['TcpPort'] }
  if (typeof Client !== 'function' || typeof Client.TcpPort !== 'function') throw new Error('modbus-serial does not export the client class and TcpPort')
  return { Client, TcpPort: Client.TcpPort }
}

export interface ReadRequest {
  unitId: number
  table: ModbusTable
  address: number
  count: number
}

/** How a read failed. `bad_response`: an answer that fails a check (CRC, length, unit id, function code). */
export type ReadFailure = 'timeout' | 'exception' | 'connect' | 'bad_response'

export type ReadOutcome =
  | { ok: true, values: number[], bytes: number }
  | { ok: false, failure: ReadFailure, detail: string, exceptionCode?: number }

/** Exception codes, Modbus Application Protocol v1.1b3 §7. */
const EXCEPTION_NAMES: Readonly<Record<number, string>> = {
  1: 'ILLEGAL FUNCTION',
  2: 'ILLEGAL DATA ADDRESS',
  3: 'ILLEGAL DATA VALUE',
  4: 'SERVER DEVICE FAILURE',
  5: 'ACKNOWLEDGE',
  6: 'SERVER DEVICE BUSY',
  8: 'MEMORY PARITY ERROR',
  10: 'GATEWAY PATH UNAVAILABLE',
  11: 'GATEWAY TARGET DEVICE FAILED TO RESPOND'
}

export function exceptionName (code: number): string {
  return EXCEPTION_NAMES[code] ?? 'UNKNOWN EXCEPTION'
}

const FUNCTION_CODE = { coil: 1, discrete: 2, holding: 3, input: 4 } as const
const GUARD_MS = 1000

/**
 * One read through the client (whose own timeout is set to the connection's). Never rejects;
 * settles as `connect` at once when `lost` aborts (the socket or tty went away).
 * `overhead`: the response's framing bytes around its data (RTU 5: unit, function, count, CRC;
 * TCP 9: the 7-byte MBAP header, function, count), so `bytes` is what crossed the wire.
 */
export async function readThrough (client: ModbusClient, request: ReadRequest, timeoutMs: number, overhead: number, lost: AbortSignal): Promise<ReadOutcome> {
  return await new Promise<ReadOutcome>(resolve => {
    let settled = false
    const settle = (outcome: ReadOutcome): void => {
      if (settled) return
      settled = true
      clearTimeout(guard)
      lost.removeEventListener('abort', onLost)
      resolve(outcome)
    }
    const onLost = (): void => { settle({ ok: false, failure: 'connect', detail: `connection lost: ${message(lost.reason)}` }) }
    const guard = setTimeout(() => { settle({ ok: false, failure: 'timeout', detail: `no answer within ${timeoutMs} ms` }) }, timeoutMs + GUARD_MS)
    if (lost.aborted) { onLost(); return }
    lost.addEventListener('abort', onLost, { once: true })
    const { unitId, table, address, count } = request
    const next: ReadCallback = (err, result) => {
      settle(err !== null && err !== undefined ? classify(err, timeoutMs) : checked(result, table, count, overhead))
    }
    try {
      switch (FUNCTION_CODE[table]) {
        case 1: client.writeFC1(unitId, address, count, next); break
        case 2: client.writeFC2(unitId, address, count, next); break
        case 3: client.writeFC3(unitId, address, count, next); break
        case 4: client.writeFC4(unitId, address, count, next); break
      }
    } catch (err) {
      settle({ ok: false, failure: 'connect', detail: `write failed: ${message(err)}` })
    }
  })
}

function checked (result: ReadResult | undefined, table: ModbusTable, count: number, overhead: number): ReadOutcome {
  if (result === undefined || !Array.isArray(result.data) || !Buffer.isBuffer(result.buffer)) {
    return { ok: false, failure: 'bad_response', detail: 'the client returned no data' }
  }
  const bits = table === 'coil' || table === 'discrete'
  const byteCount = bits ? Math.ceil(count / 8) : 2 * count
  if (result.buffer.length !== byteCount || result.data.length < count) {
    return { ok: false, failure: 'bad_response', detail: `response holds ${result.buffer.length} data bytes, expected ${byteCount}` }
  }
  const values = new Array<number>(count)
  for (let i = 0; i < count; i++) {
    const v = result.data[i]
    values[i] = typeof v === 'boolean' ? (v ? 1 : 0) : Number(v)
  }
  return { ok: true, values, bytes: overhead + byteCount }
}

function classify (err: unknown, timeoutMs: number): ReadOutcome {
  const e = err as { modbusCode?: unknown, errno?: unknown, name?: unknown, message?: unknown }
  if (typeof e.modbusCode === 'number') {
    return { ok: false, failure: 'exception', exceptionCode: e.modbusCode, detail: `exception ${e.modbusCode} (${exceptionName(e.modbusCode)})` }
  }
  if (e.errno === 'ETIMEDOUT') return { ok: false, failure: 'timeout', detail: `no answer within ${timeoutMs} ms` }
  if (e.name === 'PortNotOpenError' || e.message === 'Port Not Open') return { ok: false, failure: 'connect', detail: 'connection not open' }
  return { ok: false, failure: 'bad_response', detail: message(err) }
}

function message (err: unknown): string {
  if (err instanceof Error) return err.message
  const m = (err as { message?: unknown } | undefined)?.message
  return typeof m === 'string' ? m : String(err)
}
