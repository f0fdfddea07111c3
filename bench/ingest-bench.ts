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
 *   mqtt_eps ingest.mqtt: events/s into the same durable store from a local Mosquitto (plain
 *            MQTT 5 on loopback). A backlog of BENCH_MQTT_EVENTS (50 000) zigbee2mqtt-shaped
 *            messages (~150 B of JSON, 5 numbers) is published at QoS 1 while edgefwd's
 *            persistent session is disconnected; the clock runs from edgefwd's connect until
 *            every message is durably stored and acknowledged. MQTT 5 with edgefwd's inFlight at
 *            1000 (Mosquitto 2 sends an MQTT 5 client up to its Receive Maximum), and
 *            mqtt_eps_v311: MQTT 3.1.1, where Mosquitto's own max_inflight_messages (20 by
 *            default) bounds the unacknowledged messages.
 *   mqtt_gateway_rss_mb_peak  the same backlog drained by `edgefwd run` itself (a child process,
 *            the memory budget's environment, default 96 MiB; the uplink unreachable, so events
 *            stay in the store): its peak VmRSS and RssAnon (_anon), and events/s from its spawn
 *            (start-up included) until every message is stored (mqtt_gateway_eps).
 *
 * Environment: BENCH_SECONDS (default 4 per transport), BENCH_DEVICES (50), BENCH_DIR (temp dir),
 * BENCH_ONLY (tcp, udp or mqtt), BENCH_PENDING (ingest.backpressure.pendingEvents, default 16384),
 * BENCH_GROUP (store.groupCommit.maxEvents, default 1000), BENCH_BUDGET (process.memory in MiB,
 * default 96, or off: the budget's bound on pending bytes and LevelDB's buffers, as `edgefwd run`
 * applies them; the heap limits are the bench process's own Node options), BENCH_SINK=null (a sink that stores
 * nothing and answers durable at once: the ingest path and the sender alone, without LevelDB).
 */
import { execFileSync } from 'node:child_process'
import dgram from 'node:dgram'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
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
import { parseConfigText } from '../src/config/index.js'
import { MqttSource } from '../src/ingest/sources/mqtt/mqtt-source.js'
import mqtt from 'mqtt'
import { startBenchMosquitto } from './lib/mosquitto.js'
import { budgetEnvironment } from '../src/config/memory-budget.js'
import { createCa, issueCertificate } from '../src/pki/generate.js'
import { ForwarderChild } from './lib/forwarder-child.js'
import { RssSampler } from './lib/proc-memory.js'
import { metricTotal, scrapeMetrics } from './lib/prometheus-scrape.js'

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

interface MqttRow { version: '5' | '3.1.1', events: number, seconds: number, eps: number, rssMb: number }

async function runMqtt (dir: string, events: number, version: '5' | '3.1.1'): Promise<MqttRow> {
  const brokerDir = mkdtempSync(join(dir, 'mosquitto-'))
  const broker = await startBenchMosquitto({ dir: brokerDir, ca: '', cert: '', key: '', plain: true, extra: ['max_queued_messages 0'] })
  const logger = createLogger({ level: 'warn' })
  const store = await openLevelStore(join(dir, `mqtt-${version}`), { capacityBytes: 4 * 1024 ** 3, durability: 'sync', groupCommit: { windowMs: 5, maxEvents: Number(process.env.BENCH_GROUP ?? 1000) } }, logger, levelMemory(BUDGET))
  try {
    const config = parseConfigText(`ingest:\n  rateLimit: { eventsPerSecond: 0, bytesPerSecond: 0 }\n  mqtt:\n    - { url: "${broker.url}", mqttVersion: "${version}", inFlight: 1000, topics: [{ filter: "zigbee2mqtt/{device}", stream: zigbee }] }\n`, 'bench.yaml')
    const pipeline = new IngestPipeline(store, { maxFrameSize: 16384, maxClockSkewMs: 300_000, allowUnknownDevices: true, devices: [], rateLimit: { eventsPerSecond: 0, bytesPerSecond: 0, burstMs: 1000 }, rules: [], maxTrackedDevices: 1024 }, logger)
    const ctx = { pipeline, logger, connectionEvents: 4096, pendingEvents: Number(process.env.BENCH_PENDING ?? 16_384), ackTimeoutMs: 10_000, ...(BUDGET === undefined ? {} : { pendingBytes: BUDGET.ingestPendingBytes }) }
    const source = (): MqttSource => new MqttSource(config.ingest.mqtt[0] as (typeof config.ingest.mqtt)[number], ctx, { clientId: 'bench-ingest', env: {} })
    // The session (and its subscription) exists on the broker, then edgefwd goes away.
    const first = source()
    await first.start()
    while (pipeline.counters().transports.mqtt?.connections !== 1) await new Promise(resolve => setTimeout(resolve, 5))
    await first.stop()
    await publishBacklog(broker.url, events)
    let rss = 0
    const sampler = setInterval(() => { rss = Math.max(rss, process.memoryUsage.rss()) }, 50)
    const began = performance.now()
    const second = source()
    await second.start()
    const until = Date.now() + 300_000
    while (((pipeline.counters().transports.mqtt?.acks ?? 0) < events) && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 1))
    const seconds = (performance.now() - began) / 1000
    clearInterval(sampler)
    await second.stop()
    const stored = pipeline.counters().store.durable
    return { version, events: stored, seconds, eps: Math.round(stored / seconds), rssMb: Math.round(rss / 1024 / 1024) }
  } finally {
    await store.close()
    await broker.stop()
  }
}

