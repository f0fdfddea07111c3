/**
 * Which reads a poll of one device makes: registers of the same table that are contiguous or
 * nearby go into one request, so a meter with 10 registers costs one or two round trips, not ten.
 *
 * Limits per request (Modbus Application Protocol v1.1b3 §6.1-6.4): at most 125 registers
 * (FC 3/4) and 2000 bits (FC 1/2).
 *
 * Gaps: reading a few registers nobody asked for is cheaper than another request. At 9600 baud a
 * register costs 2 bytes (~2 ms) on the wire, while another request costs its 8 bytes, the
 * response's 5 bytes of framing, two 3.5-character silences (~21 ms together) and the device's
 * turnaround (commonly 5-50 ms): a gap of up to 10 registers (80 bits: 10 bytes) is never slower.
 * Some devices answer a read that spans an unmapped address with exception 2 (illegal data
 * address): the poller then switches the device to the gapless plan (`maxGap` 0) for good.
 */
import { isBitTable, widthOf, type ModbusTable, type RegisterSpec } from './decode.js'

export const MAX_READ_REGISTERS = 125
export const MAX_READ_BITS = 2000

export interface PlanOptions {
  /** Unrequested registers a read may span between two requested ones. */
  maxGapRegisters: number
  /** The same for coils and discrete inputs, in bits. */
  maxGapBits: number
}

export const DEFAULT_PLAN: PlanOptions = { maxGapRegisters: 10, maxGapBits: 80 }
export const GAPLESS_PLAN: PlanOptions = { maxGapRegisters: 0, maxGapBits: 0 }

/** A register of a read, at `index` in the values the read returns. */
export interface PlannedField { register: RegisterSpec, index: number }

export interface PlannedRead {
  table: ModbusTable
  address: number
  /** Registers (or bits) read. */
  count: number
  fields: PlannedField[]
  /** The read spans addresses no register asked for. */
  gaps: boolean
}

const TABLE_ORDER: readonly ModbusTable[] = ['holding', 'input', 'coil', 'discrete']

/** The reads for these registers: per table in TABLE_ORDER, by address. Pure. */
export function planReads (registers: readonly RegisterSpec[], options: PlanOptions = DEFAULT_PLAN): PlannedRead[] {
  const reads: PlannedRead[] = []
  for (const table of TABLE_ORDER) {
    const bits = isBitTable(table)
    const max = bits ? MAX_READ_BITS : MAX_READ_REGISTERS
    const maxGap = bits ? options.maxGapBits : options.maxGapRegisters
    const sorted = registers.filter(r => r.table === table)
      .sort((a, b) => a.address - b.address || widthOf(a.type) - widthOf(b.type))
    let current: { read: PlannedRead, covered: Set<number> } | undefined
    for (const register of sorted) {
      const width = widthOf(register.type)
      const end = register.address + width
      if (current !== undefined) {
        const { read } = current
        const readEnd = read.address + read.count
        if (register.address <= readEnd + maxGap && Math.max(readEnd, end) - read.address <= max) {
          read.count = Math.max(readEnd, end) - read.address
          read.fields.push({ register, index: register.address - read.address })
          for (let a = register.address; a < end; a++) current.covered.add(a)
          continue
        }
        finish(current)
      }
      const read: PlannedRead = { table, address: register.address, count: width, fields: [{ register, index: 0 }], gaps: false }
      reads.push(read)
      current = { read, covered: new Set(Array.from({ length: width }, (_, i) => register.address + i)) }
    }
    if (current !== undefined) finish(current)
  }
  return reads
}

function finish ({ read, covered }: { read: PlannedRead, covered: Set<number> }): void {
  read.gaps = covered.size < read.count
}
