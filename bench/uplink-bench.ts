/**
 * `npm run bench:uplink`: the uplink session against a local Mosquitto over mutual TLS, fed from a
 * LevelDB store. Prints a table, then one JSON line (the last line) with the figures.
 *
 *   drain_eps                        a 1M-event backlog of ~200-byte events published and PUBACKed
 *                                    (acked in the store), from uplink start to the last ack
 *   bytes_per_event_wire             TLS bytes the gateway sent during the drain per event: the
 *                                    kernel's `bytes_sent` of the uplink's TCP connection (`ss -ti`),
 *                                    or with BENCH_PROXY=1 the bytes an in-process TCP proxy
 *                                    between uplink and broker forwarded (the proxy costs ~6% of the
 *                                    main thread, so it is off by default)
 *   backlog_100k_after_reconnect_s   broker stopped, 100k events buffered, broker restarted on the
 *                                    same port: seconds from "broker accepts again" to the last ack
 *   rss_mb_peak                      peak resident set size over the whole run (store fill included)
 *
 * Event data ("random-looking", bench/lib/sensor-events.ts): deviceId one of 50 chosen at
 * random, deviceSeq increasing per device, gatewayTimeMs increasing, stream 'telemetry', an
 * 8-number map of which 4 are uniform random readings at sensor resolution (t 2 decimals, rh 1,
 * p 2, v 3), co2 a random integer and 3 slowly varying values, tags site/line. Not raw random
 * bytes, which no compression shrinks.
 *
 * Environment: BENCH_EVENTS (1000000), BENCH_BACKLOG (100000), BENCH_WINDOW (8), BENCH_BATCH
 * (500 events per batch), BENCH_COMPRESSION (auto|none|gzip|deflate), BENCH_LEVEL (1),
 * BENCH_SUBSCRIBER=1 (a QoS 1 subscriber on the events topic), BENCH_INFLIGHT (Mosquitto's
 * max_inflight_messages, i.e. the Receive Maximum it advertises; default unset = 20),
 * BENCH_DOWN_MS (how long the broker stays down after the backlog is buffered; 1000),
 * BENCH_PROXY=1 (count wire bytes with simulate/chaos-proxy.ts), BENCH_LOG (pino level; 'error'),
 * BENCH_PROFILE=FILE (write a CPU profile of the drain phase alone to FILE, a .cpuprofile).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import type { Socket } from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Session } from 'node:inspector/promises'
import { writeFileSync } from 'node:fs'
import mqtt from 'mqtt'
import { createLogger } from '../src/observe/log.js'
import { createCa, issueCertificate } from '../src/pki/generate.js'
import { clientTlsOptions } from '../src/pki/tls-options.js'
import { openLevelStore } from '../src/store/index.js'
import { parseBrokerUrl } from '../src/uplink/connect.js'
import type { CompressionOptions } from '../src/uplink/envelope.js'
import { Uplink, type UplinkOptions } from '../src/uplink/session.js'
import { startChaosProxy } from '../simulate/chaos-proxy.js'
import { startBenchMosquitto } from './lib/mosquitto.js'
import { processMemory } from './lib/proc-memory.js'
import { appendSensorEvents, SensorEventSource } from './lib/sensor-events.js'

const N = Number(process.env.BENCH_EVENTS ?? 1_000_000)
const BACKLOG = Number(process.env.BENCH_BACKLOG ?? 100_000)
const WINDOW = Number(process.env.BENCH_WINDOW ?? 8)
const BATCH = Number(process.env.BENCH_BATCH ?? 500)
const COMPRESSION = (process.env.BENCH_COMPRESSION ?? 'auto') as CompressionOptions['compression']
const LEVEL = Number(process.env.BENCH_LEVEL ?? 1)
const SUBSCRIBER = process.env.BENCH_SUBSCRIBER === '1'
const INFLIGHT = process.env.BENCH_INFLIGHT
const PROXY = process.env.BENCH_PROXY === '1'
const DOWN_MS = Number(process.env.BENCH_DOWN_MS ?? 1000)
const PROFILE = process.env.BENCH_PROFILE
const root = mkdtempSync(join(tmpdir(), 'edgefwd-uplink-bench-'))
const logger = createLogger({ level: (process.env.BENCH_LOG ?? 'error') as 'error' })

let rssPeak = 0
let anonPeak = 0
/** Peak RSS since the current phase began (reset by the phases). */
let phasePeak = 0
/** At the RSS peak: V8's heap (total reserved, used), memory outside it (Buffers, native), anonymous RSS. */
let atPeak = { heapTotal: 0, heapUsed: 0, external: 0, anon: 0 }
function sample (): void {
  const rss = process.memoryUsage.rss()
  const anon = processMemory('self')?.anon ?? 0
  if (rss > rssPeak) {
    const m = process.memoryUsage()
    atPeak = { heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, anon }
  }
  rssPeak = Math.max(rssPeak, rss)
  phasePeak = Math.max(phasePeak, rss)
  anonPeak = Math.max(anonPeak, anon)
}
const sampler = setInterval(sample, 20)
const mb = (n: number): string => (n / 1024 / 1024).toFixed(1)
const seconds = (from: bigint): number => Number(process.hrtime.bigint() - from) / 1e9

