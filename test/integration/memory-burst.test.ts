/**
 * A burst far above the memory budget: `edgefwd run` (the built executable, with the V8 heap
 * flags its `process.memory` budget asks for, passed as NODE_OPTIONS as the systemd unit does)
 * takes 50 TCP devices sending event frames as fast as their sockets accept them, plus garbage
 * over UDP and TCP, while delivering to a real Mosquitto over mutual TLS.
 *
 * The burst is bounded by count and time, not measured: the test asserts outcomes, never speed
 * or memory figures. What must hold: the forwarder does not die (no heap out of memory), the
 * garbage is counted as rejected, and every event a device got an ack for (PROTOCOL.md §4: an ack
 * of seq N means the store durably wrote the device's events up to N) reaches the subscriber.
 * Backpressure and overload drops are reported as comments, not asserted (they depend on timing):
 * devices whose writes had to wait for 'drain', and how much of what the devices wrote the
 * forwarder had read at the deadline. On loopback the kernel's socket buffers (tcp_rmem up to
 * 32 MB here) often take a device's whole share, so the push-back shows as unread bytes rather
 * than as blocked writes. The peak RSS (VmHWM) is reported too, without a threshold.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import dgram from 'node:dgram'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createConnection, type Socket } from 'node:net'
import { join } from 'node:path'
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import mqtt from 'mqtt'
import { parseAck } from '../../src/ingest/ack.js'
import { cobsDecode } from '../../src/ingest/cobs.js'
import { encodeFrame, toStreamFrame } from '../../src/ingest/frame.js'
import { budgetNodeOptions, memoryBudget } from '../../src/config/memory-budget.js'
import { issueCertificate } from '../../src/pki/generate.js'
import { clientTlsOptions } from '../../src/pki/tls-options.js'
import { encodeDeviceFrame } from '../../src/proto/codec.js'
import { decodeEnvelopeMessage } from '../../src/sink/decode.js'
import { assertBuilt, distRoot } from '../helpers/built.js'
import { logLines } from '../helpers/log-lines.js'
import { startMosquitto } from '../helpers/mosquitto.js'
import { makeCa, makeClient, writeSet } from '../helpers/test-pki.js'
import { waitFor } from '../helpers/wait.js'

const GATEWAY = 'gw-burst'
const DEVICES = 50
/** Each device sends at most this many events, or stops at the burst's deadline, whichever first. */
const MAX_EVENTS_PER_DEVICE = 5000
const BURST_MS = 8000
const PAYLOAD_BYTES = 200
/** Frames per socket write. */
const FRAMES_PER_WRITE = 32
const MiB = 1024 * 1024
/** process.memory: small, so that buffering the burst (~250k events, ~60 MB of frames) could not fit. */
const MEMORY_BUDGET = 64 * MiB
/** 128 MiB holds every event of the burst (≤ 250k events of ~260 bytes): nothing is evicted. */
const STORE_CAPACITY = '128MiB'

const ca = makeCa()
const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
const gatewayCert = makeClient(ca, { commonName: GATEWAY })
const subscriberCert = makeClient(ca, { commonName: 'burst-subscriber' })

// ---------------------------------------------------------------------------------------------
// Helpers.