/** Publishes `events` zigbee2mqtt-shaped messages at QoS 1 (50 devices), 500 in flight. */
async function publishBacklog (url: string, events: number): Promise<void> {
  const publisher = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: 'bench-publisher' })
  for (let i = 0; i < events; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, events - i) }, async (_, k) => {
      const n = i + k
      await publisher.publishAsync(`zigbee2mqtt/sensor-${n % 50}`, JSON.stringify({ battery: 97, humidity: 48.31 + (n % 7), linkquality: 120, temperature: 21.45, voltage: 2995, n }), { qos: 1 })
    }))
  }
  await publisher.endAsync()
}

interface GatewayRow { events: number, seconds: number, eps: number, rssMb: number, anonMb: number }

async function runMqttGateway (dir: string, events: number): Promise<GatewayRow> {
  const root = mkdtempSync(join(dir, 'mqtt-gateway-'))
  const broker = await startBenchMosquitto({ dir: root, ca: '', cert: '', key: '', plain: true, extra: ['max_queued_messages 0', 'max_inflight_messages 1000'] })
  let gateway: ForwarderChild | undefined
  try {
    const ca = createCa({ commonName: 'bench CA' })
    const client = issueCertificate(ca, { kind: 'client', commonName: 'bench-mqtt' })
    mkdirSync(join(root, 'tls'))
    writeFileSync(join(root, 'tls', 'ca.pem'), ca.certPem)
    writeFileSync(join(root, 'tls', 'client.pem'), client.certPem)
    writeFileSync(join(root, 'tls', 'client-key.pem'), client.keyPem, { mode: 0o600 })
    const config = join(root, 'edgefwd.yaml')
    writeFileSync(config, [
      'gateway: { id: bench-mqtt }',
      `store: { path: ${join(root, 'store')}, capacity: 1GiB }`,
      'log: { level: info }',
      `process: { memory: ${process.env.BENCH_BUDGET === 'off' ? 'off' : `${Number(process.env.BENCH_BUDGET ?? 96)}MiB`} }`,
      'observe: { metrics: { listen: "127.0.0.1:0" } }',
      'mcp: { socket: off }',
      `tls: { ca: ${join(root, 'tls', 'ca.pem')}, cert: ${join(root, 'tls', 'client.pem')}, key: ${join(root, 'tls', 'client-key.pem')} }`,
      // Unreachable: the events stay in the store, and the figure is ingest's alone.
      'uplink: { url: "mqtts://127.0.0.1:1" }',
      'ingest:',
      '  rateLimit: { eventsPerSecond: 0, bytesPerSecond: 0 }',
      `  mqtt: [{ url: "${broker.url}", clientId: bench-gateway, inFlight: 1000, topics: [{ filter: "zigbee2mqtt/{device}", stream: zigbee }] }]`
    ].join('\n') + '\n')
    // The gateway's persistent session exists before the backlog: made here with its client id.
    const session = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'bench-gateway', clean: false, properties: { sessionExpiryInterval: 3600 } })
    await session.subscribeAsync('zigbee2mqtt/+', { qos: 1 })
    await session.endAsync()
    await publishBacklog(broker.url, events)
    const env = { ...process.env, ...budgetEnvironment(BUDGET, process.env) }
    const began = performance.now()
    gateway = new ForwarderChild({ command: process.execPath, args: [fileURLToPath(new URL('../bin/edgefwd.js', import.meta.url))] }, config, env, 10_000)
    const sampler = new RssSampler(gateway.pid)
    sampler.phase('drain', 50)
    const address = (await gateway.waitLine('metrics on http://', 30_000), gateway.metricsAddress())
    const until = Date.now() + 300_000
    let stored = 0
    while (stored < events && Date.now() < until) {
      gateway.alive()
      stored = metricTotal(await scrapeMetrics(address), 'edgefwd_events_stored_total')
      if (stored < events) await new Promise(resolve => setTimeout(resolve, 20))
    }
    const seconds = (performance.now() - began) / 1000
    sampler.stop()
    const peak = sampler.peak('drain')
    return { events: stored, seconds, eps: Math.round(stored / seconds), rssMb: Math.round(peak.rss / 1024 / 1024 * 10) / 10, anonMb: Math.round(peak.anon / 1024 / 1024 * 10) / 10 }
  } finally {
    await gateway?.stop()
    await broker.stop()
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
    const mqttRows: MqttRow[] = []
    let gatewayRow: GatewayRow | undefined
    if (only === undefined || only === 'mqtt') {
      const events = Number(process.env.BENCH_MQTT_EVENTS ?? 50_000)
      for (const version of ['5', '3.1.1'] as const) mqttRows.push(await runMqtt(dir, events, version))
      gatewayRow = await runMqttGateway(dir, events)
    }
    if (rows.length > 0) console.log('transport  devices      sent    stored  seconds   events/s   acks  loss%  overloaded  kernel-drop  rejected  rss MB')
    for (const r of rows) {
      console.log(`${r.transport.padEnd(9)} ${String(devices).padStart(8)} ${String(r.sent).padStart(9)} ${String(r.stored).padStart(9)} ${r.seconds.toFixed(2).padStart(8)} ${String(r.eps).padStart(10)} ${String(r.acks).padStart(6)} ${r.lossPct.toFixed(2).padStart(6)} ${String(r.overloaded).padStart(11)} ${String(r.kernelDrops).padStart(12)} ${String(r.rejected).padStart(9)} ${String(r.rssMb).padStart(7)}`)
    }
    if (mqttRows.length > 0) {
      console.log('\nmqtt: local Mosquitto → durable store            MQTT  events  seconds  events/s  rss MB')
      for (const r of mqttRows) console.log(`in this process (sender's backlog before)   ${r.version.padStart(8)} ${String(r.events).padStart(7)} ${r.seconds.toFixed(2).padStart(8)} ${String(r.eps).padStart(9)} ${String(r.rssMb).padStart(7)}`)
      if (gatewayRow !== undefined) console.log(`edgefwd run, a child process (from spawn)   ${'5'.padStart(8)} ${String(gatewayRow.events).padStart(7)} ${gatewayRow.seconds.toFixed(2).padStart(8)} ${String(gatewayRow.eps).padStart(9)} ${String(gatewayRow.rssMb).padStart(7)} (anonymous ${gatewayRow.anonMb})`)
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
      mqtt_eps: mqttRows.find(r => r.version === '5')?.eps, mqtt_eps_v311: mqttRows.find(r => r.version === '3.1.1')?.eps,
      mqtt_gateway_eps: gatewayRow?.eps, mqtt_gateway_rss_mb_peak: gatewayRow?.rssMb, mqtt_gateway_anon_mb_peak: gatewayRow?.anonMb,
      tcp_acks: tcp?.acks, devices, seconds, rss_mb_peak: Math.max(...rows.map(r => r.rssMb), ...mqttRows.map(r => r.rssMb))
    }))
  } finally {
    if (process.env.BENCH_DIR === undefined) rmSync(dir, { recursive: true, force: true })
  }
}

if (isMainThread) await main()
