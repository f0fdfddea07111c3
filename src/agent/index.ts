/**
 * The gateway's side of the agent interface (`edgefwd mcp` is the other, src/mcp): it keeps the
 * history an agent asks about (incidents.ts, slo.ts, a minute of rates), answers on the control
 * socket (control-server.ts), runs the allowed remediations (remediation.ts) and writes the audit
 * log (audit.ts).
 *
 * Started by startGateway() next to the Supervisor, so it outlives forwarder restarts; it reads
 * the forwarder through AgentHost only. Its cost on an idle gateway: one timer every SAMPLE_MS
 * (a look at the forwarder's counters) and, once a minute, a metrics collect for the SLO sample;
 * nothing on the hot path. With `mcp.socket: off` none of it runs.
 */
import { mkdir, readdir, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import type { Config, RemediationAction } from '../config/index.js'
import { controlStateDir } from '../control/supervisor.js'
import { EdgefwdError } from '../errors.js'
import type { Forwarder, ForwarderStats } from '../forwarder.js'
import type { HealthReport } from '../observe/http-server.js'
import type { Logger } from '../observe/log.js'
import type { MetricsRegistry } from '../observe/metrics.js'
import { AuditLog, type AuditOutcome } from './audit.js'
import { startControlServer } from './control-server.js'
import { IncidentTracker, SAMPLE_MS, type IncidentInput } from './incidents.js'
import type { ControlOp, ControlRequest, Hello } from './protocol.js'
import { Remediation, type RemediationHost } from './remediation.js'
import { bufferReport, dropTotals, healthReport, RateHistory, type RateSample } from './reports.js'
import { SloWindows, type SloSample } from './slo.js'

export type { ControlOp, ControlRequest, ControlResponse, Hello } from './protocol.js'

const SLO_SAMPLE_MS = 60_000
const DEFAULT_INCIDENTS = 10

/** What the agent reads of the gateway. */
export interface AgentHost {
  registry: MetricsRegistry
  version: string
  /** The forwarder running now; undefined while a remote configuration restarts it. */
  forwarder (): Forwarder | undefined
  readiness (): HealthReport
}

export interface Agent {
  readonly socket: string
  close (): Promise<void>
}

/** Where the control socket is: mcp.socket, else agent.sock in the control state directory; undefined when off. */
export function agentSocketPath (config: Config): string | undefined {
  const socket = config.mcp.socket
  if (socket === 'off') return undefined
  return socket === undefined ? join(controlStateDir(config), 'agent.sock') : resolve(socket)
}

/** mcp.audit.file, else agent-audit.jsonl in the control state directory. */
export function auditFilePath (config: Config): string {
  return config.mcp.audit.file === undefined ? join(controlStateDir(config), 'agent-audit.jsonl') : resolve(config.mcp.audit.file)
}

/** @throws EdgefwdError EDGEFWD_ERR_AGENT_SOCKET; undefined when mcp.socket is off */
export async function startAgent (config: Config, host: AgentHost, logger: Logger): Promise<Agent | undefined> {
  const socket = agentSocketPath(config)
  if (socket === undefined) return undefined
  if (config.mcp.socket === undefined) {
    // The default directory is ours to make; a configured one must exist.
    await mkdir(controlStateDir(config), { recursive: true, mode: 0o750 }).catch((err: unknown) => {
      throw new EdgefwdError('EDGEFWD_ERR_AGENT_SOCKET', `cannot create ${controlStateDir(config)} for the agent socket: ${(err as Error).message}`, { cause: err })
    })
  }
  const service = new AgentService(config, host, logger)
  // The history starts in the background: nothing of it is on the way to READY=1.
  service.start()
  try {
    const server = await startControlServer(socket, async request => await service.handle(request), logger)
    return {
      socket,
      close: async () => {
        await server.close()
        await service.stop()
      },
    }
  } catch (err) {
    await service.stop()
    throw err
  }
}

class AgentService {
  private readonly incidents: IncidentTracker
  private readonly slo: SloWindows
  private readonly rates = new RateHistory()
  private readonly audit: AuditLog
  private readonly remediation: Remediation | undefined
  private dropBaseline = new Map<string, number>()
  private timer: NodeJS.Timeout | undefined
  private lastSloMs = 0
  private ticking: Promise<void> | undefined
  /** The saved incidents read, the first sample taken: what every request waits for. */
  private ready: Promise<void> = Promise.resolve()

  constructor (private readonly config: Config, private readonly host: AgentHost, private readonly logger: Logger) {
    this.incidents = new IncidentTracker(join(dirname(auditFilePath(config)), 'incidents.json'), logger)
    this.slo = new SloWindows({ delivery: config.mcp.objectives.delivery, lagP99Ms: config.mcp.objectives.lagP99 })
    this.audit = new AuditLog(auditFilePath(config), config.mcp.audit.maxBytes, host.registry, logger)
    const r = config.mcp.remediation
    if (r !== undefined) this.remediation = new Remediation({ allow: r.allow, minIntervalMs: r.minInterval, confirmWithinMs: r.confirmWithin }, this.remediationHost())
  }

  start (): void {
    this.ready = (async () => {
      await this.incidents.load(Date.now())
      await this.host.registry.collect()
      this.dropBaseline = dropTotals(this.host.registry)
      await this.tick()
    })().catch((err: unknown) => { this.logger.warn({ err }, 'agent: the first sample failed; the next ones will tell') })
    this.timer = setInterval(() => {
      this.ticking ??= this.ready.then(async () => { await this.tick() }).finally(() => { this.ticking = undefined })
    }, SAMPLE_MS).unref()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    await this.ready
    await this.ticking
    await this.incidents.flush()
    await this.audit.flush()
  }

  /**
   * Every SAMPLE_MS: the forwarder's counters, read directly (no metrics collect: that is once a
   * minute, for the SLO sample, and on requests).
   */
  private async tick (): Promise<void> {
    try {
      const registry = this.host.registry
      const now = Date.now()
      const stats = this.host.forwarder()?.stats()
      if (stats !== undefined) {
        this.rates.push(rateSample(stats, now))
        this.incidents.observe(incidentInput(stats, registry.get('edgefwd_config_updates_total', { result: 'rolled_back' }) ?? 0, now))
      }
      if (now - this.lastSloMs >= SLO_SAMPLE_MS) {
        this.lastSloMs = now
        await registry.collect()
        this.slo.sample(this.sloSample(now))
      }
    } catch (err) {
      this.logger.warn({ err }, 'agent: a sample of the gateway\'s figures failed')
    }
  }

  private sloSample (atMs: number): SloSample {
    const r = this.host.registry
    return {
      atMs,
      accepted: r.get('edgefwd_events_accepted_total') ?? 0,
      delivered: r.sum('edgefwd_events_acked_total'),
      lost: r.sum('edgefwd_events_dropped_total'),
      buffered: r.sum('edgefwd_store_events'),
      lag: r.histogram('edgefwd_delivery_lag_seconds')?.buckets ?? [{ le: Infinity, count: 0 }],
    }
  }

  private current (): Config {
    return this.host.forwarder()?.currentConfig ?? this.config
  }

  /** Serves one control request; audits and counts every tool call. */
  async handle (request: ControlRequest): Promise<unknown> {
    await this.ready
    const op = request.op as ControlOp
    const args = (request.args ?? {}) as Record<string, unknown>
    const caller = typeof request.caller === 'string' && request.caller !== '' ? request.caller : 'unnamed'
    if (op === 'hello') return this.hello()
    if (op === 'audit') {
      await this.audit.record({ tool: String(args.tool ?? 'unknown'), arguments: args.arguments, caller, outcome: 'invalid', detail: String(args.detail ?? '') })
      return {}
    }
    const tool = TOOL_OF[op]
    if (tool === undefined) throw new EdgefwdError('EDGEFWD_ERR_USAGE', `unknown control operation "${String(request.op).slice(0, 40)}"`)
    const started = performance.now()
    let outcome: AuditOutcome = 'ok'
    let detail: string | undefined
    try {
      const result = await this.serve(op, args)
      if (op === 'dry_run') outcome = 'dry_run'
      if (op === 'execute') {
        const executed = result as { ok: boolean, result: string }
        outcome = executed.ok ? 'ok' : 'error'
        detail = executed.result
      }
      return result
    } catch (err) {
      outcome = err instanceof EdgefwdError && err.code === 'EDGEFWD_ERR_REMEDIATION_REFUSED' ? 'refused' : 'error'
      detail = err instanceof Error ? err.message : String(err)
      throw err
    } finally {
      // The token is a credential: the audit log keeps its first characters only.
      const audited = typeof args.token === 'string' ? { ...args, token: `${args.token.slice(0, 8)}…` } : args
      await this.audit.record({ tool, arguments: audited, caller, outcome, ...(detail === undefined ? {} : { detail }), durationMs: performance.now() - started })
    }
  }

  private hello (): Hello {
    const config = this.current()
    return { gatewayId: config.gateway.id, version: this.host.version, remediation: [...(this.config.mcp.remediation?.allow ?? [])] }
  }

  private async serve (op: ControlOp, args: Record<string, unknown>): Promise<unknown> {
    const registry = this.host.registry
    switch (op) {
      case 'health': {
        await registry.collect()
        const f = this.host.forwarder()
        return healthReport(registry, { config: this.current(), version: this.host.version, readiness: this.host.readiness(), listening: f?.listening ?? [], openIncidents: this.openIncidents(), nowMs: Date.now() })
      }
      case 'buffer': {
        await registry.collect()
        const now = Date.now()
        const stats = this.host.forwarder()?.stats()
        const rates = stats === undefined ? { overS: 0, acceptedPerS: 0, deliveredPerS: 0, fillBytesPerS: 0 } : this.rates.rates(rateSample(stats, now))
        return bufferReport(registry, this.current(), rates, this.dropBaseline, now)
      }
      case 'incidents': {
        const limit = typeof args.limit === 'number' && Number.isInteger(args.limit) ? args.limit : DEFAULT_INCIDENTS
        return this.incidents.report(limit)
      }
      case 'slo': {
        await registry.collect()
        return this.slo.report(this.sloSample(Date.now()))
      }
      case 'actions': return this.remediations().list()
      case 'dry_run': return await this.remediations().dryRun(String(args.action ?? ''), objectArg(args.arguments))
      case 'execute': return await this.remediations().execute(String(args.action ?? ''), typeof args.token === 'string' ? args.token : undefined, objectArg(args.arguments))
      default: throw new EdgefwdError('EDGEFWD_ERR_USAGE', `unknown control operation "${String(op)}"`)
    }
  }

  private openIncidents (): ReturnType<IncidentTracker['report']>['incidents'] {
    return this.incidents.report(50).incidents.filter(i => i.endMs === undefined || (i.kind === 'config_rollback' && Date.now() - i.startMs < 86_400_000))
  }

  private remediations (): Remediation {
    if (this.remediation === undefined) {
      throw new EdgefwdError('EDGEFWD_ERR_REMEDIATION_REFUSED', 'this gateway is read-only for agents: its configuration has no mcp.remediation section')
    }
    return this.remediation
  }

  private remediationHost (): RemediationHost {
    const forwarder = (): Forwarder => {
      const f = this.host.forwarder()
      if (f === undefined) throw new EdgefwdError('EDGEFWD_ERR_REMEDIATION_REFUSED', 'no forwarder is running right now (a remote configuration restart is under way): try again in a few seconds')
      return f
    }
    return {
      preview: async (action: RemediationAction) => {
        const f = forwarder()
        const config = f.currentConfig
        switch (action) {
          case 'reload_tls': return `would read ${config.tls.ca}, ${config.tls.cert} and ${config.tls.key} again; a valid new set is used from the next connection, a bad one is refused and the current one kept`
          case 'reconnect_uplink': {
            const u = f.stats().uplink
            return u.state === 'online'
              ? `would drop the connection to the broker (${u.inFlight} batches in flight go back to the store and are sent again) and connect again at once`
              : u.state === 'backoff' ? `would end the backoff wait (${Math.round(u.backoffMs / 1000)} s) and connect now` : `nothing: the uplink is ${u.state}`
          }
          case 'compact_store': return `would compact the store at ${config.store.path} (${await directoryBytes(config.store.path)} bytes on disk now); store writes wait while it runs`
        }
      },
      run: async (action: RemediationAction) => {
        const f = forwarder()
        this.logger.info({ action }, `agent remediation: ${action}`)
        switch (action) {
          case 'reload_tls': {
            const r = await f.reloadTlsNow('agent remediation')
            if (r.outcome === 'changed') return { ok: true, detail: `TLS material reloaded: ${r.material.info.subject}, serial ${r.material.info.serial}, valid until ${r.material.info.notAfter.toISOString()}; the next connection uses it` }
            if (r.outcome === 'unchanged') return { ok: true, detail: `TLS files read again, unchanged (already in use): ${r.material.info.subject}, serial ${r.material.info.serial}, valid until ${r.material.info.notAfter.toISOString()}` }
            if (r.outcome === 'rejected') return { ok: false, detail: `the TLS files were refused, the set in use stays: ${r.error.message}` }
            return { ok: false, detail: 'the forwarder is stopping' }
          }
          case 'reconnect_uplink': return { ok: true, detail: f.reconnectUplink() }
          case 'compact_store': {
            const before = await directoryBytes(f.currentConfig.store.path)
            const started = performance.now()
            await f.compactStore()
            const after = await directoryBytes(f.currentConfig.store.path)
            return { ok: true, detail: `store compacted in ${Math.round(performance.now() - started)} ms: ${before} → ${after} bytes on disk` }
          }
        }
      },
    }
  }
}

const TOOL_OF: Partial<Record<ControlOp, string>> = {
  health: 'get_gateway_health',
  buffer: 'get_buffer_report',
  incidents: 'get_incident_context',
  slo: 'get_slo_report',
  actions: 'list_remediation_actions',
  dry_run: 'execute_remediation',
  execute: 'execute_remediation',
}

function objectArg (v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : {}
}

function rateSample (stats: ForwarderStats, atMs: number): RateSample {
  return { atMs, used: stats.store.usedBytes, accepted: stats.ingest.events, delivered: stats.uplink.eventsAcked }
}

/** The counters incidents are read from, out of the forwarder's stats. */
export function incidentInput (stats: ForwarderStats, rollbacks: number, atMs: number): IncidentInput {
  const { store, uplink, ingest } = stats
  const dropped: Record<string, number> = {}
  for (const d of store.drops) dropped[d.reason] = (dropped[d.reason] ?? 0) + d.count
  const deviceRejections: Record<string, number> = {}
  for (const [id, d] of Object.entries(ingest.devices)) {
    let n = 0
    for (const k in d.rejected) n += d.rejected[k as keyof typeof d.rejected] ?? 0
    if (n > 0) deviceRejections[id] = n
  }
  const sourceFailures: Record<string, number> = {}
  for (const [transport, c] of Object.entries(ingest.transports)) {
    for (const [reason, n] of Object.entries(c.failures)) if (n !== undefined && n > 0) sourceFailures[`${transport}:${reason}`] = n
  }
  return {
    atMs,
    online: uplink.state === 'online',
    stopping: uplink.state === 'closing' || uplink.state === 'closed',
    offlineSinceMs: uplink.offlineSinceMs,
    lastError: uplink.lastError,
    lastOutage: uplink.lastOutage,
    connectFailures: uplink.connectFailures,
    deadLinks: uplink.deadLinks,
    resent: uplink.eventsResent,
    accepted: ingest.events,
    dropped,
    diskDegraded: store.mode === 'memory',
    repairedAtOpen: store.repairedAtOpen,
    rejected: ingest.rejected,
    deviceRejections,
    sourceFailures,
    rollbacks,
  }
}

/** Bytes of the files in a directory (the store's LevelDB files; not recursive). */
async function directoryBytes (dir: string): Promise<number> {
  let total = 0
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    total += await stat(join(dir, name)).then(s => (s.isFile() ? s.size : 0), () => 0)
  }
  return total
}
