/**
 * Builds the configured ingest transports (listeners are off unless configured) and re-exports
 * the pieces. The forwarder starts them after the store is open and stops them before closing it.
 */
import type { Readable, Writable } from 'node:stream'
import type { Config } from '../../config/index.js'
import type { MemoryBudget } from '../../config/memory-budget.js'
import { EdgefwdError } from '../../errors.js'
import { SerialTransport } from './serial.js'
import { StdinTransport } from './stdin.js'
import { StreamServerTransport } from './stream-server.js'
import type { Transport, TransportContext } from './transport.js'
import { UdpTransport } from './udp.js'
import { createModbusSources } from '../sources/modbus/index.js'
import { MqttSource } from '../sources/mqtt/mqtt-source.js'
import { SeqAssigner } from '../sources/source-event.js'

export type { Transport, TransportContext } from './transport.js'
export { within } from './transport.js'
export { StreamServerTransport, type StreamListen } from './stream-server.js'
export { StreamConnection, type StreamConnectionOptions, type StreamFormat } from './stream-connection.js'
export { UdpTransport, type UdpListen } from './udp.js'
export { SerialTransport, sttyRaw, type ConfigureTty, type SerialPortOptions } from './serial.js'
export { StdinTransport, type StdinIo } from './stdin.js'
export { AckWriter } from './ack-writer.js'
export { JsonLineSplitter } from './line-splitter.js'

/** What the sources that connect out (ingest.mqtt) need from the gateway. */
export interface SourceDeps {
  /** Default MQTT client ids derive from it: `edgefwd-<gateway.id>-in`, then -in2, -in3... */
  gatewayId: string
  /** Where ingest.mqtt[].passwordEnv is looked up. */
  env: Readonly<Record<string, string | undefined>>
}

export interface TransportIo {
  /** process.stdin, passed in by the CLI; required when ingest.stdin is true. */
  stdin?: Readable
  /** Where stdin acks go; none when absent (stdout usually carries logs). */
  stdinAcks?: Writable
}

/**
 * Context for transports from the `ingest` section (the pipeline comes from ingestOptions()).
 * With a memory budget, the events waiting for the store are also bounded in bytes by its ingest
 * share (config/memory-budget.ts).
 */
export function transportContext (ingest: Config['ingest'], base: Pick<TransportContext, 'pipeline' | 'logger'>, budget?: MemoryBudget): TransportContext {
  const ctx: TransportContext = { ...base, connectionEvents: ingest.backpressure.connectionEvents, pendingEvents: ingest.backpressure.pendingEvents, ackTimeoutMs: ingest.ackTimeout }
  if (budget !== undefined) ctx.pendingBytes = budget.ingestPendingBytes
  return ctx
}

export function createTransports (ingest: Config['ingest'], ctx: TransportContext, io: TransportIo = {},
  sources: SourceDeps = { gatewayId: 'edgefwd', env: process.env }): Transport[] {
  const transports: Transport[] = []
  if (ingest.udp !== undefined) {
    const listen: ConstructorParameters<typeof UdpTransport>[0] = {
      address: ingest.udp.address, port: ingest.udp.port, maxPendingEvents: ingest.backpressure.pendingEvents
    }
    if (ingest.udp.receiveBufferSize !== undefined) listen.receiveBufferSize = ingest.udp.receiveBufferSize
    transports.push(new UdpTransport(listen, ctx))
  }
  for (const tcp of ingest.tcp) {
    transports.push(new StreamServerTransport({ kind: 'tcp', address: tcp.address, port: tcp.port }, tcp.format, ctx))
  }
  if (ingest.unix !== undefined) transports.push(new StreamServerTransport({ kind: 'unix', path: ingest.unix.path }, 'frames', ctx))
  for (const port of ingest.serial) transports.push(new SerialTransport(port, ctx))
  if (ingest.stdin) {
    if (io.stdin === undefined) throw new EdgefwdError('EDGEFWD_ERR_INGEST_LISTEN', 'ingest.stdin is on but this process was given no standard input to read')
    transports.push(new StdinTransport(io.stdinAcks === undefined ? { input: io.stdin } : { input: io.stdin, acks: io.stdinAcks }, ctx))
  }
  // One table of source seqs: a device id may come through two brokers, or a broker and Modbus.
  const seqs = new SeqAssigner(ingest.maxTrackedDevices)
  for (const [i, source] of ingest.mqtt.entries()) {
    transports.push(new MqttSource(source, ctx, { clientId: `edgefwd-${sources.gatewayId}-in${i === 0 ? '' : i + 1}`, env: sources.env, seqs }))
  }
  transports.push(...createModbusSources(ingest.modbus, ctx, seqs))
  return transports
}
