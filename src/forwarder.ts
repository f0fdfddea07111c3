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
 */
import { dirname, join, resolve } from 'node:path'
import type { Config } from './config/index.js'
import { createTransports, transportContext, within, type Transport } from './ingest/transports/index.js'
import { ingestOptions } from './ingest/options.js'
import { IngestPipeline } from './ingest/pipeline.js'
import { childLogger, type Logger } from './observe/log.js'
import { encodeHeartbeat } from './proto/codec.js'
import { TlsMaterialSource, tlsSourceOptions } from './pki/reloader.js'
import { openLevelStore, storeOptions, type EventStore } from './store/index.js'
import { BatchSequence } from './uplink/batch-seq.js'
import { gatewayTopics, uplinkOptions } from './uplink/options.js'
import { Uplink } from './uplink/session.js'
import { PRIORITIES, type Priority } from './types.js'

export interface ForwarderDeps {
  logger: Logger
  env: Readonly<Record<string, string | undefined>>
  version: string
}

export class Forwarder {
  private heartbeat: NodeJS.Timeout | undefined
  private stopping: Promise<void> | undefined
  private readonly started = Date.now()

  private constructor (
    private readonly config: Config,
    private readonly deps: ForwarderDeps,
    readonly store: EventStore,
    readonly tls: TlsMaterialSource,
    readonly uplink: Uplink,
    readonly pipeline: IngestPipeline,
    private readonly transports: Transport[],
    readonly listening: string[]
  ) {}

  static async start (config: Config, deps: ForwarderDeps): Promise<Forwarder> {
    const { logger } = deps
    const store = await openLevelStore(config.store.path, storeOptions(config.store), childLogger(logger, 'store'))
    const closing: Array<() => Promise<void>> = [async () => { await store.close() }]
    try {
      const tls = await TlsMaterialSource.open(tlsSourceOptions(config.tls), { logger: childLogger(logger, 'tls'), env: deps.env })
      closing.unshift(async () => { await tls.close() })
      const batchSeq = BatchSequence.open(config.uplink.batchSeqFile ?? join(dirname(resolve(config.store.path)), 'batch-seq.json'))
      const options = uplinkOptions(config, { credentials: () => tls.current(), nextBatchSeq: () => batchSeq.next() })
      if (options.batch.maxBytes < config.uplink.batch.maxBytes) {
        logger.info({ maxBytes: options.batch.maxBytes, configured: config.uplink.batch.maxBytes, window: config.uplink.window, capacity: config.store.capacity },
          `uplink.batch.maxBytes lowered to ${options.batch.maxBytes}: ${config.uplink.window} batches in flight may hold at most half of store.capacity (events in flight cannot be evicted)`)
      }
      const uplink = new Uplink(store, options, childLogger(logger, 'uplink'))
      uplink.start()
      closing.unshift(async () => { await uplink.stop(0) })
      const ingestLogger = childLogger(logger, 'ingest')
      const pipeline = new IngestPipeline(store, ingestOptions(config.ingest), ingestLogger)
      const transports = createTransports(config.ingest, transportContext(config.ingest, { pipeline, logger: ingestLogger }))
      const listening: string[] = []
      for (const transport of transports) {
        listening.push(`${transport.name} ${(await transport.start()).address}`)
        closing.unshift(async () => { await within(transport.stop(), 10_000) })
      }
      const forwarder = new Forwarder(config, deps, store, tls, uplink, pipeline, transports, listening)
      forwarder.heartbeat = setInterval(() => { forwarder.sendHeartbeat() }, config.uplink.heartbeatInterval).unref()
      logger.info({ listening, broker: config.uplink.url, gateway: config.gateway.id, store: config.store.path },
        `edgefwd ${deps.version} running: listening on ${listening.length === 0 ? 'nothing (no ingest listener configured)' : listening.join(', ')}; delivering to ${config.uplink.url ?? '?'}`)
      return forwarder
    } catch (err) {
      for (const close of closing) await close().catch(() => {})
      throw err
    }
  }

  /** Re-reads the TLS files (SIGHUP); a bad set is logged and the current one kept. */
  reloadTls (): void { void this.tls.reload('SIGHUP') }

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
    await this.store.close()
    logger.info({ delivered: this.uplink.stats().eventsAcked }, 'edgefwd stopped')
  }

  private sendHeartbeat (): void {
    const s = this.store.stats()
    const u = this.uplink.stats()
    const i = this.pipeline.counters()
    const usage = process.resourceUsage()
    // The store's cumulative totals carry no times (those ride on eviction reports): 0 = not given.
    const drops = s.drops.map(d => ({ priority: PRIORITIES.indexOf(d.priority) as Priority, reason: d.reason, count: d.count, bytes: d.bytes, firstGatewayTimeMs: 0, lastGatewayTimeMs: 0 }))
    const bytes = encodeHeartbeat({
      gatewayId: this.config.gateway.id,
      version: this.deps.version,
      uptimeS: Math.floor((Date.now() - this.started) / 1000),
      timeMs: Date.now(),
      bufferedEvents: s.events,
      bufferedBytes: s.usedBytes,
      capacityBytes: s.capacityBytes,
      oldestBufferedAgeMs: 0, // not tracked by the store yet: 0 means unknown
      eventsReceived: i.events,
      eventsDelivered: u.eventsAcked,
      eventsEvicted: s.drops.filter(d => d.reason === 'evicted_for_space' || d.reason === 'expired_ttl').reduce((n, d) => n + d.count, 0),
      eventsDropped: s.drops.reduce((n, d) => n + d.count, 0),
      framesRejected: Object.values(i.rejected).reduce((n, c) => n + c, 0),
      rssBytes: process.memoryUsage.rss(),
      cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6,
      certDaysLeft: this.tls.daysLeft(),
      linkState: u.state,
      diskDegraded: s.mode === 'memory',
      drops
    })
    this.uplink.publishAside(gatewayTopics(this.config).health, bytes, { qos: 0 })
  }
}
