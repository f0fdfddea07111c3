/**
 * Modbus TCP peers on loopback for the Modbus source tests, each closed in t.teardown:
 * - modbusServer: modbus-serial's own ServerTCP over register banks (a well-behaved device or
 *   gateway; it cannot listen on port 0, so the port comes from freePort());
 * - silentServer: accepts connections, never answers;
 * - scriptedServer: parses MBAP requests and lets the test answer anything (garbage, a wrong
 *   unit id, a short response) or close the socket.
 */
import net from 'node:net'
import { ServerTCP } from 'modbus-serial'
import type { Test } from 'tap'
import { within } from '../../src/ingest/transports/transport.js'
import { answerRead, type RegisterBank } from './modbus-bank.js'
import { freePort } from './wait.js'

export interface ModbusServer {
  port: number
  /** Register read requests (FC 3 and 4) served, per table. */
  readonly requests: { holding: number, input: number }
  close (): Promise<void>
}

function modbusError (code: number): Error & { modbusErrorCode: number } {
  return Object.assign(new Error(`exception ${code}`), { modbusErrorCode: code })
}

export async function modbusServer (t: Test, units: Record<number, RegisterBank>, port?: number): Promise<ModbusServer> {
  const listenPort = port ?? await freePort()
  const requests = { holding: 0, input: 0 }
  const value = <V>(unitId: number, table: keyof RegisterBank, address: number): V => {
    const bank = units[unitId]
    if (bank === undefined) throw modbusError(11)
    const v = (bank[table] as Record<number, V> | undefined)?.[address]
    if (v === undefined) throw modbusError(2)
    return v
  }
  const many = (table: 'holding' | 'input') => (address: number, length: number, unitId: number): number[] => {
    requests[table]++
    return Array.from({ length }, (_, i) => value<number>(unitId, table, address + i))
  }
  const server = new ServerTCP({
    getMultipleHoldingRegisters: many('holding'),
    getMultipleInputRegisters: many('input'),
    getHoldingRegister: (address: number, unitId: number) => { requests.holding++; return value<number>(unitId, 'holding', address) },
    getInputRegister: (address: number, unitId: number) => { requests.input++; return value<number>(unitId, 'input', address) },
    getCoil: (address: number, unitId: number) => value<boolean>(unitId, 'coil', address),
    getDiscreteInput: (address: number, unitId: number) => value<boolean>(unitId, 'discrete', address)
  }, { host: '127.0.0.1', port: listenPort, unitID: 255 })
  server.on('socketError', () => {})
  server.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('ServerTCP did not start within 5 s')) }, 5000)
    server.on('initialized', () => { clearTimeout(timer); resolve() })
    server.on('serverError', (err) => { clearTimeout(timer); reject(err) })
  })
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await within(new Promise<void>(resolve => { server.close(() => { resolve() }) }), 5000)
  }
  t.teardown(close)
  return { port: listenPort, requests, close }
}

export interface PlainServer {
  port: number
  /** Connections accepted so far. */
  readonly connections: () => number
  close (): Promise<void>
}

async function listening (t: Test, onSocket: (socket: net.Socket) => void): Promise<PlainServer> {
  const sockets = new Set<net.Socket>()
  let accepted = 0
  const server = net.createServer(socket => {
    accepted++
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
    onSocket(socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { resolve() })
  })
  const close = async (): Promise<void> => {
    for (const s of sockets) s.destroy()
    await within(new Promise<void>(resolve => server.close(() => { resolve() })), 5000)
  }
  t.teardown(close)
  return { port: (server.address() as net.AddressInfo).port, connections: () => accepted, close }
}

/** Accepts and reads, never answers. */
export async function silentServer (t: Test): Promise<PlainServer> {
  return await listening(t, socket => { socket.resume() })
}

export interface MbapRequest { transactionId: number, unitId: number, functionCode: number, address: number, count: number }

/** The MBAP frame of a response PDU. */
export function mbap (transactionId: number, unitId: number, pdu: Uint8Array): Buffer {
  const header = Buffer.alloc(7)
  header.writeUInt16BE(transactionId, 0)
  header.writeUInt16BE(0, 2)
  header.writeUInt16BE(pdu.length + 1, 4)
  header[6] = unitId
  return Buffer.concat([header, pdu])
}

/** Calls `answer` for each read request; it writes whatever it likes to the socket. */
export async function scriptedServer (t: Test, answer: (request: MbapRequest, socket: net.Socket, bank: (bank: RegisterBank) => Buffer) => void): Promise<PlainServer> {
  return await listening(t, socket => {
    let pending = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk])
      while (pending.length >= 12) {
        const length = pending.readUInt16BE(4)
        if (pending.length < 6 + length) return
        const request: MbapRequest = {
          transactionId: pending.readUInt16BE(0),
          unitId: pending[6] as number,
          functionCode: pending[7] as number,
          address: pending.readUInt16BE(8),
          count: pending.readUInt16BE(10)
        }
        pending = pending.subarray(6 + length)
        answer(request, socket, bank => mbap(request.transactionId, request.unitId, answerRead(bank, request.functionCode, request.address, request.count)))
      }
    })
  })
}
