/**
 * Sees the tool calls the SDK answers without reaching a handler (an unknown tool name,
 * arguments that fail the tool's schema) so they are audited and counted like every other call.
 *
 * Hooked onto a transport after McpServer.connect(): incoming `tools/call` requests are noted by
 * id; when the answer to one goes out and no handler took that id (tools.ts tells us through
 * `handled`), `onRefused` gets the tool name, the arguments and what the SDK answered.
 * At most MAX_PENDING calls are tracked at once (the oldest are forgotten beyond that).
 */
import type { Transport } from '@modelcontextprotocol/server'

const MAX_PENDING = 256

interface Pending { name: string, args: unknown }

export interface RefusedCall { tool: string, arguments: unknown, detail: string }

export class RefusedCalls {
  private readonly pending = new Map<string | number, Pending>()
  private readonly taken = new Set<string | number>()

  constructor (private readonly onRefused: (call: RefusedCall) => void) {}

  /** A handler took this request id. */
  handled (id: string | number): void {
    if (this.pending.has(id)) this.taken.add(id)
  }

  watch (transport: Transport): void {
    const deliver = transport.onmessage
    const send = transport.send.bind(transport)
    transport.onmessage = (message, extra) => {
      const m = message as { method?: unknown, id?: unknown, params?: { name?: unknown, arguments?: unknown } }
      if (m.method === 'tools/call' && (typeof m.id === 'string' || typeof m.id === 'number')) {
        this.pending.set(m.id, { name: typeof m.params?.name === 'string' ? m.params.name : '(no name)', args: m.params?.arguments })
        if (this.pending.size > MAX_PENDING) {
          const oldest = this.pending.keys().next().value as string | number
          this.pending.delete(oldest)
          this.taken.delete(oldest)
        }
      }
      deliver?.(message, extra)
    }
    transport.send = async (message, options) => {
      const m = message as { id?: unknown, error?: { message?: unknown }, result?: { isError?: unknown, content?: Array<{ text?: unknown }> } }
      const id = m.id as string | number
      const call = (typeof id === 'string' || typeof id === 'number') && !('method' in m) ? this.pending.get(id) : undefined
      if (call !== undefined) {
        this.pending.delete(id)
        const wasTaken = this.taken.delete(id)
        if (!wasTaken) {
          const detail = m.error !== undefined ? String(m.error.message) : String(m.result?.content?.[0]?.text ?? 'refused by the MCP server')
          this.onRefused({ tool: call.name, arguments: call.args, detail })
        }
      }
      await send(message, options)
    }
  }
}
