/**
 * `npm run build && node dist/bench/sea-bench.js`: the single-executable binary
 * (dist/edgefwd-linux-x64, made by `npm run build:sea`) measured as a gateway runs it. Prints one
 * `name value unit` figure per line, a short summary against the targets, then one JSON line
 * (the last line) with every figure.
 *
 *   size_<arch>_mb, size_<arch>_xz_mb   each dist/edgefwd-linux-{x64,arm64,armv7l} present and its
 *                                       .xz copy (targets ≤ 90 MB raw, ≤ 25 MB xz; MB here and in
 *                                       every figure is 2^20 bytes, as in the other benches; the
 *                                       summary also gives bytes). An .xz that
 *                                       `xz --list` cannot read (still being written) is reported so.
 *   ready_ms                            `edgefwd-linux-x64 run --config FILE` (UDP listener on
 *                                       127.0.0.1:0, a LevelDB store, mTLS to a local Mosquitto):
 *                                       from just before spawn to the READY=1 datagram on
 *                                       NOTIFY_SOCKET (sent through /usr/bin/systemd-notify), as
 *                                       systemd sees it. Target ≤ 150 ms.
 *   log_ready_ms                        the same start to the `running: listening on` log line: the
 *                                       in-process moment, without the systemd-notify spawn.
 *   version_ms, node_version_ms         `edgefwd-linux-x64 --version` and `node dist/bin/edgefwd.js
 *                                       --version`, spawn to exit.
 *   idle_rss_mb_<n>s                    one `run`, online to the broker, no traffic: VmRSS of the
 *                                       process after n s (10 s and BENCH_IDLE_S). Target ≤ 80 MB.
 *   load_rss_mb_peak/final              then, in the same process, BENCH_RATE events/s over UDP for
 *                                       BENCH_LOAD_S, 100 events every 10 ms from 20 devices
 *                                       (~150-byte frames, priority normal); VmRSS sampled every
 *                                       second. Events sent, accepted by the forwarder (its health
 *                                       heartbeat's eventsReceived), lost on the way (the kernel's
 *                                       drop count of the listener's socket, /proc/net/udp; the rest
 *                                       dropped by the listener as overloaded) and delivered
 *                                       (events decoded from the envelopes a subscriber receives on
 *                                       the events topic, duplicates counted apart).
 *
 * The forwarder runs with the environment edgefwd.service gives it: the default memory budget's
 * NODE_OPTIONS (V8 heap limits) and MALLOC_ARENA_MAX=2. Its config is the defaults but for: store
 * durability `sync` (the default), ingest.rateLimit raised to 1M events/s and 64 MiB/s (the
 * default 1000 events/s per device would reject most of the load), uplink.heartbeatInterval 1 s
 * (the counters ride on it).
 *
 * Environment: BENCH_RUNS (start-up runs, 7), BENCH_VERSION_RUNS (10), BENCH_IDLE_S (30),
 * BENCH_LOAD_S (30), BENCH_RATE (10000 events/s), BENCH_RCVBUF (ingest.udp.receiveBufferSize in
 * bytes; unset = the kernel's default, net.core.rmem_default), BENCH_NODE_OPTIONS (NODE_OPTIONS of
 * the forwarder only, e.g. --max-old-space-size=48 to tell a leak from a lazily collected heap),
 * BENCH_MCP_SOCKET (mcp.socket; `off` runs the gateway without its agent side, to measure that).
 *
 * The machine's load average is printed with the figures: start-up times and UDP drops depend on
 * what else is running.
 */
