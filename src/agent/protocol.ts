/**
 * The agent control channel between a running gateway (`edgefwd run`: control-server.ts) and
 * `edgefwd mcp` (src/mcp/control-client.ts): one JSON object per line over a unix socket.
 *
 *   request   {"id": 1, "op": "buffer", "args": {...}, "caller": "stdio pid 4242 user ops (claude-code 1.2)"}
 *   response  {"id": 1, "ok": true, "result": {...}}
 *           | {"id": 1, "ok": false, "error": {"code": "EDGEFWD_ERR_…", "message": "…"}}
 *
 * Why a unix socket and not the loopback metrics endpoint: the endpoint is readable by every
 * local user (that is right for Prometheus, and it may even be bound to a LAN address), while
 * this channel serves incident details, device-supplied text and, when configured, actions that
 * change the gateway. A socket file of mode 0660 owned by the edgefwd user puts it behind the
 * operating system's own access control (the agent's user must be in the edgefwd group), needs
 * no token on disk, and cannot be reached from the network by any misconfiguration.
 *
 * Both ends bound what they read: a line longer than MAX_LINE_BYTES ends the connection.
 */
import type { IncidentReport } from './incidents.js'
import type { BufferReport, HealthReportData } from './reports.js'
import type { SloReport } from './slo.js'
import type { ActionList, DryRun, Executed } from './remediation.js'

export const MAX_LINE_BYTES = 64 * 1024

/** What each operation takes and answers. */
export interface ControlOps {
  hello: { args: Record<string, never>, result: Hello }
  health: { args: Record<string, never>, result: HealthReportData }
  buffer: { args: Record<string, never>, result: BufferReport }
  incidents: { args: { limit?: number }, result: IncidentReport }
  slo: { args: Record<string, never>, result: SloReport }
  actions: { args: Record<string, never>, result: ActionList }
  dry_run: { args: { action: string, arguments?: Record<string, unknown> }, result: DryRun }
  execute: { args: { action: string, arguments?: Record<string, unknown>, token: string }, result: Executed }
  /** A call `edgefwd mcp` refused itself (unknown tool, bad arguments, malformed JSON-RPC): audited and counted here. */
  audit: { args: { tool: string, arguments?: unknown, outcome: 'invalid', detail: string }, result: Record<string, never> }
}

export type ControlOp = keyof ControlOps

export interface Hello {
  gatewayId: string
  version: string
  /** The remediation actions the gateway's configuration allows; empty = read-only. */
  remediation: string[]
}

export interface ControlRequest { id: number, op: string, args?: unknown, caller?: string }

export type ControlResponse =
  | { id: number, ok: true, result: unknown }
  | { id: number | null, ok: false, error: { code: string, message: string } }

/**
 * Splits a byte stream into lines, at most `max` bytes each (newline excluded). A longer line
 * calls onOverflow once and nothing more is read (the caller ends the connection).
 */
export class LineSplitter {
  private pending: Buffer[] = []
  private pendingBytes = 0
  private overflowed = false

  constructor (private readonly max: number, private readonly onLine: (line: string) => void, private readonly onOverflow: () => void) {}

  push (chunk: Buffer): void {
    let start = 0
    while (!this.overflowed) {
      const nl = chunk.indexOf(10, start)
      const end = nl < 0 ? chunk.length : nl
      if (this.pendingBytes + end - start > this.max) {
        this.overflowed = true
        this.pending = []
        this.onOverflow()
        return
      }
      if (nl < 0) {
        if (end > start) {
          this.pending.push(chunk.subarray(start))
          this.pendingBytes += end - start
        }
        return
      }
      const line = this.pending.length === 0 ? chunk.toString('utf8', start, nl) : Buffer.concat([...this.pending, chunk.subarray(start, nl)]).toString('utf8')
      this.pending = []
      this.pendingBytes = 0
      start = nl + 1
      if (line.trim() !== '') this.onLine(line)
    }
  }
}
