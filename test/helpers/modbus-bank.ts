/**
 * What a simulated Modbus device holds and how it answers a read PDU, shared by the RTU slave
 * (modbus-rtu-slave.ts) and the scripted TCP servers (modbus-tcp.ts). Written from the spec
 * (Modbus Application Protocol v1.1b3 §6.1-6.4, §7), not from src/, so the tests check the
 * source against an independent implementation: its own CRC, its own word packing.
 */

export interface RegisterBank {
  holding?: Record<number, number>
  input?: Record<number, number>
  coil?: Record<number, boolean>
  discrete?: Record<number, boolean>
}

export type WordOrder = 'big' | 'little'

/** The two registers of a 32-bit value, in the device's word order. */
export function words32 (kind: 'int32' | 'uint32' | 'float32', value: number, order: WordOrder): [number, number] {
  const b = Buffer.alloc(4)
  if (kind === 'int32') b.writeInt32BE(value)
  else if (kind === 'uint32') b.writeUInt32BE(value)
  else b.writeFloatBE(value)
  const high = b.readUInt16BE(0)
  const low = b.readUInt16BE(2)
  return order === 'big' ? [high, low] : [low, high]
}

/** Puts `words` at `address` onwards. */
export function place (table: Record<number, number>, address: number, words: readonly number[]): void {
  words.forEach((w, i) => { table[address + i] = w })
}

/** The CRC-16/MODBUS of `bytes`, bit by bit (Modbus over Serial Line v1.02 §6.2.2). */
export function modbusCrc (bytes: Uint8Array): number {
  let crc = 0xffff
  for (const byte of bytes) {
    crc ^= byte
    for (let i = 0; i < 8; i++) {
      const lsb = crc & 1
      crc >>= 1
      if (lsb === 1) crc ^= 0xa001
    }
  }
  return crc
}

/** `pdu` framed for RTU: unit id in front, CRC (low byte first) behind. */
export function rtuFrame (unitId: number, pdu: Uint8Array): Buffer {
  const frame = Buffer.alloc(pdu.length + 3)
  frame[0] = unitId
  frame.set(pdu, 1)
  frame.writeUInt16LE(modbusCrc(frame.subarray(0, pdu.length + 1)), pdu.length + 1)
  return frame
}

/** The response PDU to a read (FC 1-4) of `bank`: the data, or exception 1/2/3. */
export function answerRead (bank: RegisterBank, functionCode: number, address: number, count: number): Buffer {
  const exception = (code: number): Buffer => Buffer.from([functionCode | 0x80, code])
  const bits = functionCode === 1 ? bank.coil : functionCode === 2 ? bank.discrete : undefined
  const regs = functionCode === 3 ? bank.holding : functionCode === 4 ? bank.input : undefined
  if (bits === undefined && regs === undefined) return exception(functionCode >= 1 && functionCode <= 4 ? 2 : 1)
  if (count < 1 || count > (bits !== undefined ? 2000 : 125)) return exception(3)
  if (bits !== undefined) {
    const data = Buffer.alloc(Math.ceil(count / 8))
    for (let i = 0; i < count; i++) {
      const v = bits[address + i]
      if (v === undefined) return exception(2)
      if (v) data[i >> 3] = (data[i >> 3] as number) | (1 << (i & 7))
    }
    return Buffer.concat([Buffer.from([functionCode, data.length]), data])
  }
  const data = Buffer.alloc(2 * count)
  for (let i = 0; i < count; i++) {
    const v = (regs as Record<number, number>)[address + i]
    if (v === undefined) return exception(2)
    data.writeUInt16BE(v, 2 * i)
  }
  return Buffer.concat([Buffer.from([functionCode, data.length]), data])
}