import { spawnSync } from 'node:child_process'
import dgram from 'node:dgram'
import { accessSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { budgetEnvironment, DEFAULT_MEMORY_BUDGET, memoryBudget } from '../src/config/memory-budget.js'
import { encodeFrame } from '../src/ingest/frame.js'
import { createCa, issueCertificate } from '../src/pki/generate.js'
import { clientTlsOptions } from '../src/pki/tls-options.js'
import { decodeHeartbeat, type HeartbeatData } from '../src/proto/codec.js'
import { decodeEnvelopeMessage } from '../src/sink/decode.js'
import { deviceEventBody } from './lib/device-frames.js'
import { ForwarderChild, killRunningForwarders, type Watched } from './lib/forwarder-child.js'
import { startBenchMosquitto } from './lib/mosquitto.js'
import { startNotifyReceiver, type NotifyReceiver } from './lib/notify-receiver.js'
import { processMemory } from './lib/proc-memory.js'
import { kernelUdpDrops } from './lib/udp-kernel-drops.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 7)
const VERSION_RUNS = Number(process.env.BENCH_VERSION_RUNS ?? 10)
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 30)
const LOAD_S = Number(process.env.BENCH_LOAD_S ?? 30)
const RATE = Number(process.env.BENCH_RATE ?? 10_000)
const RCVBUF = process.env.BENCH_RCVBUF
/** mcp.socket of the forwarder: unset = the default (the agent socket on); `off` measures a gateway without the agent side. */
const MCP_SOCKET = process.env.BENCH_MCP_SOCKET
const DEVICES = 20
const TICK_MS = 10
const MB = 1024 * 1024
const TARGETS = { rawMb: 90, xzMb: 25, readyMs: 150, rssMb: 80 }

const repo = fileURLToPath(new URL('../../', import.meta.url))
const dist = join(repo, 'dist')
const BIN = join(dist, 'edgefwd-linux-x64')
/**
 * What runs: a copy of BIN in the bench's temp dir, as an installed binary is (cp, dpkg). BIN
 * itself was written by postject in one large write, and the kernel keeps such a file in large
 * page-cache folios: every page fault then maps more of it, and the process's file-backed RSS
 * comes out ~15 MB higher than the same binary's after a copy or a reboot.
 */
let EXE = BIN
const GATEWAY = 'gw-sea-bench'

const figures: Array<{ name: string, value: number, unit: string }> = []
function figure (name: string, value: number, unit: string, digits = 1): void {
  const rounded = Number(value.toFixed(digits))
  figures.push({ name, value: rounded, unit })
  console.log(`${name} ${rounded} ${unit}`)
}
const summary: string[] = []
const verdict = (ok: boolean): string => ok ? 'ok' : 'OVER TARGET'
const elapsedMs = (from: bigint, to: bigint = process.hrtime.bigint()): number => Number(to - from) / 1e6

interface Spread { median: number, min: number, max: number }
function spread (xs: number[]): Spread {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  const median = s.length % 2 === 1 ? s[mid] ?? NaN : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2
  return { median, min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN }
}

// ── the forwarder process ──────────────────────────────────────────────────────────────────────

process.on('exit', killRunningForwarders)

/** `EXE run --config FILE`, stopped with SIGTERM and, after 10 s, SIGKILL. */
function startForwarder (config: string, env: NodeJS.ProcessEnv): ForwarderChild {
  return new ForwarderChild({ command: EXE, args: [] }, config, env, 10_000)
}

// ── the phases ─────────────────────────────────────────────────────────────────────────────────

function sizes (): void {
  for (const arch of ['x64', 'arm64', 'armv7l']) {
    const bin = join(dist, `edgefwd-linux-${arch}`)
    if (!existsSync(bin)) continue
    const rawBytes = statSync(bin).size
    const raw = rawBytes / MB
    figure(`size_${arch}_mb`, raw, 'MB')
    const xz = `${bin}.xz`
    let xzText = 'no .xz'
    if (existsSync(xz)) {
      // A complete .xz ends in an index that `xz --list` reads at once; a half-written one fails.
      const listed = spawnSync('xz', ['--robot', '--list', xz], { encoding: 'utf8', timeout: 10_000 })
      if (listed.status === 0) {
        const xzBytes = statSync(xz).size
        const xzMb = xzBytes / MB
        figure(`size_${arch}_xz_mb`, xzMb, 'MB')
        xzText = `xz ${xzMb.toFixed(1)} MB = ${xzBytes} bytes (${verdict(xzMb <= TARGETS.xzMb)}, ≤ ${TARGETS.xzMb})`
      } else {
        xzText = `.xz unreadable (being written?): ${(listed.stderr ?? '').trim()}`
      }
    }
    summary.push(`size ${arch}: ${raw.toFixed(1)} MB = ${rawBytes} bytes (${verdict(raw <= TARGETS.rawMb)}, ≤ ${TARGETS.rawMb}), ${xzText}`)
  }
}

