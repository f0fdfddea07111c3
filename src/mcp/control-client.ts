/**
 * `edgefwd mcp`'s end of the agent control channel (src/agent/protocol.ts): one connection per
 * request, so a gateway restarting between two tool calls costs nothing but that call, and
 * nothing is held open while the agent thinks. Every request is bounded by TIMEOUT_MS.
 */
import { connect } from 'node:net'
import { LineSplitter, MAX_LINE_BYTES, type ControlOp, type ControlOps, type ControlResponse } from '../agent/protocol.js'
import { EdgefwdError, fsErrorReason } from '../errors.js'

const TIMEOUT_MS = 5000
/** Answers (reports) are larger than requests, still bounded. */
const MAX_ANSWER_BYTES = 4 * MAX_LINE_BYTES

/** An error the gateway answered with: its code and message. */
export class ControlError extends Error {
  constructor (readonly code: string, message: string) {
    super(message)
    this.name = 'ControlError'
  }
}

export class ControlClient {
  private nextId = 1

  constructor (readonly socket: string, private readonly caller: () => string, private readonly timeoutMs = TIMEOUT_MS) {}

  /**
   * @throws EdgefwdError EDGEFWD_ERR_AGENT_UNREACHABLE (nothing answers), ControlError (the gateway refused)
   */
  async call<Op extends ControlOp> (op: Op, args: ControlOps[Op]['args']): Promise<ControlOps[Op]['result']> {
    const id = this.nextId++
    const line = `${JSON.stringify({ id, op, args, caller: this.caller() })}\n`
    const response = await new Promise<ControlResponse>((resolve, reject) => {
      const socket = connect(this.socket)
      const fail = (message: string, cause?: unknown): void => {
        clearTimeout(timer)
        socket.destroy()
        reject(new EdgefwdError('EDGEFWD_ERR_AGENT_UNREACHABLE', `the gateway's agent socket ${this.socket}: ${message}`, {
          ...(cause === undefined ? {} : { cause }),
          hint: 'is edgefwd run running with this mcp.socket? The agent\'s user needs to be in the edgefwd group (the socket is mode 0660)'
        }))
      }
      const timer = setTimeout(() => { fail(`no answer within ${this.timeoutMs} ms`) }, this.timeoutMs)
      const lines = new LineSplitter(MAX_ANSWER_BYTES, text => {
        clearTimeout(timer)
        socket.end()
        try {
          resolve(JSON.parse(text) as ControlResponse)
        } catch (err) {
          reject(new EdgefwdError('EDGEFWD_ERR_AGENT_UNREACHABLE', `the agent socket ${this.socket} answered something that is not JSON`, { cause: err }))
        }
      }, () => { fail(`an answer longer than ${MAX_ANSWER_BYTES} bytes`) })
      socket.on('connect', () => { socket.write(line) })
      socket.on('data', (chunk: Buffer) => { lines.push(chunk) })
      socket.on('error', err => { fail(fsErrorReason(err) === err.message ? describeSocketError(err) : fsErrorReason(err), err) })
      socket.on('end', () => { fail('closed without an answer') })
    })
    if (!response.ok) throw new ControlError(response.error.code, response.error.message)
    return response.result as ControlOps[Op]['result']
  }
}

function describeSocketError (err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED': return 'nothing listens there (the gateway is not running, or is starting)'
    default: return err.message
  }
}
