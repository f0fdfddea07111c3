/**
 * A serial line as the "port" modbus-serial's client drives (`new ModbusRTU(port)`), without the
 * `serialport` package: its native addon cannot be part of the single-executable build.
 *
 * The contract (modbus-serial ports/rtubufferedport.js, ports/testport.js): `open(cb)`,
 * `close(cb)`, `destroy()`, `isOpen`, `write(adu)` with a CRC-terminated RTU request, and a
 * 'data' event with exactly one whole response frame, a 'close' event when the line goes away.
 * The client stores its transaction ids on the port (`_transactionIdRead/Write`).
 *
 * The tty is opened like ingest.serial's (../../transports/serial.ts): `stty` puts it in raw mode
 * with the configured rate and character format, then it is opened twice, O_NONBLOCK: a
 * tty.ReadStream reads (epoll: stop() can always close it) and a TtyWriter writes (a full
 * output buffer never parks a threadpool thread). rtu-frame.ts finds the response in what is read.
 */
import { execFile } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { closeSync, constants, open as openCb } from 'node:fs'
import tty from 'node:tty'
import { promisify } from 'node:util'
import type { PARITIES } from '../../../config/source-schema.js'
import { TtyWriter } from '../../transports/tty-writer.js'
import { expectedResponse, RtuResponseFramer } from './rtu-frame.js'

const openFd = promisify(openCb)
const execFileP = promisify(execFile)

export interface RtuLine {
  path: string
  baud: number
  parity: typeof PARITIES[number]
  dataBits: 7 | 8
  stopBits: 1 | 2
}

/** Applies stty arguments (after `-F path`) to the tty. Replaceable for tests and systems without GNU stty. */
export type ConfigureLine = (path: string, args: readonly string[]) => Promise<void>

export const sttyLine: ConfigureLine = async (path, args) => {
  await execFileP('stty', ['-F', path, ...args], { timeout: 5000 })
}

/**
 * The stty arguments for the line: raw, no echo, rate, parity, data and stop bits. `clocal`
 * because an RS-485 adapter has no carrier-detect line to wait for, `-crtscts` because Modbus RTU
 * has no hardware flow control (a port left with it on would never send).
 */
export function sttyArgs (line: Omit<RtuLine, 'path'>): string[] {
  const parity = line.parity === 'none' ? ['-parenb'] : ['parenb', line.parity === 'odd' ? 'parodd' : '-parodd']
  return ['raw', '-echo', String(line.baud), ...parity, line.dataBits === 7 ? 'cs7' : 'cs8',
    line.stopBits === 2 ? 'cstopb' : '-cstopb', 'clocal', '-crtscts']
}

export async function openTtyPort (line: RtuLine, configure: ConfigureLine = sttyLine): Promise<TtyModbusPort> {
  await configure(line.path, sttyArgs(line))
  const flags = constants.O_NOCTTY | constants.O_NONBLOCK
  const readFd = await openFd(line.path, constants.O_RDONLY | flags)
  let writeFd: number
  try {
    writeFd = await openFd(line.path, constants.O_WRONLY | flags)
  } catch (err) {
    closeSync(readFd)
    throw err
  }
  return new TtyModbusPort(new tty.ReadStream(readFd), new TtyWriter(writeFd))
}

export class TtyModbusPort extends EventEmitter {
  /** Set and read by modbus-serial's client; an RTU line has one transaction at a time. */
  _transactionIdRead = 1
  _transactionIdWrite = 1
  /** Why the line closed, when it was not close()/destroy(). */
  closeReason: unknown
  private open_ = true
  private readonly framer = new RtuResponseFramer()

  constructor (private readonly reader: tty.ReadStream, private readonly writer: TtyWriter) {
    super()
    reader.on('data', (chunk: Buffer) => {
      // The client's parser runs inside this emit: whatever it does, it must not throw out of a
      // stream event. A frame it cannot use then ends as the request's timeout.
      try {
        const frame = this.framer.push(chunk)
        if (frame !== undefined) this.emit('data', frame)
      } catch (err) {
        this.emit('fault', err)
      }
    })
    reader.on('error', (err) => { this.lost(err) })
    reader.on('end', () => { this.lost(new Error('end of input on the serial line')) })
    writer.on('error', (err) => { this.lost(err) })
  }

  get isOpen (): boolean { return this.open_ }

  open (callback?: (err: Error | null) => void): void {
    callback?.(this.open_ ? null : new Error('serial line closed'))
  }

  write (adu: Buffer): void {
    if (!this.open_) return
    this.framer.expect(expectedResponse(adu))
    this.writer.write(adu)
  }

  close (callback?: (err: Error | null) => void): void {
    this.destroy()
    callback?.(null)
  }

  destroy (): void {
    if (!this.open_) return
    this.open_ = false
    this.reader.destroy()
    this.writer.destroy()
    this.emit('close')
  }

  private lost (err: unknown): void {
    if (!this.open_) return
    this.closeReason = err
    this.destroy()
  }
}