/** The promise's value, or undefined after ms (the timer does not outlive the promise). */
async function within<T> (promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<undefined>(resolve => { timer = setTimeout(() => resolve(undefined), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

interface Forwarder {
  child: ChildProcess
  pid: number
  lines: Array<Record<string, unknown>>
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  stderr: () => string
}

function startForwarder (config: string, nodeOptions: string): Forwarder {
  // The child gets the budget's NODE_OPTIONS and nothing else: tap's process-info hook rewrites
  // the NODE_OPTIONS of every process spawned from a test to load itself (and its heap would
  // then count against the budget), so /usr/bin/env sets them after that, and execs node (same pid).
  // MALLOC_ARENA_MAX=2 goes with them, as in the systemd unit (config/memory-budget.ts).
  const child = spawn('/usr/bin/env', [`NODE_OPTIONS=${nodeOptions}`, 'MALLOC_ARENA_MAX=2', process.execPath, join(distRoot, 'bin/edgefwd.js'), 'run', '--config', config],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  if (child.pid === undefined) throw new Error('the forwarder has no pid')
  const log = logLines()
  const lines: Array<Record<string, unknown>> = log.records
  child.stdout?.on('data', (chunk: Buffer) => { log.stream.write(chunk.toString()) })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
    child.once('exit', (code, signal) => { resolve({ code, signal }) })
  })
  return { child, pid: child.pid, lines, exited, stderr: () => stderr }
}

function running (f: Forwarder): Record<string, unknown> | undefined {
  return f.lines.find(l => typeof l.msg === 'string' && l.msg.includes(' running: '))
}

function listenPort (f: Forwarder, transport: 'tcp' | 'udp'): number {
  const listening = (running(f)?.listening as string[] | undefined)?.find(a => a.startsWith(`${transport} `))
  if (listening === undefined) throw new Error(`no ${transport} listener in ${JSON.stringify(running(f))}`)
  return Number(listening.slice(listening.lastIndexOf(':') + 1))
}

function metricsAddress (f: Forwarder): string {
  const line = f.lines.find(l => typeof l.msg === 'string' && l.msg.startsWith('metrics on '))
  if (typeof line?.address !== 'string') throw new Error('no "metrics on" line')
  return line.address
}

interface Sample { name: string, labels: Record<string, string>, value: number }

async function scrape (address: string): Promise<Sample[]> {
  const response = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(10_000) })
  if (!response.ok) throw new Error(`GET /metrics: ${response.status}`)
  const samples: Sample[] = []
  for (const line of (await response.text()).split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line)
    if (m === null) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ''] = l[2] ?? ''
    samples.push({ name: m[1] ?? '', labels, value: Number(m[3]) })
  }
  return samples
}

function total (samples: Sample[], name: string, filter: (labels: Record<string, string>) => boolean = () => true): number {
  return samples.filter(s => s.name === name && filter(s.labels)).reduce((n, s) => n + s.value, 0)
}

function byLabel (samples: Sample[], name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const s of samples) if (s.name === name && s.value !== 0) out[s.labels[label] ?? ''] = (out[s.labels[label] ?? ''] ?? 0) + s.value
  return out
}

/** VmRSS and VmHWM (peak) of a process, in bytes, from /proc; undefined once it is gone. */
function memoryOf (pid: number): { rss: number, peak: number } | undefined {
  let status: string
  try { status = readFileSync(`/proc/${pid}/status`, 'utf8') } catch { return undefined }
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rss: kb('VmRSS'), peak: kb('VmHWM') }
}

function eventFrame (deviceId: string, seq: number, payload: Uint8Array): Uint8Array {
  return encodeFrame({ type: 'event', body: encodeDeviceFrame({ deviceId, seq, deviceTimeMs: Date.now(), priority: 1, stream: 'burst', value: { kind: 'raw', raw: payload } }) })
}

/** A valid event frame with its CRC broken (raw, for UDP; toStreamFrame for TCP). */
function badCrcFrame (seq: number): Uint8Array {
  const frame = eventFrame('garbage-dev', seq, randomBytes(64))
  frame[frame.length - 1] = (frame[frame.length - 1] as number) ^ 0xff
  return frame
}

/** Waits for 'drain', the socket's end, or the deadline; true if drained. */
async function drained (socket: Socket, deadline: number): Promise<boolean> {
  if (socket.destroyed) return false
  return await new Promise<boolean>(resolve => {
    const done = (ok: boolean): void => {
      clearTimeout(timer)
      socket.off('drain', onDrain)
      socket.off('close', onClose)
      resolve(ok)
    }
    const onDrain = (): void => done(true)
    const onClose = (): void => done(false)
    const timer = setTimeout(() => done(false), Math.max(0, deadline - Date.now()))
    socket.on('drain', onDrain)
    socket.on('close', onClose)
  })
}

async function connect (port: number): Promise<Socket> {
  const socket = createConnection({ host: '127.0.0.1', port })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`connect to ${port}: timed out`)) }, 10_000)
    socket.once('connect', () => { clearTimeout(timer); resolve() })
    socket.once('error', (err) => { clearTimeout(timer); reject(err) })
  })
  return socket
}

