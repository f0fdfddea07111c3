/**
 * The stream plumbing between transports and the pipeline, with in-memory streams (aedes-style
 * blocked stream pairs): ack writes that wait for 'drain' with a timeout, JSON line splitting,
 * and pausing a connection while its events are in flight.
 */
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { PassThrough, Writable } from 'node:stream'
import t from 'tap'
import type { FrameResult } from '../../src/ingest/frame.js'
import { encodeJsonAck } from '../../src/ingest/json-line.js'
import { loadConfig } from '../../src/config/index.js'
import { LABEL_VALUES } from '../../src/observe/catalog.js'
import { AckWriter, createTransports, JsonLineSplitter, StreamConnection, StreamServerTransport, transportContext, within } from '../../src/ingest/transports/index.js'
import { silentLogger } from '../helpers/logger.js'
import { setup } from '../integration/helpers/conformance.js'
import { AckReader, encode, event } from '../integration/helpers/device.js'
import { FakeSink } from '../integration/helpers/sinks.js'
import { waitFor } from '../helpers/wait.js'

/** A Writable whose writes complete only when `release()` is called: write() soon returns false. */
class StuckWritable extends Writable {
  readonly chunks: Buffer[] = []
  private held: Array<() => void> = []
  constructor () { super({ highWaterMark: 8 }) }
  override _write (chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.chunks.push(chunk)
    this.held.push(done)
  }

  release (): void {
    const held = this.held
    this.held = []
    for (const done of held) done()
  }

  text (): string { return Buffer.concat(this.chunks).toString() }
}

const jsonAck = (id: string, seq: number): Uint8Array => Buffer.from(encodeJsonAck(id, seq))

t.test('AckWriter: one write per batch; while blocked, acks coalesce per device; drain flushes the latest', async t => {
  const out = new StuckWritable()
  let sent = 0
  const writer = new AckWriter(out, { encode: jsonAck, timeoutMs: 5000, onTimeout: () => t.fail('no timeout'), onSent: (n) => { sent += n }, onError: (err) => t.error(err) })
  writer.send([{ deviceId: 'a', seq: 1 }, { deviceId: 'b', seq: 1 }])
  t.equal(out.chunks.length, 1, 'one write for the batch')
  writer.send([{ deviceId: 'a', seq: 2 }])
  writer.send([{ deviceId: 'a', seq: 3 }, { deviceId: 'c', seq: 9 }])
  t.equal(out.chunks.length, 1, 'nothing written while waiting for drain')
  out.release()
  await waitFor('the coalesced write', () => out.chunks.length === 2, 1000)
  t.equal(out.chunks[1]?.toString(), '{"ack":"a","seq":3}\n{"ack":"c","seq":9}\n')
  t.equal(sent, 4)
  out.release()
  t.ok(await writer.flushed(1000))
  writer.close()
})

t.test('AckWriter: no drain within the timeout calls onTimeout; the queue stays bounded', async t => {
  const out = new StuckWritable()
  let timeouts = 0
  const writer = new AckWriter(out, { encode: jsonAck, timeoutMs: 50, onTimeout: () => { timeouts++ }, onSent: () => {}, onError: () => {} })
  writer.send([{ deviceId: 'a', seq: 1 }])
  for (let i = 0; i < 5000; i++) writer.send([{ deviceId: `dev-${i}`, seq: i }])
  await waitFor('the timeout', () => timeouts === 1, 1000)
  t.equal(await writer.flushed(20), false, 'flushed() is bounded too')
  out.release()
  await waitFor('a late drain still flushes', () => out.chunks.length === 2, 1000)
  t.equal((out.chunks[1]?.toString() ?? '').split('\n').length - 1, 1024, 'at most 1024 devices queued; the oldest dropped')
  writer.close()
})

t.test('JsonLineSplitter: any chunking, CRLF, empty lines, oversize across chunks, last line at end()', async t => {
  const results: FrameResult[] = []
  const text = '{"id":"a","seq":1}\r\n\n{"id":"a","seq":2}\n' + 'y'.repeat(150) + '\n{"id":"a","seq":3}'
  for (const size of [1, 3, 7, 64, 1000]) {
    results.length = 0
    const s = new JsonLineSplitter({ maxFrameSize: 100 }, (r) => results.push(r))
    for (let i = 0; i < text.length; i += size) s.push(Buffer.from(text.slice(i, i + size)))
    s.end()
    t.same(results.map(r => r.ok ? r.kind === 'event' && r.event.seq : r.reason), [1, 2, 'oversize', 3], `chunks of ${size}`)
  }
  const exact = new JsonLineSplitter({ maxFrameSize: 20 }, (r) => results.push(r))
  results.length = 0
  exact.push(Buffer.from('{"id":"ab","seq":12}\n{"id":"ab","seq":123}\n'))
  t.same(results.map(r => r.ok || r.reason), [true, 'oversize'], 'the limit is inclusive: 20 bytes pass, 21 do not')
})

