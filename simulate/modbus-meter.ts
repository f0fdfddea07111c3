/**
 * The simulation's Modbus energy meters: one modbus-serial ServerTCP on 127.0.0.1 serving every
 * modbus device of the scenario by unit id (1, 2, ... in scenario order), which the forwarder
 * polls through `ingest.modbus` as it would a meter on the LAN.
 *
 * Register map of each unit (holding registers, function 3; the forwarder reads all twelve in one
 * request, so one poll is one request):
 *
 *   address  type     name (METER_REGISTERS)   value
 *   0-1      float32  voltage                  volts, 230 ± a few, slowly swinging
 *   2-3      float32  current                  amperes, power / voltage
 *   4-5      float32  power                    watts, a seeded random walk
 *   6-7      uint32   energy_kwh               0.01 kWh, the energy counter, high word first
 *   8-9      uint32   energy_kwh_ws            the same counter word-swapped (low word first),
 *                                              as many meters offer for masters that want it so
 *   10-11    uint32   polls                    the reads of this unit answered, this one included
 *
 * `polls` is what makes the accounting exact: no meter numbers its readings, so this one counts
 * the requests it answers, per unit, and puts the count in the answer. A poll's event then
 * carries its number, and "sent" is 1..answered(): the polls the meter answered. (Modbus devices
 * do keep such counters: the diagnostics of function 8 count the messages a server answered.)
 *
 * stopAnswering() ends the run's sending period: from then on every read gets exception 6
 * (server device busy), which the forwarder counts as a failed poll, and nothing more is counted,
 * so answered() is final while the drain runs.
 */
import { freePort } from './free-port.js'

export interface MeterUnit { deviceId: string, unitId: number }

/** The forwarder's `ingest.modbus` registers for a meter (docs/config.md, "Modbus polling"). */
export const METER_REGISTERS = [
  { name: 'voltage', address: 0, type: 'float32' },
  { name: 'current', address: 2, type: 'float32' },
  { name: 'power', address: 4, type: 'float32' },
  { name: 'energy_kwh', address: 6, type: 'uint32', scale: 0.01 },
  { name: 'energy_kwh_ws', address: 8, type: 'uint32', wordOrder: 'little', scale: 0.01 },
  { name: 'polls', address: 10, type: 'uint32' },
] as const
const POLLS_ADDRESS = 10
const REGISTER_COUNT = 12

/** The poll number an event of a meter carries, or undefined when it has none. */
export function pollNumberOf (numbers: Readonly<Record<string, number>> | undefined): number | undefined {
  const n = numbers?.polls
  return n !== undefined && Number.isSafeInteger(n) && n >= 1 ? n : undefined
}

export interface ModbusMeter {
  readonly port: number
  /** Polls answered for this device so far (its last poll number); 0 for an unknown id. */
  answered: (deviceId: string) => number
  /** When poll `n` (1-based) of the device was answered, ms. */
  answeredAtMs: (deviceId: string, n: number) => number | undefined
  /** From now on every read is refused with exception 6 (server device busy) and nothing is counted. */
  stopAnswering: () => void
  close: () => Promise<void>
}

interface UnitState {
  deviceId: string
  answeredAt: number[]
  powerW: number
  energyWh: number
  lastMs: number
  phase: number
}

function modbusException (code: number): Error & { modbusErrorCode: number } {
  return Object.assign(new Error(`modbus exception ${code}`), { modbusErrorCode: code })
}

/** The two registers of a float32, high word first. */
function float32Words (v: number): [number, number] {
  const b = Buffer.alloc(4)
  b.writeFloatBE(v)
  return [b.readUInt16BE(0), b.readUInt16BE(2)]
}

function uint32Words (v: number): [number, number] {
  const x = Math.max(0, Math.min(0xffff_ffff, Math.floor(v)))
  return [Math.floor(x / 0x10000), x % 0x10000]
}