interface DeviceResult {
  id: string
  /** Highest seq handed to the socket (written, perhaps still in its buffers). */
  sent: number
  /** Highest seq in an ack frame from the gateway. */
  acked: number
  ackFrames: number
  /** Bytes handed to the socket. */
  bytesWritten: number
  /** Writes that returned false: the device had to wait for the gateway. */
  drainWaits: number
  errors: string[]
}

/**
 * One device: event frames as fast as the socket takes them (write until write() returns false,
 * then wait for 'drain', bounded by the deadline), reading ack frames back. After the deadline
 * (or MAX_EVENTS_PER_DEVICE), waits — bounded by ackDeadline — for the ack of its last event.
 */
async function runDevice (id: string, port: number, deadline: number, ackDeadline: () => number): Promise<DeviceResult> {
  const result: DeviceResult = { id, sent: 0, acked: 0, ackFrames: 0, bytesWritten: 0, drainWaits: 0, errors: [] }
  const socket = await connect(port)
  socket.on('error', (err) => { result.errors.push(err.message) })
  let pending: Buffer = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    let zero = pending.indexOf(0)
    while (zero >= 0) {
      const encoded = pending.subarray(0, zero)
      pending = pending.subarray(zero + 1)
      zero = pending.indexOf(0)
      if (encoded.length === 0) continue
      const frame = cobsDecode(encoded)
      const ack = frame === undefined ? undefined : parseAck(frame)
      if (ack === undefined || !ack.ok || ack.deviceId !== id) {
        result.errors.push(`unexpected frame from the gateway: ${Buffer.from(encoded).toString('hex').slice(0, 80)}`)
        continue
      }
      result.ackFrames++
      if (ack.seq > result.acked) result.acked = ack.seq
    }
  })
  const payload = randomBytes(PAYLOAD_BYTES)
  socket.write(Uint8Array.of(0)) // flush any partial input at the gateway (PROTOCOL.md §1)
  while (result.sent < MAX_EVENTS_PER_DEVICE && Date.now() < deadline && !socket.destroyed) {
    const frames: Uint8Array[] = []
    const last = Math.min(MAX_EVENTS_PER_DEVICE, result.sent + FRAMES_PER_WRITE)
    for (let seq = result.sent + 1; seq <= last; seq++) frames.push(toStreamFrame(eventFrame(id, seq, payload)))
    const chunk = Buffer.concat(frames)
    const more = socket.write(chunk)
    result.sent = last
    result.bytesWritten += chunk.length
    if (!more) {
      result.drainWaits++
      if (!(await drained(socket, deadline))) break
    } else {
      await yieldToLoop() // let the other devices, the ack readers and the garbage senders run
    }
  }
  // The frames written are in the socket's buffers; the gateway reads them as it can.
  while (result.acked < result.sent && Date.now() < ackDeadline() && !socket.destroyed) await sleep(50)
  socket.end()
  return result
}

interface GarbageResult { udpDatagrams: number, tcpBytes: number, tcpBadCrcFrames: number, errors: string[] }

/** Random bytes and bad-CRC frames over UDP and over one more TCP connection, until the deadline. */
async function sendGarbage (udpPort: number, tcpPort: number, deadline: number): Promise<GarbageResult> {
  const result: GarbageResult = { udpDatagrams: 0, tcpBytes: 0, tcpBadCrcFrames: 0, errors: [] }
  const udp = dgram.createSocket('udp4')
  udp.on('error', (err) => { result.errors.push(`udp: ${err.message}`) })
  const udpDone = (async () => {
    let seq = 0
    while (Date.now() < deadline && result.udpDatagrams < 40_000) {
      const sends: Array<Promise<void>> = []
      for (let i = 0; i < 20; i++) {
        seq++
        const datagram = seq % 2 === 0 ? badCrcFrame(seq) : randomBytes(6 + (seq % 300))
        sends.push(new Promise<void>(resolve => udp.send(datagram, udpPort, '127.0.0.1', () => resolve())))
        result.udpDatagrams++
      }
      await Promise.all(sends)
      await sleep(1)
    }
  })()
  const tcp = await connect(tcpPort)
  tcp.on('error', (err) => { result.errors.push(`tcp: ${err.message}`) })
  let seq = 0
  while (Date.now() < deadline && !tcp.destroyed && result.tcpBytes < 8 * MiB) {
    seq++
    const chunk = seq % 2 === 0
      ? Buffer.concat(Array.from({ length: 16 }, (_, i) => toStreamFrame(badCrcFrame(seq * 16 + i))))
      : randomBytes(4096)
    if (seq % 2 === 0) result.tcpBadCrcFrames += 16
    result.tcpBytes += chunk.length
    if (!tcp.write(chunk)) {
      if (!(await drained(tcp, deadline))) break
    } else {
      await sleep(1)
    }
  }
  await udpDone
  udp.close()
  // A final 0x00, so the last partial garbage frame is parsed (and rejected) rather than left hanging.
  tcp.end(Uint8Array.of(0))
  return result
}