/** The events' devices, seqs and clock go on counting from the drain's fill to the backlog's. */
const events = new SensorEventSource()

async function waitFor (what: string, cond: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(2)
  }
}

/** CPU seconds (user + system) a process has used, from /proc (clock ticks of 1/100 s). */
function procCpuS (pid: number | undefined): number {
  if (pid === undefined) return 0
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** The kernel's count of bytes sent on the uplink's TCP connection (TLS records, handshake included). */
function kernelBytesSent (uplink: Uplink): number {
  // The session keeps its connection private (lifecycle.ts: the online state's link, wrapping
  // the mqtt.js client in broker-connection.ts); the bench only reads the socket's local port.
  const online = (uplink as unknown as { life: { kind: string, link?: { connection: { client?: { stream?: Socket } } } } }).life
  const socket = online.kind === 'online' ? online.link?.connection.client?.stream : undefined
  const port = socket?.localPort
  if (port === undefined) throw new Error('the uplink has no connection to measure')
  const out = execFileSync('ss', ['-tinH', 'state', 'established', `sport = :${port}`], { encoding: 'utf8' })
  const m = /bytes_sent:(\d+)/.exec(out)
  if (m === null) throw new Error(`no bytes_sent in: ${out}`)
  return Number(m[1])
}

/** A CPU profile of the drain phase alone (BENCH_PROFILE=FILE), for Chrome DevTools or speedscope. */
async function startProfile (): Promise<Session> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
  return session
}

async function stopProfile (session: Session, file: string): Promise<void> {
  const { profile } = await session.post('Profiler.stop')
  writeFileSync(file, JSON.stringify(profile))
  session.disconnect()
}