/** Starts the server; resolves once it listens. `random` seeds each unit's readings. */
export async function startModbusMeter (options: { units: readonly MeterUnit[], random: () => number, now?: () => number }): Promise<ModbusMeter> {
  const now = options.now ?? Date.now
  const units = new Map<number, UnitState>()
  const byDevice = new Map<string, UnitState>()
  for (const u of options.units) {
    if (!Number.isInteger(u.unitId) || u.unitId < 1 || u.unitId > 247) throw new RangeError(`${u.deviceId}: unit id must be 1..247, got ${u.unitId}`)
    if (units.has(u.unitId)) throw new RangeError(`unit id ${u.unitId} is given twice`)
    const state: UnitState = {
      deviceId: u.deviceId,
      answeredAt: [],
      powerW: 200 + Math.floor(options.random() * 2800),
      energyWh: 100_000 + Math.floor(options.random() * 9_000_000),
      lastMs: now(),
      phase: options.random() * 2 * Math.PI,
    }
    units.set(u.unitId, state)
    byDevice.set(u.deviceId, state)
  }
  const jitter = options.random
  let answering = true

  /** The unit's twelve registers as of `t`: its readings move on with every poll answered. */
  const words = (unit: UnitState, t: number): number[] => {
    const voltage = 230 + 3 * Math.sin(unit.phase + t / 7000)
    const energy = uint32Words(unit.energyWh / 10)
    return [
      ...float32Words(voltage),
      ...float32Words(unit.powerW / voltage),
      ...float32Words(unit.powerW),
      ...energy,
      energy[1], energy[0],
      ...uint32Words(unit.answeredAt.length),
    ]
  }
  const read = (address: number, length: number, unitId: number): number[] => {
    if (!answering) throw modbusException(6)
    const unit = units.get(unitId)
    // 11: gateway target device failed to respond, what a Modbus gateway answers for a unit it does not reach.
    if (unit === undefined) throw modbusException(11)
    if (address < 0 || length < 1 || address + length > REGISTER_COUNT) throw modbusException(2)
    const t = now()
    // Only a read that includes the poll counter is a poll (the forwarder's always does).
    if (address <= POLLS_ADDRESS && address + length >= POLLS_ADDRESS + 2) {
      unit.powerW = Math.min(5000, Math.max(50, unit.powerW + (jitter() - 0.5) * 40))
      unit.energyWh += unit.powerW * Math.max(0, t - unit.lastMs) / 3_600_000
      unit.lastMs = t
      unit.answeredAt.push(t)
    }
    return words(unit, t).slice(address, address + length)
  }

  // Loaded here, as the forwarder loads it: a simulation without modbus devices never pays for it.
  const { ServerTCP } = await import('modbus-serial')
  const port = await freePort()
  const server = new ServerTCP({
    getMultipleHoldingRegisters: (address: number, length: number, unitId: number) => read(address, length, unitId),
    getHoldingRegister: (address: number, unitId: number) => read(address, 1, unitId)[0] as number,
  }, { host: '127.0.0.1', port, unitID: 255 })
  // A forwarder killed mid-answer leaves a socket error behind: nothing to do about it here.
  server.on('socketError', () => {})
  server.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('the Modbus server did not start within 5 s')) }, 5000)
    server.on('initialized', () => { clearTimeout(timer); resolve() })
    server.on('serverError', (err: Error | null) => { clearTimeout(timer); reject(err ?? new Error('the Modbus server failed to start')) })
  })

  let closing: Promise<void> | undefined
  return {
    port,
    answered: id => byDevice.get(id)?.answeredAt.length ?? 0,
    answeredAtMs: (id, n) => byDevice.get(id)?.answeredAt[n - 1],
    stopAnswering: () => { answering = false },
    close: async () => {
      answering = false
      closing ??= new Promise<void>(resolve => {
        const timer = setTimeout(resolve, 5000)
        server.close(() => { clearTimeout(timer); resolve() })
      })
      await closing
    },
  }
}
