/**
 * Ingest counters: every frame received, every rejection by reason, per transport and (in a
 * bounded table) per device. Plain numbers updated in place on the hot path; `snapshot()` copies
 * them into a plain object for metrics and tests.
 */
import type { DropReasonName } from '../types.js'
import { REJECT_REASONS, type RejectReason, type SourceFailure } from './reasons.js'

/** Drops a transport makes before a frame reaches the pipeline (not device faults). */
export type TransportDropReason = 'overloaded'

export type CountMap<K extends string> = Partial<Record<K, number>>

export function bump<K extends string> (map: CountMap<K>, key: K, by = 1): void {
  map[key] = (map[key] ?? 0) + by
}

export interface TransportCounters {
  frames: number
  bytes: number
  rejected: CountMap<RejectReason>
  dropped: CountMap<TransportDropReason>
  /** Socket, server and stream errors (each is also logged, throttled). */
  errors: number
  connections: number
  acks: number
  /** Connections closed because an ack write waited longer than ackTimeout for 'drain'. */
  ackTimeouts: number
  /** A source's failures to read its devices, by reason (MQTT and Modbus only). */
  failures: CountMap<SourceFailure>
}

export interface DeviceCounters {
  frames: number
  events: number
  bytes: number
  hellos: number
  rejected: CountMap<RejectReason>
  /** Sequence numbers skipped between consecutive events (frames lost before the gateway). */
  seqGaps: number
  lastSeq: number | undefined
  lastSeenMs: number
}

export interface StoreCounters {
  /** sink.append calls. */
  appends: number
  /** Events the sink took and wrote to disk. */
  durable: number
  /** Events the sink took but held in memory only (disk full): not acknowledged. */
  notDurable: number
  /** Events the sink refused, by its drop reason. */
  refused: CountMap<DropReasonName>
  /** Events lost to an append that threw (store closed, I/O error). */
  failed: number
}

export interface IngestCounterSnapshot {
  frames: number
  /** Event frames that passed every check and were handed to the sink. */
  events: number
  hellos: number
  clockSkewed: number
  /** Every reason, zeros included, so a metrics exporter sees each series from the start. */
  rejected: Record<RejectReason, number>
  store: StoreCounters
  transports: Record<string, TransportCounters>
  devices: Record<string, DeviceCounters>
  /** Device entries dropped from the bounded table since start. */
  devicesForgotten: number
}

export function newDeviceCounters (now: number): DeviceCounters {
  return { frames: 0, events: 0, bytes: 0, hellos: 0, rejected: {}, seqGaps: 0, lastSeq: undefined, lastSeenMs: now }
}

export class IngestCounters {
  frames = 0
  events = 0
  hellos = 0
  clockSkewed = 0
  readonly rejected = Object.fromEntries(REJECT_REASONS.map(r => [r, 0])) as Record<RejectReason, number>
  readonly store: StoreCounters = { appends: 0, durable: 0, notDurable: 0, refused: {}, failed: 0 }
  /** Keyed by transport kind, a name fixed in code, so this map stays small. */
  private readonly transports = new Map<string, TransportCounters>()

  transport (name: string): TransportCounters {
    let t = this.transports.get(name)
    if (t === undefined) {
      t = { frames: 0, bytes: 0, rejected: {}, dropped: {}, errors: 0, connections: 0, acks: 0, ackTimeouts: 0, failures: {} }
      this.transports.set(name, t)
    }
    return t
  }

  snapshot (devices: Iterable<[string, DeviceCounters]>, devicesForgotten: number): IngestCounterSnapshot {
    const out: IngestCounterSnapshot = {
      frames: this.frames,
      events: this.events,
      hellos: this.hellos,
      clockSkewed: this.clockSkewed,
      rejected: { ...this.rejected },
      store: { ...this.store, refused: { ...this.store.refused } },
      transports: {},
      devices: {},
      devicesForgotten
    }
    for (const [name, t] of this.transports) out.transports[name] = { ...t, rejected: { ...t.rejected }, dropped: { ...t.dropped }, failures: { ...t.failures } }
    for (const [id, d] of devices) out.devices[id] = { ...d, rejected: { ...d.rejected } }
    return out
  }
}
