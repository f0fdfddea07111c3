/**
 * The forwarder: ingest → store → uplink, wired from one configuration, with its lifecycle.
 *
 * start: open the store (nothing is accepted before it is), load and check the TLS material (a
 * problem stops the start with its EDGEFWD_ERR_TLS_* code), start the uplink (it connects in the
 * background; an unreachable broker is an outage, not a failure to start), then the ingest
 * listeners; log one line saying what it listens on and where it delivers.
 *
 * stop (SIGTERM/SIGINT): stop the listeners first (devices get no ack for what was not stored,
 * and resend it), give batches in flight `uplink.stopTimeout` for their PUBACKs and return the
 * rest to the store, close the store. stopNow (a second signal): the same without waiting.
 * Either way nothing acknowledged to a device is lost: it is in the store, durably.
 *
 * reconfigure: the settings a remote configuration update may change at run time (ingest rules,
 * rate limits and device policies, priority TTLs, batch/linger/rate cap/budget, heartbeat
 * interval, log level) are applied in place; src/control decides what needs a restart instead.
 *
 * Metrics: the forwarder's counters are attached to a ForwarderMetrics (shared across forwarders
 * of one process, so counters continue when a restart replaces this one); the heartbeat is read
 * from the same registry.
 */
import { dirname, join, resolve } from 'node:path'
import type { Config } from './config/index.js'
import { memoryBudget } from './config/memory-budget.js'
import { createTransports, transportContext, within, type Transport, type TransportIo } from './ingest/transports/index.js'
import { ingestOptions } from './ingest/options.js'
import type { IngestCounterSnapshot } from './ingest/counters.js'
import { IngestPipeline } from './ingest/pipeline.js'
import { ForwarderMetrics, type MetricSources } from './observe/forwarder-metrics.js'
import { HeartbeatBuilder, heartbeatJson } from './observe/heartbeat.js'
import type { HealthReport } from './observe/http-server.js'
import { childLogger, setLogLevel, type Logger } from './observe/log.js'
import { MetricsRegistry } from './observe/metrics.js'
import { encodeHeartbeat } from './proto/codec.js'
import { TlsMaterialSource, tlsSourceOptions, type ReloadResult } from './pki/reloader.js'
import { levelMemory, openLevelStore, storeOptions, type EventStore, type StoreStats } from './store/index.js'
import { BatchSequence } from './uplink/batch-seq.js'
import { gatewayTopics, liveUplinkSettings, uplinkOptions } from './uplink/options.js'
import { Uplink, type UplinkStats } from './uplink/session.js'
import { PRIORITIES, type Priority } from './types.js'

export interface ForwarderDeps {
  logger: Logger
  env: Readonly<Record<string, string | undefined>>
  version: string
  /** Where the counters go; the forwarder makes its own when absent (its heartbeat needs one). */
  metrics?: ForwarderMetrics
  /** Standard input (and where its acks go) for ingest.stdin; required when that is on. */
  io?: TransportIo
}


/** What Forwarder.stats() reads: each part's own figures. */
export interface ForwarderStats { store: StoreStats, uplink: UplinkStats, ingest: IngestCounterSnapshot }

export class Forwarder {
  private heartbeat: NodeJS.Timeout | undefined
  private stopping: Promise<void> | undefined
  private readonly started = Date.now()
  private heartbeats: HeartbeatBuilder | undefined
  private sources: MetricSources | undefined

  private constructor (
    private config: Config,
    private readonly deps: ForwarderDeps & { metrics: ForwarderMetrics },
    private readonly ownMetrics: boolean,
    private readonly store: EventStore,
    private readonly tls: TlsMaterialSource,
    private readonly uplink: Uplink,
    private readonly pipeline: IngestPipeline,
    private readonly transports: Transport[],
    readonly listening: string[]
  ) {}

