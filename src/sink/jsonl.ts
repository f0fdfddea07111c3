/**
 * JSON Lines output of the sink: one object per event, keys always in the order below so lines
 * diff and grep well. Optional keys are left out when absent. Numbers stay JSON numbers (the
 * codec keeps uint64 fields within safe integers); a raw value is base64; a numbers value keeps
 * the device's key order.
 *
 * {"gateway","batchSeq","storeSeq","deviceId","deviceSeq","priority","stream","gatewayTimeMs",
 *  "deviceTimeMs"?,"deviceUptimeMs"?,"value"?,"tags"?,"clockSkewed"?,"expiresAtMs"?}
 */
import type { StoredEvent } from '../proto/codec.js'
import { priorityName, type PriorityName } from '../types.js'

export type JsonValue =
  | { kind: 'number', number: number | null }
  | { kind: 'numbers', numbers: Record<string, number | null> }
  | { kind: 'text', text: string }
  | { kind: 'raw', base64: string }

export interface EventLine {
  gateway: string
  batchSeq: number
  storeSeq: number
  deviceId: string
  deviceSeq: number
  priority: PriorityName
  stream: string
  gatewayTimeMs: number
  deviceTimeMs?: number
  deviceUptimeMs?: number
  value?: JsonValue
  tags?: Record<string, string>
  clockSkewed?: true
  expiresAtMs?: number
}

/** JSON has no NaN or ±Infinity; they become null rather than a line that does not parse back. */
function finite (n: number): number | null {
  return Number.isFinite(n) ? n : null
}

function jsonValue (v: NonNullable<StoredEvent['value']>): JsonValue {
  switch (v.kind) {
    case 'number': return { kind: 'number', number: finite(v.number) }
    case 'numbers': {
      const numbers: Record<string, number | null> = {}
      for (const [k, n] of Object.entries(v.numbers)) {
        // A device-chosen key named __proto__ must stay data.
        Object.defineProperty(numbers, k, { value: finite(n), enumerable: true, writable: true, configurable: true })
      }
      return { kind: 'numbers', numbers }
    }
    case 'text': return { kind: 'text', text: v.text }
    case 'raw': return { kind: 'raw', base64: Buffer.from(v.raw.buffer, v.raw.byteOffset, v.raw.byteLength).toString('base64') }
  }
}

/** The line object for one event of batch (gateway, batchSeq). */
export function eventLine (gateway: string, batchSeq: number, e: StoredEvent): EventLine {
  const line: EventLine = {
    gateway,
    batchSeq,
    storeSeq: e.storeSeq,
    deviceId: e.deviceId,
    deviceSeq: e.deviceSeq,
    priority: priorityName(e.priority),
    stream: e.stream,
    gatewayTimeMs: e.gatewayTimeMs
  }
  if (e.deviceTimeMs !== undefined) line.deviceTimeMs = e.deviceTimeMs
  if (e.deviceUptimeMs !== undefined) line.deviceUptimeMs = e.deviceUptimeMs
  if (e.value !== undefined) line.value = jsonValue(e.value)
  if (e.tags !== undefined) line.tags = e.tags
  if (e.clockSkewed === true) line.clockSkewed = true
  if (e.expiresAtMs !== undefined) line.expiresAtMs = e.expiresAtMs
  return line
}

/** One event as a JSON line, without the trailing newline. */
export function formatEventLine (gateway: string, batchSeq: number, e: StoredEvent): string {
  return JSON.stringify(eventLine(gateway, batchSeq, e))
}

/** All events of a decoded batch, each line ending in '\n'. */
export function formatBatchLines (gateway: string, batchSeq: number, events: readonly StoredEvent[]): string {
  let out = ''
  for (const e of events) out += formatEventLine(gateway, batchSeq, e) + '\n'
  return out
}