async function startup (config: string, env: NodeJS.ProcessEnv, notify: NotifyReceiver): Promise<void> {
  const ready: number[] = []
  const logged: number[] = []
  /** From the log lines' own `time` (ms): store opened + TLS loaded, and the listener bound. */
  const tlsLoaded: number[] = []
  const listening: number[] = []
  const lineTime = (f: ForwarderChild, msg: Watched): number => {
    const line = f.seen.get(msg)?.line
    return typeof line?.time === 'number' ? line.time - f.spawnedAt : NaN
  }
  for (let i = 0; i < RUNS; i++) {
    const from = notify.datagrams.length
    const f = startForwarder(config, env)
    try {
      const datagram = await notify.waitFor(d => d.text.split('\n').includes('READY=1'), from, 10_000)
      ready.push(elapsedMs(f.spawnedAtNs, datagram.atNs))
      logged.push(elapsedMs(f.spawnedAtNs, (await f.waitLine('running: listening on', 1000)).atNs))
      tlsLoaded.push(lineTime(f, 'TLS material loaded'))
      listening.push(lineTime(f, 'ingest listening'))
    } finally {
      const code = (await f.stop()).code
      if (code !== 0) throw new Error(`run ${i + 1}: exit ${code} after SIGTERM: ${f.stderr.trim()}`)
    }
  }
  const r = spread(ready)
  const l = spread(logged)
  figure('ready_ms_median', r.median, 'ms')
  figure('ready_ms_min', r.min, 'ms')
  figure('ready_ms_max', r.max, 'ms')
  figure('log_ready_ms_median', l.median, 'ms')
  figure('log_ready_ms_min', l.min, 'ms')
  figure('log_ready_ms_max', l.max, 'ms')
  summary.push(`start to READY=1 (${RUNS} runs): median ${r.median.toFixed(1)} ms, ${r.min.toFixed(1)}–${r.max.toFixed(1)} (${verdict(r.median <= TARGETS.readyMs)}, ≤ ${TARGETS.readyMs}); ` +
    `to the "running" log line: median ${l.median.toFixed(1)} ms, ${l.min.toFixed(1)}–${l.max.toFixed(1)}`)
  summary.push(`  log line times, median: "TLS material loaded" (store open, TLS checked) ${spread(tlsLoaded).median} ms, "ingest listening" ${spread(listening).median} ms`)
  summary.push(`  each run, READY=1 / log line (ms): ${ready.map((x, k) => `${x.toFixed(0)}/${(logged[k] ?? NaN).toFixed(0)}`).join(' ')}`)
}

function versions (): void {
  const time = (command: string, args: string[]): Spread => spread(Array.from({ length: VERSION_RUNS }, () => {
    const from = process.hrtime.bigint()
    const out = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 })
    if (out.status !== 0) throw new Error(`${command} ${args.join(' ')}: exit ${out.status}: ${out.stderr}`)
    return elapsedMs(from)
  }))
  const sea = time(EXE, ['--version'])
  const node = time(process.execPath, [join(dist, 'bin/edgefwd.js'), '--version'])
  figure('version_ms_median', sea.median, 'ms')
  figure('node_version_ms_median', node.median, 'ms')
  summary.push(`--version (${VERSION_RUNS} runs): binary median ${sea.median.toFixed(1)} ms (${sea.min.toFixed(1)}–${sea.max.toFixed(1)}), ` +
    `node ${process.version} dist/bin/edgefwd.js median ${node.median.toFixed(1)} ms (${node.min.toFixed(1)}–${node.max.toFixed(1)})`)
}

