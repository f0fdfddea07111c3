/**
 * One rig per transport kind for the conformance suite: starts the transport on loopback (port 0,
 * a temp socket path, a socat pty pair, in-memory stdin) and connects simulated devices to it.
 * Everything started here is stopped in t.teardown.
 */
import dgram from 'node:dgram'
import { constants, mkdtempSync, openSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import tty from 'node:tty'
import type { Test } from 'tap'
import { SerialTransport, StdinTransport, StreamServerTransport, UdpTransport, within, type Transport, type TransportContext } from '../../../src/ingest/transports/index.js'
import { TtyWriter } from '../../../src/ingest/transports/tty-writer.js'
import { AckReader, type Wire } from './device.js'
import { ptyPair } from './socat.js'

export interface Peer {
  /** Writes bytes (one datagram on UDP); resolves once handed to the kernel. */
  send (bytes: Uint8Array): Promise<void>
  readonly acks: AckReader
  close (): Promise<void>
}

export interface Rig {
  transport: Transport
  address: string
  /** A device connection (serial and stdin have one line: every call returns it). */
  connect (): Promise<Peer>
}

export interface TransportKind {
  /** The transport's counter label. */
  name: string
  wire: Wire
  /** Whether devices get acks on this transport. */
  acks: boolean
  start (t: Test, ctx: TransportContext): Promise<Rig>
}

async function started (t: Test, transport: Transport): Promise<string> {
  const { address } = await transport.start()
  t.teardown(async () => { await within(transport.stop(), 10_000) })
  return address
}

function hostPort (address: string): { host: string, port: number } {
  const at = address.lastIndexOf(':')
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) }
}

const udp: TransportKind = {
  name: 'udp',
  wire: 'datagram',
  acks: false,
  async start (t, ctx) {
    const transport = new UdpTransport({ address: '127.0.0.1', port: 0, maxPendingEvents: 100_000 }, ctx)
    const address = await started(t, transport)
    const { host, port } = hostPort(address)
    return {
      transport,
      address,
      async connect () {
        const socket = dgram.createSocket('udp4')
        t.teardown(() => { try { socket.close() } catch {} })
        return {
          acks: new AckReader('datagram'),
          send: async (bytes) => { await new Promise<void>((resolve, reject) => socket.send(bytes, port, host, (err) => err === null ? resolve() : reject(err))) },
          close: async () => { try { socket.close() } catch {} }
        }
      }
    }
  }
}

function socketPeer (t: Test, socket: net.Socket, wire: Wire): Peer {
  const acks = new AckReader(wire)
  socket.on('data', (d: Buffer) => acks.push(d))
  socket.on('error', () => {})
  const close = async (): Promise<void> => {
    if (socket.destroyed) return
    socket.end()
    await within(new Promise(resolve => socket.once('close', resolve)), 2000)
    socket.destroy()
  }
  t.teardown(close)
  return {
    acks,
    send: async (bytes) => { await new Promise<void>((resolve, reject) => socket.write(bytes, (err) => err == null ? resolve() : reject(err))) },
    close
  }
}

async function connected (socket: net.Socket): Promise<net.Socket> {
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  return socket
}

function tcpKind (format: 'frames' | 'jsonl'): TransportKind {
  const wire: Wire = format === 'frames' ? 'stream' : 'jsonl'
  return {
    name: format === 'frames' ? 'tcp' : 'tcp-jsonl',
    wire,
    acks: true,
    async start (t, ctx) {
      const transport = new StreamServerTransport({ kind: 'tcp', address: '127.0.0.1', port: 0 }, format, ctx)
      const address = await started(t, transport)
      const { host, port } = hostPort(address)
      return { transport, address, connect: async () => socketPeer(t, await connected(net.connect(port, host)), wire) }
    }
  }
}

const unix: TransportKind = {
  name: 'unix',
  wire: 'stream',
  acks: true,
  async start (t, ctx) {
    // Not t.testdir(): a unix socket path must fit in 108 bytes.
    const dir = mkdtempSync(join(tmpdir(), 'edgefwd-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const transport = new StreamServerTransport({ kind: 'unix', path: join(dir, 'ingest.sock') }, 'frames', ctx)
    const address = await started(t, transport)
    return { transport, address, connect: async () => socketPeer(t, await connected(net.connect(address)), 'stream') }
  }
}

const serial: TransportKind = {
  name: 'serial',
  wire: 'stream',
  acks: true,
  async start (t, ctx) {
    const pty = await ptyPair(t)
    const transport = new SerialTransport({ path: pty.gateway, baud: 115200 }, ctx)
    const address = await started(t, transport)
    const flags = constants.O_NOCTTY | constants.O_NONBLOCK
    const reader = new tty.ReadStream(openSync(pty.device, constants.O_RDONLY | flags))
    const writer = new TtyWriter(openSync(pty.device, constants.O_WRONLY | flags))
    const acks = new AckReader('stream')
    reader.on('data', (d: Buffer) => acks.push(d))
    reader.on('error', () => {})
    const close = async (): Promise<void> => { reader.destroy(); writer.destroy() }
    t.teardown(close)
    const peer: Peer = {
      acks,
      send: async (bytes) => { await new Promise<void>((resolve, reject) => writer.write(bytes, (err) => err == null ? resolve() : reject(err))) },
      close
    }
    return { transport, address, connect: async () => peer }
  }
}

const stdin: TransportKind = {
  name: 'stdin',
  wire: 'jsonl',
  acks: true,
  async start (t, ctx) {
    const input = new PassThrough()
    const output = new PassThrough()
    const transport = new StdinTransport({ input, acks: output }, ctx)
    const address = await started(t, transport)
    const acks = new AckReader('jsonl')
    output.on('data', (d: Buffer) => acks.push(d))
    const peer: Peer = {
      acks,
      send: async (bytes) => { input.write(bytes) },
      close: async () => { input.end() }
    }
    return { transport, address, connect: async () => peer }
  }
}

export const KINDS: readonly TransportKind[] = [udp, tcpKind('frames'), tcpKind('jsonl'), unix, serial, stdin]
