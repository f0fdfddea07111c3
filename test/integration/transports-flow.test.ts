/**
 * Flow control and hostile peers, per transport: kernel-level backpressure on TCP and unix
 * sockets, UDP overload drops, resets and endless garbage, half-close, stale socket files, a
 * serial line that goes away.
 */
import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { pendingEventCost } from '../../src/config/memory-budget.js'
import { SerialTransport, StreamServerTransport, UdpTransport, within, type Transport } from '../../src/ingest/transports/index.js'
import { setup } from './helpers/conformance.js'
import { AckReader, encode, event } from './helpers/device.js'
import { FakeSink } from './helpers/sinks.js'
import { waitFor } from '../helpers/wait.js'
import { ptyPair } from './helpers/socat.js'

async function started (t: Test, transport: Transport): Promise<string> {
  const { address } = await transport.start()
  t.teardown(async () => await transport.stop())
  return address
}

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgefwd-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function connect (t: Test, target: { port: number, host: string } | string): Promise<net.Socket> {
  const socket = typeof target === 'string' ? net.connect(target) : net.connect(target.port, target.host)
  socket.on('error', () => {})
  t.teardown(() => { socket.destroy() })
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  return socket
}

function port (address: string): { port: number, host: string } {
  return { host: '127.0.0.1', port: Number(address.slice(address.lastIndexOf(':') + 1)) }
}

for (const kind of ['tcp', 'unix'] as const) {
  t.test(`${kind}: a blocked store pushes back to the sender's socket; in-flight stays bounded; all arrives after`, async t => {
    const sink = new FakeSink()
    sink.block()
    const { pipeline, ctx } = setup(sink, {}, { connectionEvents: 64 })
    const listen = kind === 'tcp' ? { kind, address: '127.0.0.1', port: 0 } as const : { kind, path: join(tempDir(t), 'in.sock') } as const
    const address = await started(t, new StreamServerTransport(listen, 'frames', ctx))
    const socket = await connect(t, kind === 'tcp' ? port(address) : address)
    const acks = new AckReader('stream')
    socket.on('data', (d: Buffer) => acks.push(d))

    // 64 KiB writes of ~1600 frames each. After write() returns false the sender gives the
    // gateway (same process) 200 ms to read; blocked means no 'drain' came in that time.
    let seq = 0
    let full = false
    for (let chunk = 0; chunk < 400 && !full; chunk++) {
      const frames: Uint8Array[] = []
      for (let bytes = 0; bytes < 64 * 1024; bytes += frames[frames.length - 1]?.length ?? 0) frames.push(encode('stream', event('d', ++seq)))
      if (!socket.write(Buffer.concat(frames))) {
        full = !await within(new Promise(resolve => socket.once('drain', resolve)), 200)
      }
    }
    t.ok(full, `the sender's writes block (no drain) after ${seq} frames`)
    // Settling time for reads already under way (no event marks their end); then the next 200 ms
    // are the point: nothing more may be read.
    await new Promise(resolve => setTimeout(resolve, 200))
    const inFlight = pipeline.pendingEvents
    t.ok(inFlight <= 64 + 4096, `in flight bounded by the pause threshold plus one read (${inFlight})`)
    await new Promise(resolve => setTimeout(resolve, 200))
    t.equal(pipeline.pendingEvents, inFlight, 'nothing more is read while the store is blocked')

    sink.release()
    await waitFor(`all ${seq} events`, () => sink.events.length === seq, 30_000)
    t.same(sink.events.slice(-3).map(e => e.deviceSeq), [seq - 2, seq - 1, seq], 'in order')
    await waitFor('the last ack', () => acks.highest('d') === seq, 5000)
    t.equal(pipeline.counters().rejected.bad_cobs, 0)
  })

  t.test(`${kind}: resets, endless garbage and half-close do not disturb the listener`, async t => {
    const sink = new FakeSink()
    const { pipeline, ctx } = setup(sink)
    const listen = kind === 'tcp' ? { kind, address: '127.0.0.1', port: 0 } as const : { kind, path: join(tempDir(t), 'in.sock') } as const
    const address = await started(t, new StreamServerTransport(listen, 'frames', ctx))
    const target = kind === 'tcp' ? port(address) : address

    const resetter = await connect(t, target)
    resetter.write(encode('stream', event('r', 1)).subarray(0, 8))
    // Time for the half frame to reach the gateway: a partial frame moves no counter.
    await new Promise(resolve => setTimeout(resolve, 20))
    // An RST on TCP; a unix socket has no reset, only an abrupt close.
    if (kind === 'tcp') resetter.resetAndDestroy()
    else resetter.destroy()

    const babbler = await connect(t, target)
    const noise = Buffer.alloc(256 * 1024, 0x41)
    for (let i = 0; i < 8; i++) babbler.write(noise)
    babbler.write(Buffer.concat([Buffer.from([0]), encode('stream', event('b', 1))]))

    // Half-close: send, end our side, still get the ack.
    const polite = await connect(t, target)
    const acks = new AckReader('stream')
    polite.on('data', (d: Buffer) => acks.push(d))
    polite.end(Buffer.concat([encode('stream', event('p', 1)), encode('stream', event('p', 2))]))
    await waitFor('ack after half-close', () => acks.highest('p') === 2, 5000)
    await waitFor('the frame after 2 MiB of garbage', () => sink.events.some(e => e.deviceId === 'b'), 5000)
    const c = pipeline.counters()
    t.equal(c.rejected.oversize, 1, '2 MiB without a delimiter: one oversize, nothing buffered')
    t.equal(c.transports[kind]?.connections, 3)
    t.notOk(sink.events.some(e => e.deviceId === 'r'), 'the reset frame was never complete')
  })
}