  static async start (config: Config, givenDeps: ForwarderDeps): Promise<Forwarder> {
    const { logger } = givenDeps
    const ownMetrics = givenDeps.metrics === undefined
    const metrics = givenDeps.metrics ?? new ForwarderMetrics(new MetricsRegistry(undefined, { logger: childLogger(logger, 'metrics') }), givenDeps.version)
    const deps = { ...givenDeps, metrics }
    const budget = memoryBudget(config.process.memory)
    let store: EventStore
    try {
      store = await openLevelStore(config.store.path, storeOptions(config.store, budget), childLogger(logger, 'store'), levelMemory(budget))
    } catch (err) {
      // Ours: its event-loop monitor must not outlive a failed start.
      if (ownMetrics) metrics.close()
      throw err
    }
    const closing: Array<() => Promise<void>> = [async () => { await store.close() }]
    if (ownMetrics) closing.push(async () => { deps.metrics.close() })
    try {
      const tls = await TlsMaterialSource.open(tlsSourceOptions(config.tls), { logger: childLogger(logger, 'tls'), env: deps.env })
      closing.unshift(async () => { await tls.close() })
      const batchSeq = BatchSequence.open(config.uplink.batchSeqFile ?? join(dirname(resolve(config.store.path)), 'batch-seq.json'))
      const options = { ...uplinkOptions(config, { credentials: () => tls.current(), nextBatchSeq: () => batchSeq.next() }), observer: deps.metrics.uplinkObserver }
      if (options.batch.maxBytes < config.uplink.batch.maxBytes) {
        logger.info({ maxBytes: options.batch.maxBytes, configured: config.uplink.batch.maxBytes, window: config.uplink.window, capacity: config.store.capacity },
          `uplink.batch.maxBytes lowered to ${options.batch.maxBytes}: ${config.uplink.window} batches in flight may hold at most half of store.capacity (events in flight cannot be evicted)` +
          (budget === undefined ? '' : ` and at most ${budget.uplinkInFlightBytes} bytes of the memory budget`))
      }
      const uplink = new Uplink(store, options, childLogger(logger, 'uplink'))
      uplink.start()
      closing.unshift(async () => { await uplink.stop(0) })
      const ingestLogger = childLogger(logger, 'ingest')
      const pipeline = new IngestPipeline(store, ingestOptions(config.ingest), ingestLogger)
      const transports = createTransports(config.ingest, transportContext(config.ingest, { pipeline, logger: ingestLogger }, budget), deps.io,
        { gatewayId: config.gateway.id, env: deps.env })
      const listening: string[] = []
      for (const transport of transports) {
        listening.push(`${transport.name} ${(await transport.start()).address}`)
        closing.unshift(async () => { await within(transport.stop(), 10_000) })
      }
      const forwarder = new Forwarder(config, deps, ownMetrics, store, tls, uplink, pipeline, transports, listening)
      await forwarder.startMetrics()
      logger.info({ listening, broker: config.uplink.url, gateway: config.gateway.id, store: config.store.path },
        `edgefwd ${deps.version} running: listening on ${listening.length === 0 ? 'nothing (no ingest listener configured)' : listening.join(', ')}; delivering to ${config.uplink.url?.join(', ') ?? '?'}`)
      return forwarder
    } catch (err) {
      for (const close of closing) await close().catch(() => {})
      throw err
    }
  }

  private async startMetrics (): Promise<void> {
    const { store, uplink, pipeline, tls } = this
    this.sources = {
      ingest: () => pipeline.counters(),
      store: () => store.stats(),
      oldestEventTimeMs: async () => await store.oldestEventTimeMs(),
      uplink: () => uplink.stats(),
      certExpiresAtMs: () => tls.current().info.notAfter.getTime()
    }
    this.deps.metrics.attach(this.sources)
    this.heartbeats = new HeartbeatBuilder(this.deps.metrics.registry)
    await this.heartbeats.start()
    this.scheduleHeartbeat()
  }

