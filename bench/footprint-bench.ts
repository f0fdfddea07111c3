/**
 * `npm run bench:footprint`: the forwarder's memory footprint, measured on `edgefwd run` as users
 * run it (a child process: `node dist/bin/edgefwd.js run --config FILE`, and, when
 * dist/edgefwd-linux-x64 exists and BENCH_SEA is not 0, a copy of that single executable), each
 * at the memory budget (`process.memory`, BENCH_BUDGET, default 96 MiB) and with
 * `process.memory: off`, in one run. Progress goes to stderr; stdout gets one `name value unit`
 * figure per line, a summary against the targets, then one JSON line (the last line).
 *
 * At the budget every forwarder starts with the environment the systemd unit gives it,
 * `budgetEnvironment` of src/config/memory-budget.ts: NODE_OPTIONS = the budget's V8 flags
 * (`budgetNodeOptions`, joined by spaces; on Node 20 `edgefwd run` cannot apply heap flags to
 * itself) and MALLOC_ARENA_MAX=2. With the budget off neither is set (nor inherited). Memory is
 * the forwarder process's /proc/<pid>/status: VmRSS and RssAnon (MB = 2^20 bytes), sampled every
 * 100 ms during the drain and every second otherwise. Per target and budget, two forwarder
 * processes:
 *
 *   (a) drain    BENCH_EVENTS (1,000,000) events already in the store, written by this process
 *                before the forwarder starts (~200-byte events from 50 devices, made as
 *                bench/uplink-bench.ts makes them, bench/lib/sensor-events.ts; filled once with
 *                durability `relaxed`, then copied for each run so every run starts from the same
 *                LevelDB files), drained to a local Mosquitto over mutual TLS (MQTT 5, QoS 1).
 *                `drain_eps` = events / seconds (`drain_s`) from the forwarder's first connect (its
 *                `uplink online` log line) to the first scrape of its metrics endpoint (every
 *                200 ms) that shows `edgefwd_store_events` at 0 and `edgefwd_events_acked_total`
 *                at BENCH_EVENTS; `drain_eps_from_spawn` also counts the process start. Then
 *                SIGTERM.
 *   (b) idle     a fresh store, the forwarder online and no traffic: `rss_mb_idle` is VmRSS
 *                BENCH_IDLE_S (10) s after it came online.
 *       soak     then, in the same process, BENCH_RATE (5000) events/s in total for BENCH_SOAK_S
 *                (600) s: half from 10 TCP devices (one connection each, COBS frames, the
 *                gateway's acks read back), half from 10 UDP devices (one socket each, a datagram
 *                per event). A subscriber on the events topic decodes every envelope and counts
 *                unique (device, seq): `soak_delivered`. After the load, a bounded wait (60 s) for
 *                the store to drain and the TCP acks to arrive.
 *                `soak_lost` = events the forwarder accepted (Δ `edgefwd_events_accepted_total`:
 *                every event that passed ingest and was handed to the store, TCP and UDP alike)
 *                minus those delivered. Each delivered event was accepted, so the difference
 *                counts exactly the accepted events never delivered, evictions and store
 *                refusals included. UDP datagrams the kernel dropped (/proc/net/udp) or the
 *                listener dropped unread as overloaded were never accepted: UDP carries no acks, a
 *                device cannot know, so they are reported (`soak_udp_kernel_drops`,
 *                `soak_overload_drops`) but are not loss of the forwarder. A cross-check per event:
 *                `soak_acked_undelivered`, TCP events up to a device's highest acked seq (an ack
 *                promises every event up to it is stored) that never reached the subscriber.
 *                `rss_mb_soak_last_minute` is the mean VmRSS of the load's last 60 s (of all of it
 *                when shorter); `rss_mb_soak_growth_per_min` the least-squares slope of VmRSS over
 *                the load's second half, in MB per minute.
 *   (c) garbage  then, in the same process, BENCH_GARBAGE (1,200,000) malformed frames as fast as
 *                the bench can send them, half over UDP (4 sockets), half over TCP (4
 *                connections): random bytes, valid frames with a bad CRC, truncated frames (on
 *                TCP, COBS cut short before its 0x00) and 1 in 100 oversize (17,000 bytes, above
 *                the 16 KiB ingest.maxFrameSize). Counted at the forwarder by Δ
 *                `edgefwd_frames_rejected_total`; UDP kernel drops apart. Then SIGTERM.
 *
 * `oom` is 1 when a forwarder exited before the bench stopped it (any code or signal, the
 * kernel's OOM killer included) or wrote "heap out of memory" to stderr; that run's remaining
 * phases are skipped and their figures are null.
 *
 * The forwarder's configuration is the defaults but for: ingest.rateLimit raised to 1,000,000
 * events/s and 64 MiB/s (the default 1000 events/s per device would reject the load), a UDP and a
 * TCP listener on 127.0.0.1, the metrics endpoint on 127.0.0.1 (all three on port 0: the
 * forwarder logs the ports it got, so no port is picked ahead and raced for), store.capacity
 * 512 MiB (more when BENCH_EVENTS needs it), the bench's Mosquitto and certificates. Mosquitto is
 * bench/lib/mosquitto.ts's, with max_queued_messages raised so that the subscriber's queue can
 * never be what loses a message.
 *
 * Figures in the JSON line: without suffix the `node` target at the budget, `_unbudgeted` the
 * same with `process.memory: off`; `drain_ratio` = drain_eps / drain_eps_unbudgeted;
 * `rss_mb_peak` / `anon_mb_peak` over every sample of the run's two forwarder processes (start-up
 * and SIGTERM included), peaks per phase as `rss_mb_peak_<phase>` / `anon_mb_peak_<phase>`; the
 * single executable's figures, with the same names, under `sea`. The exit code is 1 when a run
 * failed for another reason than its forwarder dying (a bounded wait ran out, say).
 *
 * Environment: BENCH_EVENTS (1000000), BENCH_IDLE_S (10), BENCH_SOAK_S (600), BENCH_RATE (5000),
 * BENCH_GARBAGE (1200000), BENCH_BUDGET (MiB, or a size such as 128MiB; 96), BENCH_SEA (0: skip
 * the single executable), BENCH_OFF (0: skip the runs with the budget off, for trying things;
 * the ratio is then not printed), BENCH_NODE_OPTIONS (added to the budget's NODE_OPTIONS),
 * BENCH_MCP_SOCKET (mcp.socket of the forwarder; off: without its agent side). The
 * machine's load average is printed with the figures: drain rates and UDP drops depend on what
 * else runs.
 *
 * The code: this file fills the backlog, starts Mosquitto and runs each target; one run at one
 * budget is bench/footprint-run.ts, its phases bench/footprint-phases.ts, the figures and summary
 * bench/footprint-report.ts, the environment variables bench/footprint-settings.ts. The parts any
 * bench can use are in bench/lib/: the forwarder child process (forwarder-child.ts, also
 * sea-bench's), /proc memory and its sampler (proc-memory.ts), kernel UDP drops
 * (udp-kernel-drops.ts), the metrics scrape (prometheus-scrape.ts), the backlog's events
 * (sensor-events.ts, also uplink-bench's), devices and their frames (device-senders.ts,
 * device-frames.ts).
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createLogger } from '../src/observe/log.js'
import { createCa, issueCertificate } from '../src/pki/generate.js'
import { clientTlsOptions } from '../src/pki/tls-options.js'
import { openLevelStore, type EventStore } from '../src/store/index.js'
import { killRunningForwarders } from './lib/forwarder-child.js'
import { startBenchMosquitto } from './lib/mosquitto.js'
import { appendSensorEvents, SensorEventSource } from './lib/sensor-events.js'
import { report, summary } from './footprint-report.js'
import { runTarget, skipped, type RunResult, type Setup, type Target } from './footprint-run.js'
import { began, BUDGET_MIB, EVENTS, GARBAGE, GATEWAY, IDLE_S, MB, progress, RATE, RUN_OFF, RUN_SEA, SOAK_S } from './footprint-settings.js'

const repo = fileURLToPath(new URL('../../', import.meta.url))
const MAIN_JS = join(repo, 'dist/bin/edgefwd.js')
const SEA_BIN = join(repo, 'dist/edgefwd-linux-x64')

/** bench/uplink-bench.ts's events: one of 50 devices at random, per-device seqs, ~200 bytes stored. */
const backlogEvents = new SensorEventSource()

