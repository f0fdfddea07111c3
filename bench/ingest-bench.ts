/**
 * `npm run bench:ingest`: ingest throughput on this machine, device to durable disk.
 * Prints a table, then one JSON line (the last line) with the figures.
 *
 *   tcp_eps  50 devices, one TCP connection each, COBS frames, acks read back, into a LevelDB
 *            store with durability `sync`: events durably stored per second, from the first
 *            byte sent until the last event sent is on disk.
 *   udp_eps  the same 50 devices over UDP (one socket each, one datagram per event); events
 *            stored per second. UDP has no flow control: what the kernel or the `overloaded`
 *            check dropped is reported as udp_loss_pct.
 *
 * The senders run in a worker thread of this process, so they share the machine's cores with
 * the gateway ("sender included"). Frames are encoded before the clock starts (a device encodes
 * on its own CPU, not the gateway's); each device writes 32 frames per socket write, like
 * firmware flushing a small ring. Events are ~200 bytes stored: 8 numbers and 2 tags.
 *
 *   parse_eps frames/s through the stream deframer and frame parser alone (bench/ingest-parse-bench.ts,
 *            run as a child process).
 *
 * Environment: BENCH_SECONDS (default 4 per transport), BENCH_DEVICES (50), BENCH_DIR (temp dir),
 * BENCH_ONLY (tcp or udp), BENCH_PENDING (ingest.backpressure.pendingEvents, default 16384),
 * BENCH_GROUP (store.groupCommit.maxEvents, default 1000), BENCH_BUDGET (process.memory in MiB,
 * default 96, or off: the budget's bound on pending bytes and LevelDB's buffers, as `edgefwd run`
 * applies them; the heap limits are the bench process's own Node options), BENCH_SINK=null (a sink that stores
 * nothing and answers durable at once: the ingest path and the sender alone, without LevelDB).
 */
import { execFileSync } from 'node:child_process'
import dgram from 'node:dgram'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { encodeFrame, encodeStreamFrame } from '../src/ingest/frame.js'
import { IngestPipeline } from '../src/ingest/pipeline.js'
import { StreamServerTransport, UdpTransport, type Transport } from '../src/ingest/transports/index.js'
import { createLogger } from '../src/observe/log.js'
import { encodeDeviceFrame } from '../src/proto/codec.js'
import { openLevelStore, levelMemory, type EventSink } from '../src/store/index.js'
import { memoryBudget } from '../src/config/memory-budget.js'

interface SendJob { kind: 'tcp' | 'udp', port: number, devices: number, seconds: number }
interface SendResult { sent: number, acks: number }

const FRAMES_PER_WRITE = 32
const BUDGET = memoryBudget(process.env.BENCH_BUDGET === 'off' ? 'off' : Number(process.env.BENCH_BUDGET ?? 96) * 1024 * 1024)

/**
 * Frames are built from a template: protobuf encoders write fields in ascending order, so a
 * DeviceFrame body is field 1 (device id) + field 2 (seq) + the rest, and only the seq varint
 * changes per event. protobufjs's reflective encoder would otherwise dominate the sender's CPU.
 */
class FrameMaker {
  private readonly prefix: Uint8Array
  private readonly rest: Uint8Array

  constructor (private readonly kind: 'tcp' | 'udp', device: number) {
    this.prefix = encodeDeviceFrame({ deviceId: `bench-${String(device).padStart(3, '0')}`, seq: 0, priority: 0, stream: '' })
    this.rest = encodeDeviceFrame({
      deviceId: '',
      seq: 0,
      deviceTimeMs: Date.now(),
      priority: 1,
      stream: 'telemetry',
      value: { kind: 'numbers', numbers: { t: 21.5, rh: 40.1, p: 1013.2, v: 3.3, i: 0.12, co2: 415, pm25: 7.5, lux: 300 } },
      tags: { site: 'greenhouse-2', fw: '1.4.2' }
    })
  }

  frame (seq: number): Uint8Array {
    const varint: number[] = [0x10]
    for (let v = seq; ; v = Math.floor(v / 128)) {
      if (v < 128) { varint.push(v); break }
      varint.push((v % 128) | 0x80)
    }
    const body = Buffer.concat([this.prefix, Uint8Array.from(varint), this.rest])
    return this.kind === 'tcp' ? encodeStreamFrame({ type: 'event', body }) : encodeFrame({ type: 'event', body })
  }
}

