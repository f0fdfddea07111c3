/**
 * One simulation run, everything on loopback in one process tree:
 *
 *   devices (devices.ts) ──UDP/TCP frames──▶ forwarder process (forwarder-process.ts: the same
 *   config path and Forwarder as `edgefwd run`) ──MQTT over mTLS──▶ chaos proxy (chaos-proxy.ts,
 *   driven by the scenario's timeline) ──▶ embedded broker (aedes, client certificates required)
 *   ──▶ sink (SinkSubscriber + SequenceVerifier, as `edgefwd sink --verify`)
 *
 *   source devices (source-devices.ts): Tasmota-like plugs ──▶ local broker ◀── forwarder's
 *   ingest.mqtt; a Modbus TCP meter ◀── forwarder's ingest.modbus polls. Both on the gateway's
 *   side of the chaos proxy, as on a real gateway.
 *
 * Certificates come fresh from the PKI module into a temporary directory. The forwarder gets a
 * small store so eviction happens; MQTT 3.1.1, which is what aedes speaks (MQTT 5 is covered by
 * the Mosquitto tests). After the scenario's duration the devices stop, the link is restored,
 * and the run waits (bounded) until the devices' unacknowledged events are acknowledged, the
 * local broker has handed the forwarder every message, the store is empty and the sink has
 * everything; then accounting.ts sorts every event sent into delivered / evicted / dropped at
 * ingest / lost before the gateway / unexplained.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createCa, discardBatches, issueCertificate, parseBrokerUrl, PRIORITIES, SequenceVerifier, SinkSubscriber, type DecodedEnvelope, type PriorityName
} from '../src/index.js'
import { account, type DeviceDeliveries, type DeviceLedger } from './accounting.js'
import { startChaosProxy, type ChaosProxy } from './chaos-proxy.js'
import { startFleet, type Fleet } from './devices.js'
import { startEmbeddedBroker, type EmbeddedBroker } from './embedded-broker.js'
import { startForwarderChild, type ForwarderChild } from './forwarder-child.js'
import { freePort } from './free-port.js'
import type { ForwarderStatsMessage } from './forwarder-process.js'
import { seededRandom } from './random.js'
import type { LinkState, PhaseSpan, Sample, SimulationResult } from './report.js'
import { isSourceGroup, scaleScenario, type FramedDeviceGroup, type LinkPhase, type Scenario } from './scenario.js'
import { sourceRows, startSourceDevices, type SourceDevices } from './source-devices.js'

export const GATEWAY_ID = 'sim-gw'

/** The smallest store a scenario may have (scenario.ts checks the same). */
const MIN_STORE_BYTES = 64 * 1024

/**
 * The scenario stretched or shortened to `durationMs`: its timeline scales (scenario.ts), and so
 * does its store, so that a shortened outage still fills it and eviction still happens.
 */
export function fitScenario (s: Scenario, durationMs: number): Scenario {
  const factor = durationMs / s.durationMs
  return { ...scaleScenario(s, factor), storeCapacityBytes: Math.max(MIN_STORE_BYTES, Math.round(s.storeCapacityBytes * factor)) }
}
const SAMPLE_MS = 250
const TICK_MS = 50

export interface SimulationOptions {
  scenario: Scenario
  /** Overrides the scenario's seed. */
  seed?: number
  /** Called about twice a second with the current state (for a progress line). */
  onProgress?: (p: Progress) => void
  /** After sending stops: how long to wait for everything to be delivered. Default 120 s. */
  drainTimeoutMs?: number
  /** Keep the temporary directory (certificates, store, forwarder log) instead of removing it. */
  keepWorkDir?: boolean
  /** Serve the forwarder's metrics, /healthz and /readyz here (ADDRESS:PORT), as `edgefwd run` does. */
  metricsListen?: string
  /**
   * An agent attached over MCP (`simulate --mcp`): the forwarder's agent socket is told to
   * onSocket once it runs, its remediations are all allowed, and after the drain the forwarder
   * keeps running until `hold` resolves (the agent disconnected).
   */
  agent?: { onSocket: (socket: string) => void, onScenarioEnd: () => void, hold: Promise<void> }
}

export interface Progress {
  elapsedMs: number
  phase: 'sending' | 'draining'
  link: LinkState
  uplink: string
  sent: number
  stored: [number, number, number, number]
  storedBytes: number
  capacityBytes: number
  delivered: number
  evicted: number
}