async function main (): Promise<void> {
  const rows: Array<[string, string]> = []
  const ca = createCa({ commonName: 'bench-ca', keyBits: 2048 })
  const serverCert = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
  const gwCert = issueCertificate(ca, { kind: 'client', commonName: 'gw-1' })
  const creds = { ca: ca.certPem, cert: gwCert.certPem, key: gwCert.keyPem }

  const extra = INFLIGHT === undefined ? [] : [`max_inflight_messages ${INFLIGHT}`, 'max_queued_messages 100000']
  const broker = await startBenchMosquitto({ dir: root, ca: ca.certPem, cert: serverCert.certPem, key: serverCert.keyPem, extra })
  const proxy = PROXY ? await startChaosProxy({ target: { host: '127.0.0.1', port: broker.port } }) : undefined

  const store = await openLevelStore(join(root, 'store'), {
    capacityBytes: 1024 * 1024 * 1024, durability: 'relaxed', compactAfterDeletes: 0, expiryIntervalMs: 0
  }, logger)
  const fillStart = process.hrtime.bigint()
  await appendSensorEvents(store, events, N)
  const fillS = seconds(fillStart)
  const st = store.stats()
  const storedPerEvent = st.perPriority.reduce((n, p) => n + p.bytes, 0) / st.events
  rows.push([`store fill (relaxed, ${N.toLocaleString()} events)`, `${fillS.toFixed(1)} s, ${storedPerEvent.toFixed(1)} stored bytes/event, RSS peak ${mb(phasePeak)} MB`])

  let received = 0
  let sub: mqtt.MqttClient | undefined
  if (SUBSCRIBER) {
    const sinkCert = issueCertificate(ca, { kind: 'client', commonName: 'sink' })
    sub = await mqtt.connectAsync(broker.url, {
      ...clientTlsOptions({ ca: ca.certPem, cert: sinkCert.certPem, key: sinkCert.keyPem }), clientId: 'sink', protocolVersion: 5, reconnectPeriod: 0
    })
    sub.on('message', () => { received++ })
    await sub.subscribeAsync('edgefwd/gw-1/events', { qos: 1 })
  }

  let seq = 0
  const options: UplinkOptions = {
    brokers: [parseBrokerUrl(proxy?.url('mqtts') ?? broker.url)],
    credentials: () => creds,
    gatewayId: 'gw-1',
    protocolVersion: 5,
    topics: { events: 'edgefwd/gw-1/events', status: 'edgefwd/gw-1/status' },
    window: WINDOW,
    batch: { maxEvents: BATCH, maxBytes: Math.max(128 * 1024, BATCH * 300) },
    lingerMs: 5,
    compression: { compression: COMPRESSION, level: LEVEL },
    pubackTimeoutMs: 10_000,
    connectTimeoutMs: 5000,
    keepaliveS: 30,
    // The reconnect figure depends on these: attempt n waits U[0, min(max, initial·2^n)).
    backoff: { initialMs: 100, maxMs: 1000, multiplier: 2 },
    nextBatchSeq: () => ++seq,
  }
  const uplink = new Uplink(store, options, logger)

  // Drain: from start() (TLS handshake included) to the last PUBACK acked in the store.
  const drainStart = process.hrtime.bigint()
  phasePeak = 0
  const cpuBefore = process.cpuUsage()
  const brokerCpuBefore = procCpuS(broker.pid())
  const profiler = PROFILE === undefined ? undefined : await startProfile()
  uplink.start()
  await waitFor('the drain', () => uplink.stats().eventsAcked >= N, 600_000)
  const drainS = seconds(drainStart)
  if (profiler !== undefined) await stopProfile(profiler, PROFILE as string)
  const drainRss = phasePeak
  const cpu = process.cpuUsage(cpuBefore)
  const gatewayCpu = (cpu.user + cpu.system) / 1e6 / drainS
  const brokerCpu = (procCpuS(broker.pid()) - brokerCpuBefore) / drainS
  const drainEps = N / drainS
  const afterDrain = uplink.stats()
  const wireBytes = proxy?.stats().bytesUp ?? kernelBytesSent(uplink)
  const bytesPerEventWire = wireBytes / N
  const payloadPerEvent = afterDrain.bytesSent / N
  rows.push([`drain: ${N.toLocaleString()} events published + acked`, `${drainS.toFixed(2)} s, ${Math.round(drainEps).toLocaleString()} events/s, RSS peak ${mb(drainRss)} MB`])
  rows.push([`TLS bytes sent per event, ${PROXY ? 'proxy' : 'kernel'} count (MQTT payload per event)`, `${bytesPerEventWire.toFixed(1)} (${payloadPerEvent.toFixed(1)})`])
  rows.push(['CPU during the drain: gateway process / mosquitto (cores)', `${gatewayCpu.toFixed(2)} / ${brokerCpu.toFixed(2)} (of ${availableParallelism()} cores)`])
  rows.push(['batches published / nacked / connects', `${afterDrain.published} / ${afterDrain.nacked} / ${afterDrain.connects}`])
  if (SUBSCRIBER) {
    await waitFor('the subscriber', () => received >= afterDrain.published, 30_000).catch(() => {})
    rows.push(['subscriber: event messages received', `${received} of ${afterDrain.published} published`])
  }

  // Reconnect: broker down, BACKLOG events buffered, broker up on the same port.
  await broker.stop()
  await waitFor('the uplink to notice', () => uplink.state() !== 'online', 10_000)
  await appendSensorEvents(store, events, BACKLOG)
  await sleep(DOWN_MS)
  const connectsBefore = uplink.stats().connects
  await broker.restart()
  const upAt = process.hrtime.bigint()
  let reconnectS = 0
  await waitFor('the backlog', () => {
    const s = uplink.stats()
    if (reconnectS === 0 && s.connects > connectsBefore) reconnectS = seconds(upAt)
    return s.eventsAcked >= N + BACKLOG
  }, 120_000)
  const backlogS = seconds(upAt)
  rows.push([`backlog ${BACKLOG.toLocaleString()} after broker restart (down ${DOWN_MS} ms after buffering)`,
    `${backlogS.toFixed(2)} s (online after ${reconnectS.toFixed(2)} s, then ${(BACKLOG / (backlogS - reconnectS)).toFixed(0)} events/s)`])

  await uplink.stop(2000)
  await sub?.endAsync(true)
  await store.close()
  await proxy?.close()
  await broker.stop()
  clearInterval(sampler)
  sample()
  rows.push(['RSS peak (of which anonymous)', `${mb(rssPeak)} MB (${mb(anonPeak)} MB)`])
  rows.push(['  at the peak: V8 heap reserved / used, external, anonymous', `${mb(atPeak.heapTotal)} / ${mb(atPeak.heapUsed)}, ${mb(atPeak.external)}, ${mb(atPeak.anon)} MB`])

  const width = Math.max(...rows.map(r => r[0].length))
  console.log(`edgefwd uplink benchmark — Mosquitto mTLS, MQTT 5, window ${WINDOW} (broker Receive Maximum ${INFLIGHT ?? '20'}), ` +
    `batch ${BATCH}, compression ${COMPRESSION} level ${LEVEL}, subscriber ${SUBSCRIBER ? 'yes' : 'no'}, Node ${process.version} ${process.execArgv.join(' ')}`)
  console.log('  data: 50 devices (random pick), per-device seqs, 8-number map (4 uniform random at sensor resolution, random co2, 3 slow), 2 tags')
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`)
  console.log(JSON.stringify({
    drain_eps: Math.round(drainEps),
    bytes_per_event_wire: Number(bytesPerEventWire.toFixed(1)),
    backlog_100k_after_reconnect_s: Number(backlogS.toFixed(2)),
    rss_mb_peak: Number(mb(rssPeak)),
    rss_anon_mb_peak: Number(mb(anonPeak)),
    rss_mb_peak_drain: Number(mb(drainRss)),
    cpu_cores_gateway: Number(gatewayCpu.toFixed(2)),
    cpu_cores_broker: Number(brokerCpu.toFixed(2)),
    payload_bytes_per_event: Number(payloadPerEvent.toFixed(1)),
    stored_bytes_per_event: Number(storedPerEvent.toFixed(1)),
    reconnect_s: Number(reconnectS.toFixed(2)),
    events: N,
    window: WINDOW,
    batch: BATCH,
    compression: COMPRESSION,
    subscriber: SUBSCRIBER
  }))
  rmSync(root, { recursive: true, force: true })
}

main().catch(err => { console.error(err); process.exitCode = 1 })