/** 150-byte-ish frames for DEVICES devices, priority normal, seq counting up per device. */
function frameFor (device: number, seq: number): Uint8Array {
  return encodeFrame({ type: 'event', body: deviceEventBody(`bench-${String(device).padStart(3, '0')}`, seq) })
}

interface LoadResult { sent: number, sendErrors: number, frameBytes: number, seconds: number }

/** RATE events/s for LOAD_S s: each tick sends what the elapsed time says is due (so timer lag is caught up). */
async function sendLoad (port: number): Promise<LoadResult> {
  const sockets = await Promise.all(Array.from({ length: DEVICES }, async () => {
    const s = dgram.createSocket('udp4')
    await new Promise<void>(resolve => { s.connect(port, '127.0.0.1', resolve) })
    return s
  }))
  const seqs = new Array<number>(DEVICES).fill(0)
  let sent = 0
  let sendErrors = 0
  let frameBytes = 0
  const total = Math.round(RATE * LOAD_S)
  const began = process.hrtime.bigint()
  while (sent < total) {
    const due = Math.min(total, Math.floor(RATE * elapsedMs(began) / 1000))
    for (; sent < due; sent++) {
      const d = sent % DEVICES
      seqs[d] = (seqs[d] ?? 0) + 1
      const frame = frameFor(d, seqs[d] ?? 0)
      frameBytes += frame.length
      sockets[d]?.send(frame, err => { if (err !== null) sendErrors++ })
    }
    await sleep(TICK_MS)
  }
  const seconds = elapsedMs(began) / 1000
  await sleep(50) // the last send callbacks
  for (const s of sockets) s.close()
  return { sent, sendErrors, frameBytes: frameBytes / Math.max(1, sent), seconds }
}

