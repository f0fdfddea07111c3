/**
 * The one interface every ingest transport implements, and what they share. Transports move
 * bytes: they parse with the codecs (../frame.ts, ../stream-deframer.ts, ../json-line.ts), hand
 * the results to the IngestPipeline one read at a time, and write back the acks it returns.
 * test/integration/transports.test.ts is the conformance suite every transport passes.
 */
import { EdgefwdError } from '../../errors.js'
import type { Logger } from '../../observe/log.js'
import type { IngestPipeline } from '../pipeline.js'
import type { TransportName } from '../reasons.js'

export interface Transport {
  /** Its counters' `transport` label (TCP with JSON lines: tcp-jsonl). */
  readonly name: TransportName
  /** Listens / opens; resolves with where: `host:port`, a socket path, a tty path or `stdin`. */
  start (): Promise<{ address: string }>
  /** Closes listeners and connections; waits (bounded by stopTimeoutMs) for in-flight appends and acks. */
  stop (): Promise<void>
}

export interface TransportContext {
  pipeline: IngestPipeline
  logger: Logger
  /** A connection is paused while more events than this are in flight for it. */
  connectionEvents: number
  /**
   * Every stream connection is paused while the pipeline holds more events than this over all
   * transports (UDP drops instead). Absent: no global bound.
   */
  pendingEvents?: number
  /** The same bound on the pipeline's pendingBytes (the memory budget's share for ingest). Absent: none. */
  pendingBytes?: number
  /** How long an ack write waits for 'drain' before the peer counts as not reading. */
  ackTimeoutMs: number
  /** Bound of every wait in stop(); default 5000. */
  stopTimeoutMs?: number
}

export const DEFAULT_STOP_TIMEOUT_MS = 5000

/** Whether the pipeline holds more than the context's global bounds (events or bytes): inputs pause. */
export function pipelineOverBound (ctx: TransportContext): boolean {
  const { pendingEvents, pendingBytes, pipeline } = ctx
  return (pendingEvents !== undefined && pipeline.pendingEvents > pendingEvents) || (pendingBytes !== undefined && pipeline.pendingBytes > pendingBytes)
}

/** Half the global bounds: where a paused input resumes (Infinity where there is no bound). */
export function resumeBounds (ctx: TransportContext): { events: number, bytes: number } {
  return { events: ctx.pendingEvents === undefined ? Infinity : ctx.pendingEvents / 2, bytes: ctx.pendingBytes === undefined ? Infinity : ctx.pendingBytes / 2 }
}

/** Waits for `promise` at most `ms`; true if it settled in time. Never rejects. */
export async function within (promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>(resolve => { timer = setTimeout(() => resolve(false), Math.max(0, ms)) })
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * The error start() rejects with when a listener cannot be opened (EADDRINUSE, EACCES, ENOENT).
 * One place, so it can become an EdgefwdError once src/errors.ts has an ingest code.
 */
export function startError (transport: string, where: string, cause: unknown): EdgefwdError {
  const why = cause instanceof Error ? cause.message : String(cause)
  return new EdgefwdError('EDGEFWD_ERR_INGEST_LISTEN', `${transport} ingest could not start on ${where}: ${why}`, { cause })
}