interface ForwarderTotals {
  frames: Map<string, number>
  rejected: Map<string, Record<string, number>>
  /** Failed Modbus polls for `timeout` (edgefwd_ingest_source_failures_total{transport="modbus"}). */
  modbusTimeouts: number
}

/**
 * The source devices' own PRNG, derived from the seed: the framed devices draw theirs from the
 * seed itself, first, so adding source devices to a scenario leaves the framed devices' events as they were.
 */
function sourceSeed (seed: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ 0x736f7572) >>> 0
}

function linkAt (links: readonly LinkPhase[], t: number): { phase: LinkPhase | undefined, up: boolean } {
  const phase = links.find(l => t >= l.atMs && t < l.atMs + l.forMs)
  if (phase?.kind !== 'flapping') return { phase, up: phase === undefined }
  const cycle = (phase.upMs ?? 1000) + (phase.downMs ?? 1000)
  return { phase, up: (t - phase.atMs) % cycle < (phase.upMs ?? 1000) }
}

/** What the proxy must do for a link phase; applied only on changes. */
function applyLink (proxy: ChaosProxy, phase: LinkPhase | undefined, up: boolean): void {
  const kind = phase?.kind
  if (kind === 'outage' || (kind === 'flapping' && !up)) { proxy.throttle(undefined); proxy.delay(undefined); proxy.setMode('reset'); return }
  if (kind === 'blackhole') { proxy.setMode('blackhole'); return }
  proxy.setMode('pass')
  proxy.throttle(kind === 'throttle' ? phase?.bytesPerSecond : undefined)
  proxy.delay(kind === 'latency' ? phase?.latencyMs : undefined)
}