async function idleAndLoad (config: string, env: NodeJS.ProcessEnv, brokerUrl: string, sinkTls: object): Promise<void> {
  // The subscriber first: every envelope and heartbeat the forwarder publishes reaches it.
  const delivered = new Set<string>()
  let duplicates = 0
  let envelopes = 0
  let heartbeat: HeartbeatData | undefined
  let decodeErrors = 0
  const sub = await mqtt.connectAsync(brokerUrl, { ...sinkTls, clientId: 'sea-bench-sink', protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000 })
  sub.on('message', (topic, payload) => {
    try {
      if (topic.endsWith('/health')) { heartbeat = decodeHeartbeat(payload); return }
      envelopes++
      for (const e of decodeEnvelopeMessage(payload).events) {
        const id = `${e.deviceId}/${e.deviceSeq}`
        if (delivered.has(id)) duplicates++
        else delivered.add(id)
      }
    } catch { decodeErrors++ }
  })
  await sub.subscribeAsync([`edgefwd/${GATEWAY}/events`, `edgefwd/${GATEWAY}/health`], { qos: 1 })

  const f = startForwarder(config, env)
  try {
    await f.waitLine('running: listening on', 10_000)
    const readyAt = Date.now()
    await f.waitLine('uplink online', 10_000)
    const onlineMs = Date.now() - readyAt
    const idleMarks = [...new Set([Math.min(10, IDLE_S), IDLE_S])]
    for (const s of idleMarks) {
      await sleep(Math.max(0, readyAt + s * 1000 - Date.now()))
      const m = processMemory(f.pid)
      if (m === undefined) throw new Error(`the forwarder exited while idle: ${f.stderr.trim()}`)
      figure(`idle_rss_mb_${s}s`, m.rss / MB, 'MB')
      summary.push(`idle RSS after ${s} s${s === idleMarks[0] ? ` (uplink online ${onlineMs} ms after ready)` : ''}: ${(m.rss / MB).toFixed(1)} MB ` +
        `(anonymous ${(m.anon / MB).toFixed(1)}, file-backed ${(m.file / MB).toFixed(1)}) (${verdict(m.rss / MB <= TARGETS.rssMb)}, ≤ ${TARGETS.rssMb})`)
    }

    const port = f.listenerPort('udp')
    const dropsBefore = kernelUdpDrops(port) ?? 0
    const samples: number[] = []
    const sampler = setInterval(() => { const m = processMemory(f.pid); if (m !== undefined) samples.push(m.rss) }, 1000)
    const load = await sendLoad(port)
    const loadEnd = Date.now()
    // Done when a heartbeat taken after the load says every accepted event is delivered (bounded).
    const until = loadEnd + 30_000
    let settled = false
    while (Date.now() < until) {
      const hb = heartbeat
      if (hb !== undefined && hb.timeMs > loadEnd + 500 && delivered.size >= hb.eventsReceived && hb.bufferedEvents === 0) { settled = true; break }
      await sleep(100)
    }
    clearInterval(sampler)
    const final = processMemory(f.pid)
    const kernelDrops = (kernelUdpDrops(port) ?? NaN) - dropsBefore
    const hb = heartbeat
    const accepted = hb?.eventsReceived ?? NaN
    const rejected = hb?.framesRejected ?? NaN
    const overloaded = load.sent - accepted - rejected - kernelDrops
    const peak = Math.max(...samples, final?.rss ?? 0)
    figure('load_rss_mb_peak', peak / MB, 'MB')
    figure('load_rss_mb_final', (final?.rss ?? NaN) / MB, 'MB')
    figure('load_events_sent', load.sent, 'events', 0)
    figure('load_events_accepted', accepted, 'events', 0)
    figure('load_events_delivered', delivered.size, 'events', 0)
    figure('load_events_lost', load.sent - delivered.size, 'events', 0)
    figure('load_udp_kernel_drops', kernelDrops, 'datagrams', 0)
    figure('load_rate_eps', load.sent / load.seconds, 'events/s', 0)
    summary.push(`under load (${load.sent} events in ${load.seconds.toFixed(1)} s = ${(load.sent / load.seconds).toFixed(0)}/s, ${load.frameBytes.toFixed(0)}-byte frames, ${DEVICES} devices): ` +
      `RSS peak ${(peak / MB).toFixed(1)} MB (${verdict(peak / MB <= TARGETS.rssMb)}, ≤ ${TARGETS.rssMb}), final ${((final?.rss ?? NaN) / MB).toFixed(1)} MB ` +
      `(anonymous ${((final?.anon ?? NaN) / MB).toFixed(1)}); samples ${samples.map(x => (x / MB).toFixed(0)).join(' ')}`)
    summary.push(`  sent ${load.sent}, accepted ${accepted}, delivered ${delivered.size} (+${duplicates} duplicates, ${envelopes} envelopes, ${decodeErrors} undecodable), ` +
      `lost ${load.sent - delivered.size}: UDP kernel drops ${kernelDrops}, dropped by the listener (overloaded) ${overloaded}, rejected ${rejected}, ` +
      `store drops ${hb?.eventsDropped ?? NaN}, accepted but undelivered ${accepted - delivered.size}, send errors ${load.sendErrors}` +
      (settled ? '' : '; NOT SETTLED within 30 s of the load\'s end'))
  } finally {
    const code = (await f.stop()).code
    await sub.endAsync(true).catch(() => {})
    if (code !== 0) console.error(`the forwarder exited with ${code} after SIGTERM: ${f.stderr.trim()}`)
  }
}