t.test('StreamConnection pauses its source above connectionEvents in flight and resumes at half', async t => {
  const sink = new FakeSink()
  sink.block()
  const { pipeline, ctx } = setup(sink, {}, { connectionEvents: 10 })
  const source = new PassThrough()
  const conn = new StreamConnection(source, { transport: 'test', format: 'frames', ctx })
  source.write(Buffer.concat(Array.from({ length: 6 }, (_, i) => encode('stream', event('d', i + 1)))))
  await waitFor('first read submitted', () => pipeline.pendingEvents === 6, 1000)
  t.notOk(source.isPaused(), '6 in flight: still reading')
  source.write(Buffer.concat(Array.from({ length: 6 }, (_, i) => encode('stream', event('d', i + 7)))))
  await waitFor('second read submitted', () => pipeline.pendingEvents === 12, 1000)
  t.ok(source.isPaused() && conn.isPaused, '12 in flight > 10: paused')
  t.equal(conn.eventsInFlight, 12)
  sink.release()
  await waitFor('resumed after the appends settled', () => !source.isPaused(), 1000)
  t.equal(conn.eventsInFlight, 0)
  await conn.stop(1000)
  t.equal(sink.events.length, 12)
})

t.test('the global bound pauses every connection, also one with nothing of its own in flight, and the pipeline wakes it; what it read meanwhile waits undecoded', async t => {
  const sink = new FakeSink()
  sink.block()
  const { pipeline, ctx } = setup(sink, {}, { connectionEvents: 1000, pendingEvents: 8 })
  const busy = new PassThrough()
  const quiet = new PassThrough()
  const busyConn = new StreamConnection(busy, { transport: 'test', format: 'frames', ctx })
  const quietConn = new StreamConnection(quiet, { transport: 'test', format: 'frames', ctx })
  busy.write(Buffer.concat(Array.from({ length: 9 }, (_, i) => encode('stream', event('busy', i + 1)))))
  await waitFor('the busy device over the global bound', () => pipeline.pendingEvents === 9, 1000)
  t.ok(busy.isPaused(), 'the busy connection is paused')
  quiet.write(encode('stream', event('quiet', 1)))
  await waitFor('the quiet one paused', () => quietConn.isPaused, 1000)
  t.ok(quiet.isPaused(), 'the quiet one is paused too: the bound is global')
  t.equal(pipeline.pendingEvents, 9, 'what it read over the bound is held as read, not decoded into more pending events')
  sink.release()
  await waitFor('both resumed', () => !busy.isPaused() && !quiet.isPaused(), 1000)
  await waitFor('the held chunk decoded and stored once resumed', () => sink.events.length === 10, 1000)
  await Promise.all([busyConn.stop(1000), quietConn.stop(1000)])
  t.same(sink.events.map(e => e.deviceId).sort(), [...Array(9).fill('busy'), 'quiet'])
})

t.test('end of input while a read is held over the global bound: finish() waits for the pipeline, then decodes and submits it', async t => {
  for (const format of ['frames', 'jsonl'] as const) {
    const wire = format === 'frames' ? 'stream' : 'jsonl'
    const sink = new FakeSink()
    sink.block()
    const { pipeline, ctx } = setup(sink, {}, { connectionEvents: 1000, pendingEvents: 8 })
    const busy = new PassThrough()
    const busyConn = new StreamConnection(busy, { transport: 'test', format, ctx })
    busy.write(Buffer.concat(Array.from({ length: 9 }, (_, i) => encode(wire, event('busy', i + 1)))))
    await waitFor('over the global bound', () => pipeline.pendingEvents === 9, 1000)
    const source = new PassThrough()
    const conn = new StreamConnection(source, { transport: 'test', format, ctx })
    source.write(Buffer.concat(Array.from({ length: 3 }, (_, i) => encode(wire, event('dev', i + 1)))))
    await waitFor('its read held', () => conn.isPaused, 1000)
    // What the stream server does on 'end': finish, then stop once finished.
    let finished = false
    const finishing = conn.finish().then(() => { finished = true })
    await new Promise(resolve => setTimeout(resolve, 20)) // a span in which finish() must not resolve
    t.notOk(finished, `${format}: finish() waits while the pipeline is over its bound`)
    sink.release()
    await finishing
    await Promise.all([conn.stop(1000), busyConn.stop(1000)])
    t.same(sink.events.filter(e => e.deviceId === 'dev').map(e => e.deviceSeq), [1, 2, 3], `${format}: the held read was decoded and stored`)
  }
})

