/**
 * Register values: from the words (or bits) a Modbus read returned to the numbers of an event.
 *
 * Modbus itself only knows 16-bit registers, big-endian on the wire (Modbus Application
 * Protocol v1.1b3 §4.2), and single bits. Wider values are a device convention: two consecutive
 * registers, high word first ("big", what most meters do and our default) or low word first
 * ("little", e.g. some Schneider and Enron-style devices). Bytes inside a word are never swapped:
 * the library has already read each register big-endian.
 *
 * value = raw × scale + offset, for every type; a bool's raw value is 1 or 0. The result can be
 * NaN or ±Infinity only for a float32 the device sent that way (or a scale that overflows it):
 * the poller leaves such a name out of the event (device-poller.ts).
 */
import type { z } from 'zod'
import type { MODBUS_TABLES, MODBUS_TYPES, modbusConnections, WORD_ORDERS } from '../../../config/source-schema.js'

/** `ingest.modbus` as validated (the same type as Config['ingest']['modbus'] once the section includes it). */
export type ModbusConnectionsConfig = z.output<typeof modbusConnections>
export type ModbusConnectionConfig = ModbusConnectionsConfig[number]
export type ModbusDeviceConfig = ModbusConnectionConfig['devices'][number]
export type ModbusTable = typeof MODBUS_TABLES[number]
export type ModbusType = typeof MODBUS_TYPES[number]
export type WordOrder = typeof WORD_ORDERS[number]

/** One configured register with every default applied. */
export interface RegisterSpec {
  name: string
  stream: string
  table: ModbusTable
  address: number
  type: ModbusType
  wordOrder: WordOrder
  scale: number
  offset: number
}

export function isBitTable (table: ModbusTable): boolean {
  return table === 'coil' || table === 'discrete'
}

/** How many registers (or bits) a value of this type occupies. */
export function widthOf (type: ModbusType): 1 | 2 {
  return type === 'int32' || type === 'uint32' || type === 'float32' ? 2 : 1
}

/** The device's registers with the defaults of the schema's comments applied (type, stream, word order). */
export function resolveRegisters (device: ModbusDeviceConfig): RegisterSpec[] {
  return device.registers.map(r => ({
    name: r.name,
    stream: r.stream ?? device.stream,
    table: r.table,
    address: r.address,
    type: r.type ?? (isBitTable(r.table) ? 'bool' : 'uint16'),
    wordOrder: r.wordOrder ?? device.wordOrder,
    scale: r.scale,
    offset: r.offset
  }))
}

// One scratch buffer for the 32-bit reinterpretations: decoding runs synchronously, one value at a time.
const scratch = new DataView(new ArrayBuffer(4))

/**
 * The raw value of a `type` starting at `values[at]`. `values` holds register words (0-65535) or,
 * for coils and discrete inputs, bits as 1/0. The caller guarantees `at + widthOf(type)` is in range.
 */
export function decodeRaw (values: ArrayLike<number>, at: number, type: ModbusType, wordOrder: WordOrder): number {
  const first = values[at] as number
  switch (type) {
    case 'bool': return first === 0 ? 0 : 1
    case 'uint16': return first & 0xffff
    case 'int16': return (first << 16) >> 16
  }
  const second = values[at + 1] as number
  const high = wordOrder === 'big' ? first : second
  const low = wordOrder === 'big' ? second : first
  scratch.setUint16(0, high)
  scratch.setUint16(2, low)
  switch (type) {
    case 'uint32': return scratch.getUint32(0)
    case 'int32': return scratch.getInt32(0)
    case 'float32': return scratch.getFloat32(0)
  }
}

/** raw × scale + offset. */
export function registerValue (spec: Pick<RegisterSpec, 'type' | 'wordOrder' | 'scale' | 'offset'>, values: ArrayLike<number>, at: number): number {
  const raw = decodeRaw(values, at, spec.type, spec.wordOrder)
  return raw * spec.scale + spec.offset
}