export async function runSimulation (options: SimulationOptions): Promise<SimulationResult> {
  const { scenario } = options
  const seed = options.seed ?? scenario.seed
  const startedAt = new Date()
  const work = await mkdtemp(join(tmpdir(), 'edgefwd-sim-'))
  const closers: Array<() => Promise<void>> = []
  try {
    // ── certificates, broker, proxy, sink ──────────────────────────────────────────────────
    const ca = await createCa({ commonName: 'edgefwd simulation CA', keyBits: 2048 })
    const server = await issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1', 'localhost'] })
    const gateway = await issueCertificate(ca, { kind: 'client', commonName: GATEWAY_ID })
    const sinkCert = await issueCertificate(ca, { kind: 'client', commonName: 'sim-sink' })
    await mkdir(join(work, 'certs'))
    await writeFile(join(work, 'certs', 'ca.crt'), ca.certPem)
    await writeFile(join(work, 'certs', 'gateway.crt'), gateway.certPem)
    await writeFile(join(work, 'certs', 'gateway.key'), gateway.keyPem, { mode: 0o600 })

    const broker: EmbeddedBroker = await startEmbeddedBroker({ tls: { ca: ca.certPem, cert: server.certPem, key: server.keyPem } })
    closers.unshift(async () => { await broker.close() })
    const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: broker.port } })
    closers.unshift(async () => { await proxy.close() })
    const sources: SourceDevices = await startSourceDevices({ groups: scenario.devices.filter(isSourceGroup), random: seededRandom(sourceSeed(seed)) })
    closers.unshift(async () => { await sources.close() })

    // The timeline's clock starts with the devices, once everything else is up.
    let t0 = Date.now()
    const elapsed = (): number => Date.now() - t0
    const deliveries = new Map<string, DeviceDeliveries>()
    const reported = new Map<string, Array<{ from: number, to: number, count: number, priority: PriorityName }>>()
    const seenRanges = new Set<string>()
    let deliveredCount = 0
    /** Events of source devices without a message or poll number the simulation gave them. */
    let unnumbered = 0
    class RecordingVerifier extends SequenceVerifier {
      override addEnvelope (decoded: DecodedEnvelope): void {
        super.addEnvelope(decoded)
        const now = Date.now()
        for (const e of decoded.events) {
          // A source device's event is known by the number in its value (its seq is the gateway's).
          let key = e.deviceSeq
          let sentAtMs = e.deviceTimeMs ?? now
          if (sources.isSource(e.deviceId)) {
            const numbered = sources.numberOf(e.deviceId, e.value)
            if (numbered === undefined) { unnumbered++; continue }
            key = numbered.number
            sentAtMs = numbered.sentAtMs
          }
          let d = deliveries.get(e.deviceId)
          if (d === undefined) { d = { latencyMs: new Map(), duplicates: new Map() }; deliveries.set(e.deviceId, d) }
          if (d.latencyMs.has(key)) {
            d.duplicates.set(key, (d.duplicates.get(key) ?? 0) + 1)
          } else {
            d.latencyMs.set(key, Math.max(0, now - sentAtMs))
            deliveredCount++
          }
        }
        for (const r of decoded.envelope.evictionReport?.ranges ?? []) {
          // A report can arrive twice (its batch delivered, the PUBACK lost, carried again):
          // counted once, or it would explain more than was dropped.
          const key = `${r.deviceId}|${r.priority}|${r.reason}|${r.firstSeq}|${r.lastSeq}|${r.count}`
          if (seenRanges.has(key)) continue
          seenRanges.add(key)
          let list = reported.get(r.deviceId)
          if (list === undefined) { list = []; reported.set(r.deviceId, list) }
          list.push({ from: r.firstSeq, to: r.lastSeq, count: r.count, priority: PRIORITIES[r.priority] as PriorityName })
        }
      }
    }
    const verifier = new RecordingVerifier({ expectedFirstSeq: 1 })
    const sink = await SinkSubscriber.open({
      address: parseBrokerUrl(broker.url),
      credentials: () => ({ ca: ca.certPem, cert: sinkCert.certPem, key: sinkCert.keyPem }),
      protocolVersion: 4,
      clientId: 'sim-sink',
      topic: `edgefwd/${GATEWAY_ID}/events`,
      destination: discardBatches,
      verifier,
      log: () => {},
      reconnectPeriodMs: 250,
    })
    closers.unshift(async () => { await sink.close() })

    // ── the forwarder ──────────────────────────────────────────────────────────────────────
    const tcpPort = await freePort()
    const udpPort = await freePort()
    const limited = scenario.devices.filter(g => g.rateLimitPerSecond !== undefined)
    const config = {
      gateway: { id: GATEWAY_ID },
      store: { path: join(work, 'store'), capacity: scenario.storeCapacityBytes, durability: 'sync' },
      log: { level: 'info' },
      ingest: {
        tcp: [{ address: '127.0.0.1', port: tcpPort }],
        udp: { address: '127.0.0.1', port: udpPort },
        devices: Object.fromEntries(limited.flatMap(g => g.ids.map(id => [id, { rateLimit: { eventsPerSecond: g.rateLimitPerSecond, burst: '1s' } }]))),
        ...sources.ingestConfig(),
      },
      tls: { ca: join(work, 'certs', 'ca.crt'), cert: join(work, 'certs', 'gateway.crt'), key: join(work, 'certs', 'gateway.key') },
      uplink: {
        url: proxy.url('mqtts'),
        mqttVersion: '3.1.1',
        pubackTimeout: scenario.uplink.pubackTimeoutMs ?? 3000,
        connectTimeout: 3000,
        keepalive: 5000,
        backoff: { initial: 200, max: 2000, refusedMin: 1000 },
        heartbeatInterval: 5000,
      },
      observe: { metrics: options.metricsListen === undefined ? { enabled: false } : { enabled: true, listen: options.metricsListen } },
      mcp: {
        socket: join(work, 'agent.sock'),
        ...(options.agent === undefined ? {} : { remediation: { allow: ['reload_tls', 'reconnect_uplink', 'compact_store'], minInterval: '10s' } }),
      },
    }
    const configFile = join(work, 'edgefwd.json')
    await writeFile(configFile, JSON.stringify(config, null, 2))
    const logFile = join(work, 'forwarder.log')
    const totals: ForwarderTotals = { frames: new Map(), rejected: new Map(), modbusTimeouts: 0 }
    /** Folds a finished forwarder process's counters into the totals (its counters start at zero). */
    const fold = (s: ForwarderStatsMessage | undefined): void => {
      for (const [id, c] of Object.entries(s?.ingest.devices ?? {})) {
        totals.frames.set(id, (totals.frames.get(id) ?? 0) + c.frames)
        const r = totals.rejected.get(id) ?? {}
        for (const [reason, n] of Object.entries(c.rejected)) r[reason] = (r[reason] ?? 0) + (n ?? 0)
        totals.rejected.set(id, r)
      }
      totals.modbusTimeouts += s?.ingest.transports.modbus?.failures.timeout ?? 0
    }
    let forwarder: ForwarderChild | undefined = await startForwarderChild({ configFile, logFile })
    closers.unshift(async () => { await forwarder?.stop() })
    options.agent?.onSocket(join(work, 'agent.sock'))
    await sources.forwarderReady(30_000)

    // ── devices ────────────────────────────────────────────────────────────────────────────
    const random = seededRandom(seed)
    t0 = Date.now()
    const framed = scenario.devices.filter((g): g is FramedDeviceGroup => !isSourceGroup(g))
    const fleet: Fleet = startFleet({
      devices: framed.flatMap(g => g.ids.map(id => ({
        id, transport: g.transport, acks: g.acks, ratePerSecond: g.ratePerSecond, priorities: g.priorities, streams: g.streams, payloadBytes: g.payloadBytes
      }))),
      tcp: { host: '127.0.0.1', port: tcpPort },
      udp: { host: '127.0.0.1', port: udpPort },
      random,
    })
    closers.unshift(async () => { await fleet.close() })
    sources.startSending()

    // ── the timeline ───────────────────────────────────────────────────────────────────────
    const samples: Sample[] = []
    const phases: PhaseSpan[] = scenario.links.map(l => ({ kind: l.kind, fromMs: l.atMs, toMs: l.atMs + l.forMs }))
    let brokerDown = false
    let forwarderDown = false
    let appliedKey = ''
    let lastStats: ForwarderStatsMessage | undefined
    const pending = new Set<Promise<void>>()
    const track = (p: Promise<void>): void => { pending.add(p); void p.finally(() => pending.delete(p)) }
    const fired = new Set<number>()
    let phase: Progress['phase'] = 'sending'

    const linkState = (t: number): LinkState => {
      if (forwarderDown) return 'forwarder-down'
      if (brokerDown) return 'broker-down'
      if (phase === 'draining') return 'connected'
      const { phase: p, up } = linkAt(scenario.links, t)
      if (p === undefined) return 'connected'
      if (p.kind === 'flapping') return up ? 'connected' : 'outage'
      return p.kind
    }
    const current = (): Progress => {
      const s = forwarder?.stats() ?? lastStats
      if (s !== undefined) lastStats = s
      const stored = PRIORITIES.map(p => s?.store.perPriority.find(x => x.priority === p)?.events ?? 0) as [number, number, number, number]
      const evicted = (s?.store.drops ?? []).filter(d => d.reason === 'evicted_for_space' || d.reason === 'expired_ttl').reduce((n, d) => n + d.count, 0)
      return {
        elapsedMs: elapsed(),
        phase,
        link: linkState(elapsed()),
        uplink: forwarderDown ? 'unknown' : (s?.uplink.state ?? 'unknown'),
        sent: fleet.stats().sent + sources.sentCount(),
        stored,
        storedBytes: s?.store.usedBytes ?? 0,
        capacityBytes: s?.store.capacityBytes ?? scenario.storeCapacityBytes,
        delivered: deliveredCount,
        evicted,
      }
    }
    const tick = (): void => {
      const t = elapsed()
      if (phase === 'sending') {
        const { phase: p, up } = linkAt(scenario.links, t)
        const key = `${p?.kind ?? 'connected'}:${p?.atMs ?? -1}:${String(up)}`
        if (key !== appliedKey) { appliedKey = key; applyLink(proxy, p, up) }
        for (const [i, action] of scenario.actions.entries()) {
          if (fired.has(i) || t < action.atMs) continue
          fired.add(i)
          phases.push({ kind: action.kind === 'broker-restart' ? 'broker-down' : 'forwarder-down', fromMs: t, toMs: t + action.downMs })
          if (action.kind === 'broker-restart') {
            brokerDown = true
            track((async () => {
              await broker.stop()
              await new Promise(resolve => setTimeout(resolve, action.downMs))
              await broker.start()
              brokerDown = false
            })())
          } else {
            forwarderDown = true
            track((async () => {
              const victim = forwarder
              fold(victim?.stats())
              forwarder = undefined
              sources.powerCut.before()
              await victim?.kill()
              await new Promise(resolve => setTimeout(resolve, action.downMs))
              await sources.powerCut.after()
              forwarder = await startForwarderChild({ configFile, logFile })
              forwarderDown = false
            })())
          }
        }
      }
    }
    const sampler = (): void => {
      const p = current()
      samples.push({ tMs: p.elapsedMs, link: p.link, uplink: p.uplink, stored: p.stored, storedBytes: p.storedBytes, capacityBytes: p.capacityBytes, sent: p.sent, delivered: p.delivered, evicted: p.evicted })
      options.onProgress?.(p)
    }
    const tickTimer = setInterval(tick, TICK_MS)
    const sampleTimer = setInterval(sampler, SAMPLE_MS)
    closers.unshift(async () => { clearInterval(tickTimer); clearInterval(sampleTimer) })
    tick()

    await new Promise(resolve => setTimeout(resolve, scenario.durationMs))

    // ── drain ──────────────────────────────────────────────────────────────────────────────
    phase = 'draining'
    fleet.stopSending()
    sources.stopSending()
    await Promise.all([...pending])
    applyLink(proxy, undefined, true)
    const drainUntil = Date.now() + (options.drainTimeoutMs ?? 120_000)
    await fleet.settle(Math.max(1000, drainUntil - Date.now()))
    const unacceptedMessages = await sources.settle(Math.max(1000, drainUntil - Date.now()))
    let stableSince = Date.now()
    let lastDelivered = -1
    for (;;) {
      const s = forwarder?.stats()
      // Nothing buffered, no eviction report waiting for a batch to carry it, nothing in flight,
      // and online (a report still pending goes out with the next lease, once connected).
      const empty = s !== undefined && s.store.events === 0 && s.store.pendingReports === 0 && s.store.pendingAppends === 0 &&
        s.uplink.inFlight === 0 && s.uplink.state === 'online' && sources.pendingForForwarder() === 0
      if (deliveredCount !== lastDelivered) { lastDelivered = deliveredCount; stableSince = Date.now() }
      // Empty, and the sink has heard nothing new for a second: everything is across.
      if (empty && Date.now() - stableSince >= 1000) break
      if (Date.now() > drainUntil) break
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    sampler()
    clearInterval(tickTimer)
    clearInterval(sampleTimer)
    const finalStats = forwarder?.stats()
    options.agent?.onScenarioEnd()
    await options.agent?.hold
    await forwarder?.stop()
    fold(finalStats)
    forwarder = undefined

    // ── accounting ─────────────────────────────────────────────────────────────────────────
    const groups = new Map(scenario.devices.flatMap(g => g.ids.map(id => [id, g])))
    const ledgers = new Map<string, DeviceLedger>()
    for (const [id, sent] of fleet.sent()) {
      ledgers.set(id, {
        transport: groups.get(id)?.transport ?? 'udp',
        sent: sent.map(e => ({ seq: e.seq, priority: e.priority as PriorityName, sentAtMs: e.sentAtMs })),
        deviceLost: fleet.lost().get(id) ?? new Set(),
        gatewayFrames: totals.frames.get(id) ?? 0,
        gatewayRejected: totals.rejected.get(id) ?? {},
      })
    }
    for (const [id, l] of sources.ledgers()) {
      ledgers.set(id, { transport: l.transport, sent: l.sent, deviceLost: l.inFlightAtCut, gatewayFrames: totals.frames.get(id) ?? 0, gatewayRejected: totals.rejected.get(id) ?? {} })
    }
    const result = account(ledgers, deliveries, reported, { modbusPollTimeouts: totals.modbusTimeouts })
    const bytesUp = proxy.stats().bytesUp
    const verdictReasons = [...result.verdict.reasons]
    if (Date.now() > drainUntil) verdictReasons.push('the run did not finish draining in time')
    if (unacceptedMessages > 0) verdictReasons.push(`the local broker did not acknowledge ${unacceptedMessages} messages of the Tasmota-like devices`)
    if (unnumbered > 0) verdictReasons.push(`${unnumbered} events of mqtt or modbus devices carried no message or poll number the simulation gave them`)
    const sourceSummary = sourceRows(scenario.devices, result.devices)
    return {
      scenario: { name: scenario.name, description: scenario.description, seed, durationMs: scenario.durationMs, source: scenario.source },
      startedAt: startedAt.toISOString(),
      wallMs: Date.now() - startedAt.getTime(),
      samples,
      phases: phases.sort((a, b) => a.fromMs - b.fromMs),
      priorities: result.rows,
      ...(sourceSummary.length === 0 ? {} : { sources: sourceSummary }),
      latencyMs: result.latencyMs,
      wire: { bytesUp, eventsDelivered: deliveredCount, bytesPerEvent: deliveredCount === 0 ? 0 : bytesUp / deliveredCount },
      verdict: { ok: verdictReasons.length === 0, reasons: verdictReasons },
    }
  } finally {
    for (const close of closers) await close().catch(() => {})
    if (options.keepWorkDir !== true) await rm(work, { recursive: true, force: true })
  }
}