for (const format of ['frames', 'jsonl'] as const) {
  t.test(`a ${format} device that sends while the pipeline is over its bound and then shuts its side gets every event stored and acked`, async t => {
    const sink = new FakeSink()
    sink.block()
    const { pipeline, ctx } = setup(sink, {}, { connectionEvents: 1000, pendingEvents: 8 })
    const server = new StreamServerTransport({ kind: 'tcp', address: '127.0.0.1', port: 0 }, format, ctx)
    const { address } = await server.start()
    t.teardown(async () => await server.stop())
    const port = Number(address.slice(address.lastIndexOf(':') + 1))
    const wire = format === 'frames' ? 'stream' : 'jsonl'
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    t.teardown(() => socket.destroy())
    const acks = new AckReader(wire)
    socket.on('data', (b: Buffer) => acks.push(b))
    const closed = new Promise<void>(resolve => socket.once('end', () => resolve()))
    await new Promise(resolve => socket.once('connect', resolve))
    socket.write(Buffer.concat(Array.from({ length: 9 }, (_, i) => encode(wire, event('dev', i + 1)))))
    await waitFor('the first write over the global bound', () => pipeline.pendingEvents === 9, 2000)
    // Read while over the bound: held undecoded. Then the device is done sending.
    socket.end(Buffer.concat(Array.from({ length: 3 }, (_, i) => encode(wire, event('dev', i + 10)))))
    // Time for the last write to arrive (held undecoded, it moves no counter) and, the point, for
    // nothing to be submitted meanwhile.
    await new Promise(resolve => setTimeout(resolve, 100))
    t.equal(pipeline.pendingEvents, 9, 'the last write is held while the pipeline is over its bound')
    sink.release()
    await waitFor('the held write stored once the pipeline drained', () => sink.events.length === 12, 2000)
    t.ok(await within(closed, 2000), 'the gateway then closed its side')
    t.same(sink.events.map(e => e.deviceSeq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 'every event, in order')
    t.equal(acks.highest('dev'), 12, 'acked up to the last event before the gateway closed its side')
  })
}

t.test('createTransports: only what is configured, in a fixed order; stdin needs a stream', async t => {
  const { pipeline } = setup(new FakeSink())
  const none = await loadConfig({})
  t.same(createTransports(none.ingest, transportContext(none.ingest, { pipeline, logger: silentLogger() })), [], 'listeners are off by default')
  const config = await loadConfig({
    overrides: [
      'ingest.udp.port=0',
      'ingest.tcp=[{ port: 0 }, { port: 0, format: jsonl }]',
      'ingest.unix.path=/tmp/x.sock',
      'ingest.serial=[{ path: /dev/ttyUSB0 }]',
      'ingest.stdin=true',
      'ingest.mqtt=[{ url: "mqtt://127.0.0.1:1", topics: [{ filter: "a/{device}", stream: s }] }]',
      'ingest.modbus=[{ tcp: { host: 127.0.0.1 }, devices: [{ id: m, registers: [{ name: r, address: 0 }] }] }]',
      'ingest.backpressure.connectionEvents=7'
    ]
  })
  const ctx = transportContext(config.ingest, { pipeline, logger: silentLogger() })
  t.match(ctx, { connectionEvents: 7, pendingEvents: 16384, ackTimeoutMs: 10_000 })
  const names = createTransports(config.ingest, ctx, { stdin: new PassThrough() }).map(x => x.name)
  t.same(names, ['udp', 'tcp', 'tcp-jsonl', 'unix', 'serial', 'stdin', 'mqtt', 'modbus'])
  // Each name is the `transport` label of the ingest counters: the catalog and the docs list them.
  t.same(LABEL_VALUES.transport, names, 'the catalog lists every transport label')
  const docs = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8')
  const listed = /`transport` is ((?:`[a-z-]+`(?:, | or )?)+)/.exec(docs)?.[1]?.match(/`[a-z-]+`/g)?.map(x => x.slice(1, -1))
  t.same(listed, names, 'docs/operations.md lists every transport label')
  t.throws(() => createTransports(config.ingest, ctx), { code: 'EDGEFWD_ERR_INGEST_LISTEN', message: /given no standard input/ })
})