  private scheduleHeartbeat (): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat)
    this.heartbeat = setInterval(() => {
      this.sendHeartbeat().catch((err: unknown) => { this.deps.logger.warn({ err }, 'heartbeat not sent') })
    }, this.config.uplink.heartbeatInterval).unref()
  }

  /** The configuration in force (the last reconfigure's). */
  get currentConfig (): Config { return this.config }

  /**
   * Applies the settings that can change at run time (src/control/update.ts LIVE_KEYS) from a new
   * configuration; the caller has checked that nothing else differs.
   */
  reconfigure (next: Config): void {
    const before = this.config
    this.config = next
    this.pipeline.reconfigure(ingestOptions(next.ingest))
    this.store.setTtl(storeOptions(next.store).ttlMs)
    this.uplink.reconfigure(liveUplinkSettings(next))
    if (next.uplink.heartbeatInterval !== before.uplink.heartbeatInterval) this.scheduleHeartbeat()
    if (next.log.level !== before.log.level) setLogLevel(this.deps.logger, next.log.level)
  }

  /** /healthz: the process runs and the store is open. */
  health (): HealthReport {
    const state = this.store.stats().state
    return { ok: state === 'open', checks: { store: { ok: state === 'open', detail: state } } }
  }

  /**
   * /readyz: the store takes events durably (open, on disk: not its in-memory fallback) and the
   * uplink is online or has been offline for less than `graceMs` (an outage within the reconnect
   * backoff is what the store is for, not a fault).
   */
  readiness (graceMs: number, now = Date.now()): HealthReport {
    const s = this.store.stats()
    const u = this.uplink.stats()
    const storeOk = s.state === 'open' && s.mode === 'disk'
    const offlineMs = u.offlineSinceMs === undefined ? 0 : now - u.offlineSinceMs
    const uplinkOk = u.state === 'online' || offlineMs <= graceMs
    return {
      ok: storeOk && uplinkOk,
      checks: {
        store: { ok: storeOk, detail: s.state !== 'open' ? s.state : s.mode === 'memory' ? 'on its in-memory fallback (disk full or failing)' : 'open on disk' },
        uplink: { ok: uplinkOk, detail: u.state === 'online' ? 'online' : `${u.state} for ${Math.round(offlineMs / 1000)} s${u.lastError === undefined ? '' : ` (${u.lastError})`}, grace ${Math.round(graceMs / 1000)} s` }
      }
    }
  }

  /** Re-reads the TLS files (SIGHUP); a bad set is logged and the current one kept. */
  reloadTls (): void { void this.reloadTlsNow('SIGHUP') }

  /** Re-reads the TLS files now and says what came of it (a remediation; SIGHUP does the same without the answer). */
  async reloadTlsNow (reason: string): Promise<ReloadResult> { return await this.tls.reload(reason) }

  /** Drops the uplink's connection, or ends its backoff wait, and connects again at once (Uplink.reconnectNow). */
  reconnectUplink (): string { return this.uplink.reconnectNow() }

  /** Reclaims the disk held by deleted events now (LevelDB compactRange). */
  async compactStore (): Promise<void> { await this.store.compact() }

  /** The parts' counters and states, read together (for status lines and tests; the metrics read them too). */
  stats (): ForwarderStats {
    return { store: this.store.stats(), uplink: this.uplink.stats(), ingest: this.pipeline.counters() }
  }

  /** Subscribes, on the uplink's connection and every reconnection, to `topics` (remote configuration). */
  subscribe (topics: string[], onMessage: (topic: string, payload: Buffer) => void): void {
    this.uplink.subscribe(topics, onMessage)
  }

  /** Publishes with QoS 1 on the uplink's connection; true on its PUBACK (a configuration ack). */
  async publishConfirmed (topic: string, payload: Uint8Array | string, options: { retain?: boolean, timeoutMs?: number } = {}): Promise<boolean> {
    return await this.uplink.publishConfirmed(topic, payload, options)
  }

  /** Graceful stop; calling it again returns the same promise. */
  async stop (): Promise<void> {
    this.stopping ??= this.shutdown(this.config.uplink.stopTimeout)
    await this.stopping
  }

  /**
   * A second signal: stop without waiting for PUBACKs (unacknowledged batches stay in the store).
   * Cuts short a graceful stop in progress rather than running a second one beside it.
   */
  async stopNow (): Promise<void> {
    await this.uplink.stop(0)
    this.stopping ??= this.shutdown(0)
    await this.stopping
  }

  private async shutdown (waitMs: number): Promise<void> {
    const { logger } = this.deps
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat)
    logger.info({ waitMs }, 'edgefwd stopping: listeners closed first, then batches in flight get their PUBACKs, then the store closes')
    for (const t of this.transports) await within(t.stop(), 10_000).catch((err: unknown) => { logger.warn({ err, transport: t.name }, 'listener did not stop cleanly') })
    await this.uplink.stop(waitMs)
    await this.tls.close()
    // A last collect while the parts still answer, so the counters keep what this forwarder did.
    await this.deps.metrics.registry.collect().catch(() => {})
    if (this.sources !== undefined) this.deps.metrics.detach(this.sources)
    await this.store.close()
    if (this.ownMetrics) this.deps.metrics.close()
    logger.info({ delivered: this.uplink.stats().eventsAcked }, 'edgefwd stopped')
  }

  private async sendHeartbeat (): Promise<void> {
    const builder = this.heartbeats
    if (builder === undefined) return
    const s = this.store.stats()
    // The store's cumulative totals carry no times (those ride on eviction reports): 0 = not given.
    const drops = s.drops.map(d => ({ priority: PRIORITIES.indexOf(d.priority) as Priority, reason: d.reason, count: d.count, bytes: d.bytes, firstGatewayTimeMs: 0, lastGatewayTimeMs: 0 }))
    const heartbeat = await builder.build({ gatewayId: this.config.gateway.id, version: this.deps.version, startedMs: this.started, drops })
    const payload = this.config.uplink.heartbeatFormat === 'json' ? heartbeatJson(heartbeat) : encodeHeartbeat(heartbeat)
    // Retained, so a fleet view sees each gateway's last heartbeat at once; QoS 1 so it is not
    // lost to a congested link the way a QoS 0 message may be.
    if (this.uplink.publishAside(gatewayTopics(this.config).health, payload, { qos: 1, retain: true })) this.deps.metrics.registry.inc('edgefwd_heartbeats_sent_total')
  }
}
