/**
 * `ingest.modbus` (docs/config.md): Modbus TCP and RTU devices, polled. One Transport per
 * configured connection (modbus-source.ts). Nothing here loads modbus-serial: each source does,
 * when it starts.
 */
import type { Transport, TransportContext } from '../../transports/transport.js'
import type { ModbusConnectionsConfig } from './decode.js'
import type { SeqAssigner } from '../source-event.js'
import { ModbusSource } from './modbus-source.js'

export { ModbusSource, type ModbusSourceDeps } from './modbus-source.js'
export type { DevicePollStatus } from './device-poller.js'
export { sttyArgs, type ConfigureLine } from './tty-port.js'
export type { ModbusConnectionConfig, ModbusConnectionsConfig } from './decode.js'

/** `connections` is Config['ingest']['modbus']. */
export function createModbusSources (connections: ModbusConnectionsConfig, ctx: TransportContext, seqs?: SeqAssigner): Transport[] {
  return connections.map(connection => new ModbusSource(connection, ctx, seqs === undefined ? {} : { seqs }))
}
