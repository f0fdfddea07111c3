/**
 * `ingest.modbus`: one entry, one connection (a Modbus TCP device or gateway, or an RTU bus on a
 * serial line) and the devices polled over it, as one ingest Transport named `modbus`.
 *
 * start() loads modbus-serial (only now: a gateway without Modbus never pays for it), starts
 * connecting in the background (link.ts) and starts every device's polls (device-poller.ts); it
 * does not wait for the connection: a device that is off or unplugged at boot is an outage of
 * this input, counted and logged, not a failure of the gateway. stop() ends the polls, closes
 * the connection (failing the request in flight at once), and waits for the polls in flight
 * with their submits, all within stopTimeoutMs.
 */
import { systemClock, type Clock } from '../../../clock.js'
import type { Logger } from '../../../observe/log.js'
import { DEFAULT_STOP_TIMEOUT_MS, startError, within, type Transport, type TransportContext } from '../../transports/transport.js'
import type { TransportName } from '../../reasons.js'
import { SeqAssigner } from '../source-event.js'
import { loadModbusSerial, type ModbusSerial } from './client.js'
import type { ModbusConnectionConfig } from './decode.js'
import { DevicePoller, type DevicePollStatus } from './device-poller.js'
import { ModbusLink, type LinkTarget } from './link.js'
import type { ConfigureLine } from './tty-port.js'

export interface ModbusSourceDeps {
  clock?: Clock
  random?: () => number
  /** How the tty is configured (stty by default). */
  configureLine?: ConfigureLine
  /** How modbus-serial is loaded (a dynamic import by default). */
  load?: () => Promise<ModbusSerial>
  /** The gateway's one table of source seqs (a device id may come through more than one source). */
  seqs?: SeqAssigner
}

type State =
  | { kind: 'new' }
  | { kind: 'starting' }
  | { kind: 'running', since: number }
  | { kind: 'stopped' }

export class ModbusSource implements Transport {
  readonly name = 'modbus' satisfies TransportName
  /** `modbus tcp HOST:PORT` or `modbus rtu PATH`. */
  readonly address: string
  private state: State = { kind: 'new' }
  private readonly link: ModbusLink
  private readonly pollers: DevicePoller[]
  private readonly clock: Clock
  private readonly logger: Logger

  constructor (connection: ModbusConnectionConfig, private readonly ctx: TransportContext, private readonly deps: ModbusSourceDeps = {}) {
    const target = linkTarget(connection)
    const where = target.kind === 'tcp' ? `tcp ${hostPort(target.host, target.port)}` : `rtu ${target.path}`
    this.address = `modbus ${where}`
    this.clock = deps.clock ?? systemClock
    this.logger = ctx.logger.child({ transport: 'modbus', connection: where })
    const linkOptions: ConstructorParameters<typeof ModbusLink>[0] = {
      target,
      timeoutMs: connection.timeout,
      logger: this.logger,
      clock: this.clock,
      onOpen: () => { this.opened() }
    }
    if (deps.configureLine !== undefined) linkOptions.configureLine = deps.configureLine
    this.link = new ModbusLink(linkOptions)
    const seqs = deps.seqs ?? new SeqAssigner(connection.devices.length, this.clock.now)
    const pollerDeps = { ctx, reader: this.link, seqs, logger: this.logger, clock: this.clock, random: deps.random ?? Math.random }
    this.pollers = connection.devices.map(device => new DevicePoller(device, pollerDeps))
    if (target.kind === 'rtu') {
      for (const d of connection.devices) {
        if (d.unitId === 0) this.logger.warn({ device: d.id, unitId: 0 }, 'unit id 0 is the RTU broadcast address: no device answers a read to it')
      }
    }
  }

  async start (): Promise<{ address: string }> {
    if (this.state.kind !== 'new') throw new Error('modbus source already started')
    this.state = { kind: 'starting' }
    let lib: ModbusSerial
    try {
      lib = await (this.deps.load ?? loadModbusSerial)()
    } catch (err) {
      this.state = { kind: 'stopped' }
      throw startError('modbus', this.address, err)
    }
    if (this.isStopped()) return { address: this.address }
    this.state = { kind: 'running', since: this.clock.now() }
    this.link.start(lib)
    for (const p of this.pollers) p.start()
    return { address: this.address }
  }

  async stop (): Promise<void> {
    if (this.state.kind === 'stopped') return
    this.state = { kind: 'stopped' }
    const timeoutMs = this.ctx.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS
    const polls = Promise.all(this.pollers.map(async p => { await p.stop() }))
    await this.link.stop(timeoutMs)
    await within(polls, timeoutMs)
  }

  /** Per device: polls, failed and skipped polls, health. */
  devices (): DevicePollStatus[] {
    return this.pollers.map(p => p.status())
  }

  private isStopped (): boolean { return this.state.kind === 'stopped' }

  private opened (): void {
    this.ctx.pipeline.countConnection('modbus')
    for (const p of this.pollers) p.connectionOpen()
  }
}

function linkTarget (c: ModbusConnectionConfig): LinkTarget {
  if (c.tcp !== undefined) return { kind: 'tcp', host: c.tcp.host, port: c.tcp.port }
  if (c.rtu !== undefined) return { kind: 'rtu', ...c.rtu }
  // The schema requires exactly one of them.
  throw new Error('an ingest.modbus connection needs tcp or rtu')
}

function hostPort (host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}
