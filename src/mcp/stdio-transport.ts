/**
 * The stdio transport of `edgefwd mcp`: newline-delimited JSON-RPC 2.0, one UTF-8 message per
 * line (MCP stdio transport; a trailing "\r" is tolerated), for any McpServer to connect to.
 *
 * Why not the SDK's StdioServerTransport: it answers nothing to a malformed line (it only calls
 * onerror, so the agent waits for an answer that never comes), and it CLOSES the transport when
 * one message is larger than its buffer, so one bad request ends the session. Here every bad
 * line gets a JSON-RPC error and reading goes on with the next line:
 * - not UTF-8 or not JSON: -32700 Parse error, id null;
 * - JSON but not one JSON-RPC 2.0 message (not an object, a batch array — MCP 2025-06-18 removed
 *   batching —, no `jsonrpc: "2.0"`, a method that is not a string...): -32600 Invalid Request,
 *   with the message's id when it is a string or a number, else null. The verdict is the SDK's
 *   own JSON-RPC message schema (parseJSONRPCMessage), so this transport lets through exactly
 *   what the server can take;
 * - longer than maxMessageBytes: -32600 "request too large", id null (the id is in the bytes not
 *   kept). The bytes of such a line are dropped as they arrive up to the next newline, never
 *   buffered, so memory stays bounded by maxMessageBytes whatever the input
 *   (`bufferedHighWater` says the most this transport ever held of one line);
 * - an empty or blank line is ignored (no answer, not a rejection).
 * Every rejection is also reported to options.onReject, which counts and audits them.
 *
 * Output: one write per message; when write() returns false, send() resolves on 'drain', and
 * that wait is bounded (drainTimeoutMs): a client that stops reading fails the send instead of
 * holding it forever. An output error (EPIPE: the agent went away) closes the transport without
 * throwing; an error listener stays on the output after close so a late EPIPE cannot crash the
 * process either. The end or close of the input closes the transport (MCP stdio: the server
 * should exit when its stdin is closed).
 */
import type { Readable, Writable } from 'node:stream'
import { parseJSONRPCMessage, type JSONRPCMessage, type Transport } from '@modelcontextprotocol/server'

export type LineRejectReason = 'parse_error' | 'invalid_request' | 'too_large'

export interface LineRejection {
  reason: LineRejectReason
  /** One short sentence: what was wrong with the line (also the error message sent back). */
  detail: string
}

export interface LineTransportOptions {
  /** The longest line accepted, in bytes, newline excluded. */
  maxMessageBytes: number
  onReject?: (rejection: LineRejection) => void
  /** How long send() waits for the output's 'drain' before it fails; default DEFAULT_DRAIN_TIMEOUT_MS. */
  drainTimeoutMs?: number
}

/** JSON-RPC 2.0 error codes (section 5.1). */
export const PARSE_ERROR = -32700
export const INVALID_REQUEST = -32600

/** A client that has not read a single byte of our answers for this long is not coming back soon. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000

const NEWLINE = 0x0a
const CARRIAGE_RETURN = 0x0d

type State = 'idle' | 'open' | 'closed'

/** How long requests read before the input ended still get their answers. */
const END_GRACE_MS = 5000

/** Output streams that already have the after-close error swallower (one per stream, not per transport). */
const guardedOutputs = new WeakSet<Writable>()
const swallow = (): void => {}

export class LineTransport implements Transport {
  onclose?: (() => void) | undefined
  onerror?: ((error: Error) => void) | undefined
  onmessage?: Transport['onmessage']

  private state: State = 'idle'
  /** The start of the line being read, copied out of its chunks; never more than maxMessageBytes in all. */
  private pending: Buffer[] = []
  private pendingBytes = 0
  /** The line being read went past the limit: its bytes are dropped up to the next newline. */
  private discarding = false
  private highWater = 0
  /** Set while the output's buffer is full: every send() waits on this one 'drain'. */
  private drained: Promise<void> | undefined
  private readonly decoder = new TextDecoder('utf-8', { fatal: true })
  private readonly maxBytes: number
  private readonly drainTimeoutMs: number
  /** Ids of requests received and not answered yet. */
  private readonly unanswered = new Set<string | number>()
  /** The input ended while requests were unanswered: close once they are (or END_GRACE_MS passed). */
  private ending: NodeJS.Timeout | undefined