t.test('tcp: an address in use is a clear start() error', async t => {
  const { ctx } = setup(new FakeSink())
  const address = await started(t, new StreamServerTransport({ kind: 'tcp', address: '127.0.0.1', port: 0 }, 'frames', ctx))
  const second = new StreamServerTransport({ kind: 'tcp', address: '127.0.0.1', port: port(address).port }, 'frames', ctx)
  await t.rejects(second.start(), { code: 'EDGEFWD_ERR_INGEST_LISTEN', message: /tcp ingest could not start on 127\.0\.0\.1:\d+: .*EADDRINUSE/ })
})

t.test('unix: a stale socket file is replaced; a live one is not', async t => {
  const path = join(tempDir(t), 'stale.sock')
  // A process that dies while listening leaves its socket file behind.
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`])
  await new Promise(resolve => child.once('exit', resolve))
  t.ok(existsSync(path), 'the dead listener left its socket file')
  const { ctx } = setup(new FakeSink())
  const first = new StreamServerTransport({ kind: 'unix', path }, 'frames', ctx)
  await started(t, first)
  const second = new StreamServerTransport({ kind: 'unix', path }, 'frames', ctx)
  await t.rejects(second.start(), { code: 'EDGEFWD_ERR_INGEST_LISTEN', message: /unix ingest could not start/ })
  await first.stop()
  t.notOk(existsSync(path), 'stop() removes the socket file')
})

t.test('udp: datagrams beyond pendingEvents are dropped and counted as overloaded', async t => {
  const sink = new FakeSink()
  sink.block()
  const { pipeline, ctx } = setup(sink)
  const address = await started(t, new UdpTransport({ address: '127.0.0.1', port: 0, maxPendingEvents: 10 }, ctx))
  const sender = dgram.createSocket('udp4')
  t.teardown(() => sender.close())
  for (let seq = 1; seq <= 50; seq++) {
    await new Promise<void>(resolve => sender.send(encode('datagram', event('u', seq)), port(address).port, '127.0.0.1', () => resolve()))
  }
  const seen = (): number => pipeline.counters().frames + (pipeline.counters().transports.udp?.dropped.overloaded ?? 0)
  await waitFor('all 50 datagrams seen', () => seen() === 50, 5000)
  t.ok(pipeline.pendingEvents <= 10, `pending bounded (${pipeline.pendingEvents})`)
  t.equal(pipeline.counters().transports.udp?.dropped.overloaded, 50 - pipeline.counters().frames)
  t.ok((pipeline.counters().transports.udp?.dropped.overloaded ?? 0) >= 40)
  sink.release()
  await waitFor('the accepted ones stored', () => sink.events.length === pipeline.counters().frames, 5000)
})

t.test('udp: datagrams beyond the pending bytes of the memory budget are dropped and counted as overloaded', async t => {
  const sink = new FakeSink()
  sink.block()
  const frame = encode('datagram', event('u', 1, { value: { kind: 'text', text: 'x'.repeat(500) } }))
  const cost = pendingEventCost(frame.length)
  // Room for 5 such events by bytes, 1000 by count: the bytes bound is the one that holds.
  const { pipeline, ctx } = setup(sink, {}, { pendingBytes: 5 * cost })
  const address = await started(t, new UdpTransport({ address: '127.0.0.1', port: 0, maxPendingEvents: 1000 }, ctx))
  const sender = dgram.createSocket('udp4')
  t.teardown(() => sender.close())
  for (let seq = 1; seq <= 30; seq++) {
    const bytes = encode('datagram', event('u', seq, { value: { kind: 'text', text: 'x'.repeat(500) } }))
    await new Promise<void>(resolve => sender.send(bytes, port(address).port, '127.0.0.1', () => resolve()))
  }
  const seen = (): number => pipeline.counters().frames + (pipeline.counters().transports.udp?.dropped.overloaded ?? 0)
  await waitFor('all 30 datagrams seen', () => seen() === 30, 5000)
  t.ok(pipeline.pendingBytes <= 5 * cost, `pending bytes bounded (${pipeline.pendingBytes} of ${5 * cost})`)
  t.ok(pipeline.pendingEvents <= 5, `so the events are (${pipeline.pendingEvents})`)
  t.equal(pipeline.counters().transports.udp?.dropped.overloaded, 30 - pipeline.counters().frames, 'every other datagram counted')
  sink.release()
  await waitFor('the accepted ones stored', () => sink.events.length === pipeline.counters().frames, 5000)
  t.equal(pipeline.pendingBytes, 0, 'nothing pending once stored')
})

t.test('tcp: the pending bytes of the memory budget pause every connection; all arrives after', async t => {
  const sink = new FakeSink()
  sink.block()
  const big = (seq: number): Uint8Array => encode('stream', event('b', seq, { value: { kind: 'text', text: 'y'.repeat(800) } }))
  const bound = 64 * 1024
  // connectionEvents far above what the bytes allow: only the bytes bound can pause.
  const { pipeline, ctx } = setup(sink, {}, { connectionEvents: 100_000, pendingBytes: bound })
  const address = await started(t, new StreamServerTransport({ kind: 'tcp', address: '127.0.0.1', port: 0 }, 'frames', ctx))
  const socket = await connect(t, port(address))
  const acks = new AckReader('stream')
  socket.on('data', (d: Buffer) => acks.push(d))
  let seq = 0
  let full = false
  for (let chunk = 0; chunk < 2000 && !full; chunk++) {
    const frames: Uint8Array[] = []
    for (let i = 0; i < 64; i++) frames.push(big(++seq))
    if (!socket.write(Buffer.concat(frames))) full = !await within(new Promise(resolve => socket.once('drain', resolve)), 200)
  }
  t.ok(full, `the sender's writes block (no drain) after ${seq} frames`)
  const pending = pipeline.pendingBytes
  // One read past the bound at most: a read is parsed whole before the pause takes effect.
  t.ok(pending <= bound + pendingEventCost(64 * 1024), `pending bytes bounded by the budget plus one read (${pending})`)
  await new Promise(resolve => setTimeout(resolve, 200)) // a span in which nothing may be read
  t.equal(pipeline.pendingBytes, pending, 'nothing more is read while the store is blocked')
  sink.release()
  await waitFor(`all ${seq} events`, () => sink.events.length === seq, 30_000)
  await waitFor('the last ack', () => acks.highest('b') === seq, 5000)
})