// ── sender (worker thread) ─────────────────────────────────────────────────────────────────────

async function sendTcp (job: SendJob): Promise<SendResult> {
  let sent = 0
  let acks = 0
  const deadline = start + job.seconds * 1000
  await Promise.all(Array.from({ length: job.devices }, async (_, d) => {
    const maker = new FrameMaker('tcp', d)
    const socket = net.connect(job.port, '127.0.0.1')
    socket.setNoDelay(true)
    socket.on('data', (b: Buffer) => { for (const byte of b) if (byte === 0) acks++ })
    await new Promise(resolve => socket.once('connect', resolve))
    for (let seq = 1; Date.now() < deadline; seq += FRAMES_PER_WRITE) {
      const frames = Array.from({ length: FRAMES_PER_WRITE }, (_, i) => maker.frame(seq + i))
      sent += FRAMES_PER_WRITE
      if (!socket.write(Buffer.concat(frames))) await new Promise(resolve => socket.once('drain', resolve))
      else if (seq % (FRAMES_PER_WRITE * 8) === 1) await new Promise(resolve => setImmediate(resolve))
    }
    await new Promise<void>(resolve => socket.end(resolve))
  }))
  return { sent, acks }
}

async function sendUdp (job: SendJob): Promise<SendResult> {
  const sockets = Array.from({ length: job.devices }, (_, d) => ({ socket: dgram.createSocket('udp4'), maker: new FrameMaker('udp', d) }))
  // Connected sockets: send() then skips the address lookup it otherwise does per datagram.
  await Promise.all(sockets.map(async ({ socket }) => await new Promise<void>(resolve => socket.connect(job.port, '127.0.0.1', resolve))))
  let sent = 0
  const deadline = start + job.seconds * 1000
  // Rounds of one datagram per device, each round waiting for its sends to complete.
  for (let seq = 1; Date.now() < deadline; seq++) {
    await Promise.all(sockets.map(async ({ socket, maker }) => await new Promise<void>(resolve => socket.send(maker.frame(seq), () => resolve()))))
    sent += sockets.length
  }
  for (const { socket } of sockets) socket.close()
  return { sent, acks: 0 }
}

let start = 0
if (!isMainThread) {
  const job = workerData as SendJob
  parentPort?.once('message', () => {
    start = Date.now()
    const run = job.kind === 'tcp' ? sendTcp(job) : sendUdp(job)
    run.then(r => parentPort?.postMessage(r), (err: unknown) => { throw err })
  })
  parentPort?.postMessage('ready')
}

// ── gateway (main thread) ──────────────────────────────────────────────────────────────────────

interface Row { transport: string, sent: number, stored: number, seconds: number, eps: number, acks: number, lossPct: number, overloaded: number, kernelDrops: number, rejected: number, rssMb: number }