  constructor (private readonly input: Readable, private readonly output: Writable, private readonly options: LineTransportOptions) {
    if (!Number.isSafeInteger(options.maxMessageBytes) || options.maxMessageBytes < 1) {
      throw new RangeError(`maxMessageBytes must be a positive integer, not ${options.maxMessageBytes}`)
    }
    this.maxBytes = options.maxMessageBytes
    this.drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS
  }

  /** The most bytes of one line this transport has held at once; at most maxMessageBytes. */
  get bufferedHighWater (): number {
    return this.highWater
  }

  async start (): Promise<void> {
    if (this.state !== 'idle') throw new Error(`LineTransport.start(): already ${this.state === 'open' ? 'started' : 'closed'}`)
    this.state = 'open'
    if (!guardedOutputs.has(this.output)) {
      guardedOutputs.add(this.output)
      this.output.on('error', swallow)
    }
    this.input.on('data', this.onData)
    this.input.on('error', this.onInputError)
    this.input.on('end', this.onInputEnd)
    this.input.on('close', this.onInputEnd)
    this.output.on('error', this.onOutputError)
    this.output.on('close', this.onOutputClose)
    if (this.input.readableEnded || this.input.destroyed) setImmediate(this.onInputEnd)
  }

  async send (message: JSONRPCMessage): Promise<void> {
    if (this.state !== 'open') throw new Error('LineTransport.send(): the transport is closed')
    await this.write(`${JSON.stringify(message)}\n`)
    const answered = message as { id?: unknown, method?: unknown }
    if (answered.method === undefined && (typeof answered.id === 'string' || typeof answered.id === 'number')) {
      this.unanswered.delete(answered.id)
      if (this.ending !== undefined && this.unanswered.size === 0) void this.close()
    }
  }

  async close (): Promise<void> {
    if (this.state === 'closed') return
    this.state = 'closed'
    clearTimeout(this.ending)
    this.input.off('data', this.onData)
    this.input.off('error', this.onInputError)
    this.input.off('end', this.onInputEnd)
    this.input.off('close', this.onInputEnd)
    this.output.off('error', this.onOutputError)
    this.output.off('close', this.onOutputClose)
    // Nobody else reads the input: stop its flow so the process can exit.
    if (this.input.listenerCount('data') === 0) this.input.pause()
    this.pending = []
    this.pendingBytes = 0
    this.onclose?.()
  }

  private async write (text: string): Promise<void> {
    if (this.output.destroyed || !this.output.writable) throw new Error('LineTransport: the output is closed')
    if (this.output.write(text)) return
    this.drained ??= this.waitForDrain().finally(() => { this.drained = undefined })
    await this.drained
  }