t.test('tcp-jsonl: an endless line is reported once and skipped without buffering', async t => {
  const sink = new FakeSink()
  const { pipeline, ctx } = setup(sink)
  const address = await started(t, new StreamServerTransport({ kind: 'tcp', address: '127.0.0.1', port: 0 }, 'jsonl', ctx))
  const socket = await connect(t, port(address))
  const acks = new AckReader('jsonl')
  socket.on('data', (d: Buffer) => acks.push(d))
  for (let i = 0; i < 100; i++) socket.write('x'.repeat(1000))
  socket.write('\n{"id":"j","seq":1}\r\n\n' + '{"id":"j","seq":2}')
  socket.end()
  await waitFor('ack for the last line, which had no newline', () => acks.highest('j') === 2, 5000)
  t.equal(pipeline.counters().rejected.oversize, 1)
  t.same(sink.events.map(e => e.deviceSeq), [1, 2])
})

t.test('serial: the line going away is counted, retried, and stop() still returns', async t => {
  const pty = await ptyPair(t)
  const { pipeline, ctx } = setup(new FakeSink())
  const serial = new SerialTransport({ path: pty.gateway, baud: 9600 }, ctx)
  await started(t, serial)
  t.ok(serial.isOpen)
  await pty.kill()
  await waitFor('a read error', () => (pipeline.counters().transports.serial?.errors ?? 0) >= 1, 5000)
  t.notOk(serial.isOpen, 'closed; reopening with backoff')
  const startedAt = Date.now()
  await serial.stop()
  t.ok(Date.now() - startedAt < 1000)
})

t.test('serial: a port that cannot be configured does not fail start(); it is retried', async t => {
  const { pipeline, ctx } = setup(new FakeSink())
  const serial = new SerialTransport({ path: '/dev/edgefwd-no-such-tty', baud: 9600 }, ctx)
  t.same(await serial.start(), { address: '/dev/edgefwd-no-such-tty' })
  t.teardown(async () => await serial.stop())
  t.notOk(serial.isOpen)
  t.equal(pipeline.counters().transports.serial?.errors, 1)
})