async function run (kind: 'tcp' | 'udp', dir: string, seconds: number, devices: number): Promise<Row> {
  const logger = createLogger({ level: 'warn' })
  const store: EventSink & { close: () => Promise<void> } = process.env.BENCH_SINK === 'null'
    ? { append: async (events) => ({ accepted: events.length, rejected: [], evicted: 0, durable: true }), close: async () => {} }
    : await openLevelStore(join(dir, kind), { capacityBytes: 4 * 1024 ** 3, durability: 'sync', groupCommit: { windowMs: 5, maxEvents: Number(process.env.BENCH_GROUP ?? 1000) } }, logger, levelMemory(BUDGET))
  const pipeline = new IngestPipeline(store, {
    maxFrameSize: 16384,
    maxClockSkewMs: 300_000,
    allowUnknownDevices: true,
    devices: [],
    rateLimit: { eventsPerSecond: 1_000_000, bytesPerSecond: 1024 ** 3, burstMs: 1000 },
    rules: [],
    maxTrackedDevices: 1024
  }, logger)
  const ctx = { pipeline, logger, connectionEvents: 4096, pendingEvents: Number(process.env.BENCH_PENDING ?? 16_384), ackTimeoutMs: 10_000, ...(BUDGET === undefined ? {} : { pendingBytes: BUDGET.ingestPendingBytes }) }
  const transport: Transport = kind === 'tcp'
    ? new StreamServerTransport({ kind: 'tcp', address: '127.0.0.1', port: 0 }, 'frames', ctx)
    : new UdpTransport({ address: '127.0.0.1', port: 0, receiveBufferSize: 4 * 1024 * 1024, maxPendingEvents: 65_536 }, ctx)
  const { address } = await transport.start()
  const port = Number(address.slice(address.lastIndexOf(':') + 1))
  const worker = new Worker(new URL(import.meta.url), { workerData: { kind, port, devices, seconds } satisfies SendJob })
  await new Promise(resolve => worker.once('message', resolve))
  let rss = 0
  const sampler = setInterval(() => { rss = Math.max(rss, process.memoryUsage.rss()) }, 50)
  const began = performance.now()
  worker.postMessage('go')
  const result = await new Promise<SendResult>((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject) })
  // Done when every event sent has been seen and the pipeline has nothing in flight.
  const seen = (): number => pipeline.counters().frames + (pipeline.counters().transports.udp?.dropped.overloaded ?? 0)
  const until = Date.now() + (kind === 'udp' ? 2000 : 60_000)
  while ((seen() < result.sent || pipeline.pendingEvents > 0) && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 1))
  const elapsed = (performance.now() - began) / 1000
  clearInterval(sampler)
  await transport.stop()
  await worker.terminate()
  const c = pipeline.counters()
  await store.close()
  const stored = c.store.durable
  const rejected = Object.values(c.rejected).reduce((a, b) => a + b, 0)
  return {
    transport: kind, sent: result.sent, stored, seconds: elapsed, eps: Math.round(stored / elapsed),
    acks: result.acks, lossPct: result.sent === 0 ? 0 : 100 * (result.sent - stored) / result.sent, rejected, rssMb: Math.round(rss / 1024 / 1024),
    overloaded: c.transports.udp?.dropped.overloaded ?? 0,
    // Datagrams that never reached the gateway: the socket's receive buffer overflowed.
    kernelDrops: result.sent - c.frames - (c.transports.udp?.dropped.overloaded ?? 0)
  }
}

async function main (): Promise<void> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 4)
  const devices = Number(process.env.BENCH_DEVICES ?? 50)
  const dir = process.env.BENCH_DIR ?? mkdtempSync(join(tmpdir(), 'edgefwd-ingest-bench-'))
  try {
    const only = process.env.BENCH_ONLY
    const rows: Row[] = []
    for (const kind of ['tcp', 'udp'] as const) if (only === undefined || only === kind) rows.push(await run(kind, dir, seconds, devices))
    console.log('transport  devices      sent    stored  seconds   events/s   acks  loss%  overloaded  kernel-drop  rejected  rss MB')
    for (const r of rows) {
      console.log(`${r.transport.padEnd(9)} ${String(devices).padStart(8)} ${String(r.sent).padStart(9)} ${String(r.stored).padStart(9)} ${r.seconds.toFixed(2).padStart(8)} ${String(r.eps).padStart(10)} ${String(r.acks).padStart(6)} ${r.lossPct.toFixed(2).padStart(6)} ${String(r.overloaded).padStart(11)} ${String(r.kernelDrops).padStart(12)} ${String(r.rejected).padStart(9)} ${String(r.rssMb).padStart(7)}`)
    }
    const tcp = rows.find(r => r.transport === 'tcp')
    const udp = rows.find(r => r.transport === 'udp')
    // The decoder alone, in its own process so the runs above leave it no garbage to collect.
    const parseOut = execFileSync(process.execPath, [fileURLToPath(new URL('./ingest-parse-bench.js', import.meta.url))], { encoding: 'utf8', timeout: 300_000 })
    const parseLines = parseOut.trim().split('\n')
    for (const line of parseLines.slice(0, -1)) console.log(line)
    const parse = JSON.parse(parseLines[parseLines.length - 1] ?? '{}') as { parse_eps?: number }
    console.log(JSON.stringify({
      tcp_eps: tcp?.eps, udp_eps: udp?.eps, parse_eps: parse.parse_eps, udp_loss_pct: udp === undefined ? undefined : Number(udp.lossPct.toFixed(2)),
      tcp_acks: tcp?.acks, devices, seconds, rss_mb_peak: Math.max(...rows.map(r => r.rssMb))
    }))
  } finally {
    if (process.env.BENCH_DIR === undefined) rmSync(dir, { recursive: true, force: true })
  }
}

if (isMainThread) await main()