// ---------------------------------------------------------------------------------------------

t.test('a burst far above the memory budget: counted rejects or slowed senders, no out-of-memory exit, every acked event delivered', async t => {
  assertBuilt()
  const started = Date.now()
  const dir = t.testdir()
  mkdirSync(join(dir, 'broker'))
  const broker = await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
  t.teardown(async () => { await broker.stop() })

  // On Node 20 `edgefwd run` cannot apply heap limits to itself: they travel as NODE_OPTIONS, as
  // under the systemd unit.
  const nodeOptions = budgetNodeOptions(memoryBudget(MEMORY_BUDGET)).join(' ')
  t.match(nodeOptions, /--max-old-space-size=\d+/, 'the budget limits the V8 heap')
  t.comment(`memory budget ${MEMORY_BUDGET / MiB} MiB: NODE_OPTIONS="${nodeOptions}"`)

  const tls = writeSet(join(dir, 'tls'), { ca: ca.certPem, cert: gatewayCert.certPem, key: gatewayCert.keyPem })
  const config = join(dir, 'edgefwd.yaml')
  writeFileSync(config, [
    `gateway: { id: ${GATEWAY} }`,
    `store: { path: ${join(dir, 'store')}, capacity: ${STORE_CAPACITY} }`,
    'log: { level: info }',
    'observe: { metrics: { listen: "127.0.0.1:0" } }',
    `tls: { ca: ${tls.ca}, cert: ${tls.cert}, key: ${tls.key} }`,
    `uplink: { url: "${broker.url}", stopTimeout: 5s }`,
    'ingest:',
    // High enough that the rate limit is not what stops the burst.
    '  rateLimit: { eventsPerSecond: 1000000, bytesPerSecond: 64MiB }',
    '  udp: { address: 127.0.0.1, port: 0 }',
    '  tcp:',
    '    - { address: 127.0.0.1, port: 0, format: frames }',
    `process: { memory: ${MEMORY_BUDGET / MiB}MiB }`,
    ''
  ].join('\n'))

  // The subscriber is there before the first event.
  const delivered = new Map<string, Set<number>>()
  let deliveredEvents = 0
  let duplicates = 0
  let decodeErrors = 0
  const sub = await mqtt.connectAsync(broker.url, {
    ...clientTlsOptions({ ca: ca.certPem, cert: subscriberCert.certPem, key: subscriberCert.keyPem }),
    clientId: 'burst-subscriber', protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000
  }, false)
  t.teardown(async () => { await sub.endAsync(true) })
  sub.on('message', (_topic, payload) => {
    try {
      for (const e of decodeEnvelopeMessage(payload).events) {
        let seqs = delivered.get(e.deviceId)
        if (seqs === undefined) delivered.set(e.deviceId, seqs = new Set())
        if (seqs.has(e.deviceSeq)) duplicates++
        else { seqs.add(e.deviceSeq); deliveredEvents++ }
      }
    } catch { decodeErrors++ }
  })
  await sub.subscribeAsync(`edgefwd/${GATEWAY}/events`, { qos: 1 })

  const fwd = startForwarder(config, nodeOptions)
  t.teardown(async () => {
    if (fwd.child.exitCode === null && fwd.child.signalCode === null) {
      fwd.child.kill('SIGKILL')
      await fwd.exited
    }
  })
  await Promise.race([
    waitFor('the "running" log line', () => running(fwd) !== undefined && fwd.lines.some(l => typeof l.msg === 'string' && l.msg.startsWith('metrics on ')), 20_000),
    fwd.exited.then(exit => { throw new Error(`the forwarder exited during start-up (${JSON.stringify(exit)}): ${fwd.stderr()}`) })
  ])
  t.notOk(fwd.lines.some(l => l.wantedBytes !== undefined), 'no warning that the budget\'s heap limit is not in force')
  t.ok(fwd.lines.some(l => l.budget !== undefined), 'the forwarder logged its memory budget')
  const tcpPort = listenPort(fwd, 'tcp')
  const udpPort = listenPort(fwd, 'udp')
  const metrics = metricsAddress(fwd)

  // RSS, sampled through the burst and the drain.
  let rssSamples = 0
  let peakRss = 0
  const sampler = setInterval(() => {
    const m = memoryOf(fwd.pid)
    if (m === undefined || !Number.isFinite(m.rss)) return
    rssSamples++
    peakRss = Math.max(peakRss, m.rss)
  }, 100)
  t.teardown(() => { clearInterval(sampler) })

  // The burst.
  const burstStart = Date.now()
  const deadline = burstStart + BURST_MS
  let ackDeadline = Number.POSITIVE_INFINITY
  const devices = Array.from({ length: DEVICES }, (_, i) => runDevice(`burst-${String(i).padStart(2, '0')}`, tcpPort, deadline, () => ackDeadline))
  const garbage = sendGarbage(udpPort, tcpPort, deadline)
  // At the deadline: how much of what the devices wrote had the forwarder read? (Only reported:
  // what it has not read waits in the sockets' kernel buffers, outside its heap.)
  const atDeadline = sleep(Math.max(0, deadline - Date.now())).then(async () => await scrape(metrics)).catch(() => undefined)
  const garbageResult = await garbage
  const deadlineSamples = await atDeadline
  // The devices still waiting for acks after the burst get a bounded while more.
  ackDeadline = Date.now() + 30_000
  const results = await Promise.all(devices)
  const burstEnd = Date.now()

  const sent = results.reduce((n, r) => n + r.sent, 0)
  const acked = results.reduce((n, r) => n + r.acked, 0)
  const drainWaits = results.reduce((n, r) => n + r.drainWaits, 0)
  const bytesWritten = results.reduce((n, r) => n + r.bytesWritten, 0)
  const slowedDevices = results.filter(r => r.drainWaits > 0).length
  const died = fwd.child.exitCode !== null || fwd.child.signalCode !== null
  if (died) {
    // Everything after this would fail as a consequence (connections reset, no metrics): one clear failure.
    const stderr = fwd.stderr()
    t.fail(`the forwarder died during the burst (exit ${String(fwd.child.exitCode)}, signal ${String(fwd.child.signalCode)}; ` +
      `${/heap out of memory/i.test(stderr) ? 'JavaScript heap out of memory' : 'see stderr'}), after devices had sent ${sent} events and got acks for ${acked}; ` +
      `peak RSS ${(peakRss / MiB).toFixed(1)} MiB`, { stderr: stderr.slice(0, 1500) })
    return
  }
  t.pass('the forwarder is still running after the burst')
  t.notMatch(fwd.stderr(), /heap out of memory|Allocation failed|FATAL ERROR/i, 'no out-of-memory on its stderr')

  const deviceErrors = results.flatMap(r => r.errors.map(e => `${r.id}: ${e}`))
  t.same(deviceErrors, [], 'no device saw a socket error or a frame other than its own acks')
  t.ok(results.every(r => r.sent > 0), 'every device sent')
  t.ok(acked > 0, `devices got acks (${acked} events acknowledged of ${sent} sent)`)

  // Wait (bounded) for the store to drain: every buffered event published and PUBACKed.
  let samples: Sample[] = []
  await waitFor('the store to be empty', async () => {
    if (fwd.child.exitCode !== null || fwd.child.signalCode !== null) throw new Error(`the forwarder exited while draining: ${fwd.stderr().slice(-2000)}`)
    samples = await scrape(metrics)
    return samples.some(s => s.name === 'edgefwd_store_events') && total(samples, 'edgefwd_store_events') === 0
  }, 60_000)
  const missingOf = (): Array<{ id: string, missing: number, first: number | undefined }> => results.map(r => {
    const got = delivered.get(r.id) ?? new Set<number>()
    let missing = 0
    let first: number | undefined
    for (let seq = 1; seq <= r.acked; seq++) {
      if (!got.has(seq)) { missing++; first ??= seq }
    }
    return { id: r.id, missing, first }
  }).filter(m => m.missing > 0)
  // The broker has PUBACKed everything; its copies to the subscriber may trail by a moment.
  await waitFor('every acknowledged event at the subscriber', () => missingOf().length === 0, 15_000).catch(() => {})
  samples = await scrape(metrics)

  const rejected = byLabel(samples, 'edgefwd_frames_rejected_total', 'reason')
  const rejectedTotal = total(samples, 'edgefwd_frames_rejected_total')
  const overloadDrops = byLabel(samples, 'edgefwd_ingest_overload_drops_total', 'transport')
  const dropped = byLabel(samples, 'edgefwd_events_dropped_total', 'reason')
  const accepted = total(samples, 'edgefwd_events_accepted_total')
  const memory = memoryOf(fwd.pid)
  if (memory !== undefined && Number.isFinite(memory.peak)) peakRss = Math.max(peakRss, memory.peak)

  t.comment(`burst ${burstEnd - burstStart} ms (devices ${BURST_MS} ms + ack wait); ${DEVICES} devices sent ${sent} events, ${acked} acknowledged, ` +
    `${deliveredEvents} delivered (${duplicates} duplicates, ${decodeErrors} undecodable messages)`)
  t.comment(`backpressure: ${drainWaits} writes waited for 'drain', on ${slowedDevices} of ${DEVICES} devices; at the ${BURST_MS} ms deadline the forwarder had read ` +
    `${deadlineSamples === undefined ? '?' : total(deadlineSamples, 'edgefwd_ingest_bytes_total', l => l.transport === 'tcp')} TCP bytes of the devices' ${bytesWritten} (and the garbage connection's)`)
  t.comment(`garbage: ${garbageResult.udpDatagrams} UDP datagrams, ${garbageResult.tcpBytes} TCP bytes (${garbageResult.tcpBadCrcFrames} bad-CRC frames among them)`)
  t.comment(`rejected ${rejectedTotal} ${JSON.stringify(rejected)}; overload drops ${JSON.stringify(overloadDrops)}; accepted ${accepted}; dropped after acceptance ${JSON.stringify(dropped)}`)
  t.comment(`forwarder RSS: peak ${(peakRss / MiB).toFixed(1)} MiB (VmHWM), ${rssSamples} samples; no threshold is asserted`)

  t.ok(rssSamples > 0 && peakRss > 0, 'the forwarder\'s RSS was measured through the burst')
  t.ok(rejectedTotal > 0, `the garbage was counted as rejected (${rejectedTotal})`)
  // A byte stream is never dropped, only paused: every bad-CRC frame sent over TCP is counted,
  // but for the first of each group, which the random bytes before it may have swallowed.
  t.ok((rejected.bad_crc ?? 0) >= garbageResult.tcpBadCrcFrames * 15 / 16,
    `the bad-CRC frames over TCP were counted as bad_crc (${rejected.bad_crc ?? 0} ≥ 15/16 of ${garbageResult.tcpBadCrcFrames})`)
  t.equal(rejected.rate_limited ?? 0, 0, 'the rate limit did not stop the burst (nothing rate_limited)')
  t.same(garbageResult.errors, [], 'the garbage senders saw no socket error')
  t.same(dropped, {}, 'no event was dropped after acceptance (nothing evicted, expired or refused by the store)')
  t.equal(decodeErrors, 0, 'every published message decoded')
  const missing = missingOf()
  t.same(missing, [], 'every event a device got an ack for reached the subscriber')
  t.ok(deliveredEvents >= acked, `delivered ${deliveredEvents} ≥ acknowledged ${acked}`)

  fwd.child.kill('SIGTERM')
  const exit = await within(fwd.exited, 30_000)
  t.same(exit, { code: 0, signal: null }, `exit 0 on SIGTERM (stderr: ${fwd.stderr().slice(-2000)})`)
  t.comment(`whole test ${Date.now() - started} ms`)
})
