/**
 * A Modbus RTU bus with slaves on it, on the device side of a pty pair
 * (test/integration/helpers/socat.ts): reads 8-byte read requests (FC 1-4, CRC checked, resyncing
 * byte by byte after garbage), answers for the units it has (exception 2 for an address it does
 * not hold), stays silent for the others. Closed in t.teardown.
 */
import { constants, openSync } from 'node:fs'
import tty from 'node:tty'
import type { Test } from 'tap'
import { TtyWriter } from '../../src/ingest/transports/tty-writer.js'
import { answerRead, modbusCrc, rtuFrame, type RegisterBank } from './modbus-bank.js'

export interface RtuSlaveOptions {
  units: Record<number, RegisterBank>
  /** Bytes written in front of every answer (line noise at bus turnaround). */
  noise?: Buffer
}

export interface RtuBus {
  /** Requests seen, per unit id (answered or not). */
  readonly requests: Map<number, number>
  /** Exception answers sent, per unit id. */
  readonly exceptions: Map<number, number>
  close (): void
}

export function startRtuSlave (t: Test, path: string, options: RtuSlaveOptions): RtuBus {
  const flags = constants.O_NOCTTY | constants.O_NONBLOCK
  const reader = new tty.ReadStream(openSync(path, constants.O_RDONLY | flags))
  const writer = new TtyWriter(openSync(path, constants.O_WRONLY | flags))
  const requests = new Map<number, number>()
  const exceptions = new Map<number, number>()
  const bump = (m: Map<number, number>, k: number): void => { m.set(k, (m.get(k) ?? 0) + 1) }
  let pending = Buffer.alloc(0)
  reader.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk])
    while (pending.length >= 8) {
      if (modbusCrc(pending.subarray(0, 6)) !== pending.readUInt16LE(6)) {
        pending = pending.subarray(1)
        continue
      }
      const unitId = pending[0] as number
      const functionCode = pending[1] as number
      const address = pending.readUInt16BE(2)
      const count = pending.readUInt16BE(4)
      pending = pending.subarray(8)
      bump(requests, unitId)
      const bank = options.units[unitId]
      if (bank === undefined) continue
      const pdu = answerRead(bank, functionCode, address, count)
      if (((pdu[0] as number) & 0x80) !== 0) bump(exceptions, unitId)
      const frame = rtuFrame(unitId, pdu)
      writer.write(options.noise === undefined ? frame : Buffer.concat([options.noise, frame]))
    }
  })
  reader.on('error', () => {})
  writer.on('error', () => {})
  const close = (): void => { reader.destroy(); writer.destroy() }
  t.teardown(close)
  return { requests, exceptions, close }
}