  private async waitForDrain (): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer)
        this.output.off('drain', onDrain)
        this.output.off('close', onClose)
        if (err === undefined) resolve(); else reject(err)
      }
      const onDrain = (): void => { done() }
      const onClose = (): void => { done(new Error('LineTransport: the output closed before it drained')) }
      const timer = setTimeout(() => {
        done(new Error(`LineTransport: the output did not drain within ${this.drainTimeoutMs} ms (the client is not reading)`))
      }, this.drainTimeoutMs)
      this.output.on('drain', onDrain)
      this.output.on('close', onClose)
    })
  }

  private readonly onData = (chunk: Buffer | string): void => {
    const data = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk
    let start = 0
    while (start < data.length && this.state === 'open') {
      const end = data.indexOf(NEWLINE, start)
      if (end === -1) {
        this.keep(data.subarray(start))
        return
      }
      if (this.discarding) {
        this.discarding = false
        this.rejectTooLarge()
      } else if (this.pendingBytes + end - start > this.maxBytes) {
        this.pending = []
        this.pendingBytes = 0
        this.rejectTooLarge()
      } else {
        this.line(this.take(data.subarray(start, end)))
      }
      start = end + 1
    }
  }

  /** The part of a line with no newline yet: copied (a subarray would pin its whole chunk), or dropped past the limit. */
  private keep (part: Buffer): void {
    if (this.discarding || part.length === 0) return
    if (this.pendingBytes + part.length > this.maxBytes) {
      this.pending = []
      this.pendingBytes = 0
      this.discarding = true
      return
    }
    this.pending.push(Buffer.from(part))
    this.pendingBytes += part.length
    if (this.pendingBytes > this.highWater) this.highWater = this.pendingBytes
  }

  /** The whole line: what was kept plus its last part. */
  private take (last: Buffer): Buffer {
    const bytes = this.pendingBytes + last.length
    if (bytes > this.highWater) this.highWater = bytes
    const line = this.pending.length === 0 ? last : Buffer.concat([...this.pending, last], bytes)
    this.pending = []
    this.pendingBytes = 0
    return line
  }

  private line (bytes: Buffer): void {
    const end = bytes.length > 0 && bytes[bytes.length - 1] === CARRIAGE_RETURN ? bytes.length - 1 : bytes.length
    let text: string
    try {
      text = this.decoder.decode(bytes.subarray(0, end))
    } catch {
      this.reject('parse_error', 'Parse error: the line is not valid UTF-8', null)
      return
    }
    if (text.trim() === '') return
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (err) {
      this.reject('parse_error', `Parse error: ${err instanceof Error ? err.message : String(err)}`, null)
      return
    }
    let message: JSONRPCMessage
    try {
      message = parseJSONRPCMessage(value)
    } catch {
      this.reject('invalid_request', `Invalid Request: ${whyInvalid(value)}`, idOf(value))
      return
    }
    const request = message as { id?: unknown, method?: unknown }
    if (typeof request.method === 'string' && (typeof request.id === 'string' || typeof request.id === 'number')) this.unanswered.add(request.id)
    this.onmessage?.(message)
  }

  private rejectTooLarge (): void {
    this.reject('too_large', `request too large: more than ${this.maxBytes} bytes in one line (the limit is ${this.maxBytes} bytes)`, null)
  }

  private reject (reason: LineRejectReason, detail: string, id: string | number | null): void {
    const code = reason === 'parse_error' ? PARSE_ERROR : INVALID_REQUEST
    this.write(`${JSON.stringify({ jsonrpc: '2.0', id, error: { code, message: detail } })}\n`).catch((err: unknown) => {
      this.onerror?.(err instanceof Error ? err : new Error(String(err)))
    })
    this.options.onReject?.({ reason, detail })
  }

  private readonly onInputError = (err: Error): void => {
    this.onerror?.(err)
    void this.close()
  }

  /** The agent closed our input: requests it already sent are still answered, for at most END_GRACE_MS. */
  private readonly onInputEnd = (): void => {
    if (this.unanswered.size === 0 || this.state !== 'open') {
      void this.close()
      return
    }
    this.ending ??= setTimeout(() => { void this.close() }, END_GRACE_MS)
  }

  private readonly onOutputError = (err: Error): void => {
    this.onerror?.(err)
    void this.close()
  }

  private readonly onOutputClose = (): void => {
    void this.close()
  }
}

/** The id to answer an invalid message with: its own when it is a string or a number (JSON-RPC 2.0, section 5). */
function idOf (value: unknown): string | number | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null
  const id = (value as Record<string, unknown>).id
  return typeof id === 'string' || typeof id === 'number' ? id : null
}

/** Why the SDK's schema refused it, in a few words: the error message is read by an agent, not a Zod dump. */
function whyInvalid (value: unknown): string {
  if (Array.isArray(value)) return 'a batch (JSON array); MCP takes one JSON-RPC message per line'
  if (typeof value !== 'object' || value === null) return `a JSON-RPC message is an object, not ${value === null ? 'null' : typeof value}`
  const msg = value as Record<string, unknown>
  if (msg.jsonrpc !== '2.0') return 'the "jsonrpc" member must be "2.0"'
  if ('method' in msg && typeof msg.method !== 'string') return 'the "method" member must be a string'
  if ('id' in msg && !(typeof msg.id === 'string' || Number.isInteger(msg.id)) && !('error' in msg && msg.id === null)) {
    return 'the "id" member must be a string or an integer'
  }
  if (!('method' in msg) && !('result' in msg) && !('error' in msg)) return 'no "method" (a request or notification) nor "result"/"error" (a response)'
  return 'not a valid JSON-RPC 2.0 request, notification or response'
}
