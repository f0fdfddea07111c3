/**
 * The agent audit log: one JSON line per call an agent made (tool, arguments, caller, outcome),
 * appended to mcp.audit.file (mode 0640) by the gateway, in the order served, and counted in
 * edgefwd_mcp_calls_total{tool, outcome}. Kept by the gateway rather than by `edgefwd mcp`, so
 * every MCP server that talks to it (several agents, stdio and HTTP) lands in one file the
 * agents' users cannot write.
 *
 * Bounded: arguments are cut to MAX_ARGS_CHARS of JSON and details to MAX_DETAIL_CHARS; when the
 * file passes mcp.audit.maxBytes it is renamed to FILE.1 (the previous .1 is replaced) and a new
 * one begun. A write that fails (disk full) is logged and counted
 * (edgefwd_mcp_audit_write_failures_total); the call itself is not refused for it.
 */
import { appendFile, rename, stat } from 'node:fs/promises'
export type { AuditOutcome }
import type { Logger } from '../observe/log.js'
import type { MetricsRegistry } from '../observe/metrics.js'

import { AUDIT_TOOLS, type AuditOutcome } from '../observe/catalog.js'

const MAX_ARGS_CHARS = 1024
const MAX_DETAIL_CHARS = 400
const MAX_CALLER_CHARS = 200

export interface AuditRecord {
  tool: string
  arguments: unknown
  caller: string
  outcome: AuditOutcome
  detail?: string
  durationMs?: number
}

export class AuditLog {
  private queue: Promise<void> = Promise.resolve()
  private size: number | undefined

  constructor (private readonly file: string, private readonly maxBytes: number, private readonly registry: MetricsRegistry, private readonly logger: Logger, private readonly now: () => number = Date.now) {
    registry.inc('edgefwd_mcp_audit_write_failures_total', undefined, 0)
  }

  /** Counts the call now and appends its line (in call order); resolves once written or given up. */
  async record (r: AuditRecord): Promise<void> {
    const tool = (AUDIT_TOOLS as readonly string[]).includes(r.tool) ? r.tool : 'unknown'
    this.registry.inc('edgefwd_mcp_calls_total', { tool, outcome: r.outcome })
    const line = `${JSON.stringify({
      time: new Date(this.now()).toISOString(),
      caller: r.caller.slice(0, MAX_CALLER_CHARS),
      tool: r.tool.slice(0, 64),
      arguments: clip(r.arguments),
      outcome: r.outcome,
      ...(r.detail === undefined ? {} : { detail: r.detail.slice(0, MAX_DETAIL_CHARS) }),
      ...(r.durationMs === undefined ? {} : { durationMs: Math.round(r.durationMs) }),
    })}\n`
    const write = this.queue.then(async () => { await this.append(line) })
    this.queue = write
    await write
  }

  /** Waits for the lines queued so far. */
  async flush (): Promise<void> { await this.queue }

  private async append (line: string): Promise<void> {
    try {
      this.size ??= await stat(this.file).then(s => s.size, () => 0)
      if (this.size + line.length > this.maxBytes && this.size > 0) {
        await rename(this.file, `${this.file}.1`)
        this.size = 0
      }
      await appendFile(this.file, line, { mode: 0o640 })
      this.size += Buffer.byteLength(line)
    } catch (err) {
      this.size = undefined
      this.registry.inc('edgefwd_mcp_audit_write_failures_total')
      this.logger.error({ err, file: this.file, line: line.slice(0, 300) }, 'agent audit log: a line could not be written')
    }
  }
}

/** Arguments as JSON of at most MAX_ARGS_CHARS; longer ones become a marked, cut string. */
function clip (args: unknown): unknown {
  let text: string | undefined
  try {
    text = JSON.stringify(args)
  } catch {
    return '(not serialisable)'
  }
  if (text === undefined) return null
  return text.length <= MAX_ARGS_CHARS ? args : `(cut, ${text.length} chars) ${text.slice(0, MAX_ARGS_CHARS)}`
}