async function main (): Promise<void> {
  try { accessSync(BIN, constants.X_OK) } catch {
    console.error(`sea-bench: ${BIN} is missing or not executable: run npm run build:sea first`)
    process.exitCode = 1
    return
  }
  const began = Date.now()
  const loadBefore = loadavg()
  const root = mkdtempSync(join(tmpdir(), 'edgefwd-sea-bench-'))
  const cleanup: Array<() => Promise<void>> = []
  try {
    sizes()
    EXE = join(root, 'edgefwd')
    copyFileSync(BIN, EXE)

    const ca = createCa({ commonName: 'sea-bench-ca', keyBits: 2048 })
    const serverCert = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
    const gwCert = issueCertificate(ca, { kind: 'client', commonName: GATEWAY })
    const sinkCert = issueCertificate(ca, { kind: 'client', commonName: 'sea-bench-sink' })
    mkdirSync(join(root, 'broker'))
    const broker = await startBenchMosquitto({ dir: join(root, 'broker'), ca: ca.certPem, cert: serverCert.certPem, key: serverCert.keyPem })
    cleanup.unshift(async () => { await broker.stop() })
    const notify = await startNotifyReceiver(root)
    cleanup.unshift(async () => { await notify.close() })

    const tls = { ca: join(root, 'ca.pem'), cert: join(root, 'gw.pem'), key: join(root, 'gw-key.pem') }
    writeFileSync(tls.ca, ca.certPem)
    writeFileSync(tls.cert, gwCert.certPem)
    writeFileSync(tls.key, gwCert.keyPem, { mode: 0o600 })
    const config = join(root, 'edgefwd.json')
    writeFileSync(config, JSON.stringify({
      gateway: { id: GATEWAY },
      store: { path: join(root, 'store') },
      log: { level: 'info' },
      observe: { metrics: { listen: '127.0.0.1:0' } },
      tls,
      uplink: { url: broker.url, heartbeatInterval: 1000 },
      ingest: { udp: { address: '127.0.0.1', port: 0, ...(RCVBUF === undefined ? {} : { receiveBufferSize: Number(RCVBUF) }) }, rateLimit: { eventsPerSecond: 1_000_000, bytesPerSecond: 64 * MB } },
      ...(MCP_SOCKET === undefined ? {} : { mcp: { socket: MCP_SOCKET } }),
    }, null, 2))
    // Only this NOTIFY_SOCKET: none inherited from a systemd the bench itself may run under.
    // The environment edgefwd.service gives it: the default memory budget's NODE_OPTIONS and
    // MALLOC_ARENA_MAX (without them `run` re-executes itself to put the budget in force).
    const env: NodeJS.ProcessEnv = { ...process.env, ...budgetEnvironment(memoryBudget(DEFAULT_MEMORY_BUDGET)), NOTIFY_SOCKET: notify.socket }
    // BENCH_NODE_OPTIONS: Node options for the forwarder alone (e.g. a heap limit), not the bench.
    if (process.env.BENCH_NODE_OPTIONS !== undefined) env.NODE_OPTIONS = process.env.BENCH_NODE_OPTIONS
    for (const k of ['WATCHDOG_USEC', 'WATCHDOG_PID', 'LISTEN_FDS', 'LISTEN_PID']) delete env[k]

    await startup(config, env, notify)
    versions()
    await idleAndLoad(config, { ...env, NOTIFY_SOCKET: '' }, broker.url,
      clientTlsOptions({ ca: ca.certPem, cert: sinkCert.certPem, key: sinkCert.keyPem }))

    const load = (l: number[]): string => l.map(x => x.toFixed(1)).join(' ')
    console.log(`\nedgefwd single-executable benchmark — ${BIN}, Mosquitto mTLS on ${broker.url}, ${((Date.now() - began) / 1000).toFixed(0)} s; ` +
      `load average ${load(loadBefore)} at the start, ${load(loadavg())} at the end (${availableParallelism()} cores)`)
    for (const line of summary) console.log(`  ${line}`)
    console.log(JSON.stringify(Object.fromEntries(figures.map(f => [f.name, f.value]))))
  } finally {
    for (const close of cleanup) await close().catch((err: unknown) => { console.error(err) })
    rmSync(root, { recursive: true, force: true })
  }
}

main().catch(err => { console.error(err); process.exitCode = 1 })