async function fillStore (path: string, capacityBytes: number): Promise<void> {
  const store: EventStore = await openLevelStore(path, { capacityBytes, durability: 'relaxed', compactAfterDeletes: 0, expiryIntervalMs: 0 }, createLogger({ level: 'error' }))
  try {
    await appendSensorEvents(store, backlogEvents, EVENTS)
    if (store.stats().events !== EVENTS) throw new Error(`the filled store holds ${store.stats().events} events, not ${EVENTS}`)
  } finally {
    await store.close()
  }
}

async function main (): Promise<void> {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run npm run build first`)
  const loadBefore = loadavg()
  const root = mkdtempSync(join(tmpdir(), 'edgefwd-footprint-bench-'))
  // However the bench ends (an error, Ctrl-C): no forwarder left running, no temp dir left behind.
  const onExit = (): void => {
    killRunningForwarders()
    rmSync(root, { recursive: true, force: true })
  }
  process.on('exit', onExit)
  const onSignal = (): void => { process.exit(130) }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const cleanup: Array<() => Promise<void>> = []
  try {
    const targets: Target[] = [{ name: 'node', command: process.execPath, args: [MAIN_JS] }]
    if (RUN_SEA && existsSync(SEA_BIN)) {
      // A copy, as an installed binary is: postject's one large write leaves the original in
      // large page-cache folios that inflate its file-backed RSS (see bench/sea-bench.ts).
      const exe = join(root, 'edgefwd')
      copyFileSync(SEA_BIN, exe)
      targets.push({ name: 'sea', command: exe, args: [] })
    } else {
      progress(RUN_SEA ? `${SEA_BIN} not found: the single executable is skipped (npm run build:sea makes it)` : 'BENCH_SEA=0: the single executable is skipped')
    }

    progress('certificates and Mosquitto')
    const ca = createCa({ commonName: 'footprint-bench-ca', keyBits: 2048 })
    const serverCert = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
    const gwCert = issueCertificate(ca, { kind: 'client', commonName: GATEWAY })
    const sinkCert = issueCertificate(ca, { kind: 'client', commonName: 'footprint-sink' })
    mkdirSync(join(root, 'broker'))
    // A QoS 1 subscriber's queue is 1000 messages by default; past it Mosquitto drops for that
    // subscriber, which would show as loss that is not the forwarder's.
    const broker = await startBenchMosquitto({ dir: join(root, 'broker'), ca: ca.certPem, cert: serverCert.certPem, key: serverCert.keyPem, extra: ['max_queued_messages 1000000'] })
    cleanup.unshift(async () => { await broker.stop() })
    const tls = { ca: join(root, 'ca.pem'), cert: join(root, 'gw.pem'), key: join(root, 'gw-key.pem') }
    writeFileSync(tls.ca, ca.certPem)
    writeFileSync(tls.cert, gwCert.certPem)
    writeFileSync(tls.key, gwCert.keyPem, { mode: 0o600 })

    // ~207 stored bytes per event; twice that leaves room, and never less than 512 MiB.
    const capacity = Math.max(512 * MB, EVENTS * 420)
    const template = join(root, 'template', 'store')
    mkdirSync(join(root, 'template'))
    progress(`filling a store with ${EVENTS} events (durability relaxed)`)
    const fillStart = Date.now()
    await fillStore(template, capacity)
    progress(`filled in ${((Date.now() - fillStart) / 1000).toFixed(1)} s`)

    const setup: Setup = {
      root, template, capacity, brokerUrl: broker.url, tls,
      sinkTls: clientTlsOptions({ ca: ca.certPem, cert: sinkCert.certPem, key: sinkCert.keyPem })
    }
    const results = new Map<Target['name'], [RunResult, RunResult]>()
    for (const target of targets) {
      const budgeted = await runTarget(target, true, setup)
      const off = RUN_OFF ? await runTarget(target, false, setup) : skipped(target)
      results.set(target.name, [budgeted, off])
    }

    const json: Record<string, unknown> = {}
    const lines: string[] = []
    for (const [name, [budgeted, off]] of results) {
      const figures = report(name === 'node' ? '' : `${name}_`, budgeted, off)
      if (name === 'node') Object.assign(json, figures)
      else json[name] = figures
      lines.push(...summary(name === 'node' ? `node ${process.version} dist/bin/edgefwd.js` : 'single executable (a copy of dist/edgefwd-linux-x64)', figures, budgeted, off))
      if ([budgeted, off].some(r => r.error !== undefined)) process.exitCode = 1
    }
    const nodeRuns = results.get('node')
    const loadAfter = loadavg()
    const wallS = (Date.now() - began) / 1000
    const la = (l: number[]): string => l.map(x => x.toFixed(2)).join(' ')
    Object.assign(json, {
      budget_mib: BUDGET_MIB,
      node_options: nodeRuns?.[0].budgetEnv.NODE_OPTIONS,
      budget_env: nodeRuns?.[0].budgetEnv,
      node_version: process.version,
      load_avg_start: loadBefore.map(x => Number(x.toFixed(2))),
      load_avg_end: loadAfter.map(x => Number(x.toFixed(2))),
      cores: availableParallelism(),
      events: EVENTS,
      idle_s: IDLE_S,
      soak_s: SOAK_S,
      rate_eps: RATE,
      garbage_frames: GARBAGE,
      wall_s: Math.round(wallS)
    })
    console.log(`\nedgefwd footprint benchmark — ${EVENTS} events drained, ${IDLE_S} s idle, ${RATE} events/s for ${SOAK_S} s, ${GARBAGE} malformed frames; ` +
      `Mosquitto mTLS on ${broker.url}; ${wallS.toFixed(0)} s; load average ${la(loadBefore)} at the start, ${la(loadAfter)} at the end (${availableParallelism()} cores)`)
    for (const line of lines) console.log(`  ${line}`)
    console.log(JSON.stringify(json))
  } finally {
    for (const close of cleanup) await close().catch((err: unknown) => { console.error(err) })
    killRunningForwarders()
    rmSync(root, { recursive: true, force: true })
    process.off('exit', onExit)
  }
}

main().catch(err => { console.error(err); process.exitCode = 1 })
