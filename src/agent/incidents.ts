/**
 * Incidents: what went wrong on this gateway, when, for how long, and what it cost, read from
 * the counters the forwarder keeps anyway (sampled every SAMPLE_MS by the agent, never on the
 * hot path). One incident per episode, not per event: a burst of rejected frames, an outage
 * with its hundred failed attempts, a run of evictions each make one entry.
 *
 *   outage           the uplink not online (from its offline-since time to the sample that saw it online)
 *   broker_refusal   connection attempts refused by the broker (refused_<code>) or its TLS (tls_*)
 *   dead_link        connections found dead (no PUBACK in time, no PINGRESP)
 *   disk_full        the store on its in-memory fallback
 *   store_repair     the store found damaged at open and repaired or moved aside
 *   rejected_input   at least BURST_FRAMES frames rejected in one sample
 *   data_loss        events dropped after acceptance: evicted for space, expired, refused
 *   config_rollback  a remote configuration rolled back
 *
 * Bursty kinds (refusals, dead links, rejections, loss) stay open until QUIET_MS pass without a
 * new occurrence; their end is the last occurrence seen. Each incident carries its impact as
 * deltas of the same counters over its span (events accepted and lost, frames rejected, events
 * resent) and the reasons and error codes seen. Device ids are device-supplied text and are kept
 * apart (`devices`), so a reader can mark them untrusted.
 *
 * The list (the last MAX_INCIDENTS) is saved to a JSON file when it changes, at most every
 * SAVE_EVERY_MS, written atomically, so incidents survive a restart; an incident open when the
 * process died is closed at the time of the last save, with a note.
 */
import { readFile, rename, writeFile } from 'node:fs/promises'
import type { Logger } from '../observe/log.js'

export const INCIDENT_KINDS = ['outage', 'broker_refusal', 'dead_link', 'disk_full', 'store_repair', 'rejected_input', 'input_failing', 'data_loss', 'config_rollback'] as const
export type IncidentKind = typeof INCIDENT_KINDS[number]

export const SAMPLE_MS = 5000
export const QUIET_MS = 60_000
/**
 * input_failing stays open longer: a Modbus device that does not answer is polled again after up
 * to 5 minutes (src/ingest/sources/modbus), so its failures come that far apart.
 */
export const INPUT_QUIET_MS = 6 * 60_000
export const BURST_FRAMES = 10
export const MAX_INCIDENTS = 50
const SAVE_EVERY_MS = 5000
const MAX_CODES = 8
const MAX_DEVICES = 5
const MAX_TEXT = 160

/** The counters an incident is read from, cumulative unless said otherwise. */
export interface IncidentInput {
  atMs: number
  /** Uplink state: online, stopping (closing or closed), or neither. */
  online: boolean
  stopping: boolean
  offlineSinceMs: number | undefined
  lastError: string | undefined
  /** The uplink's last offline span once over (UplinkStats.lastOutage). */
  lastOutage?: { sinceMs: number, untilMs: number, lastError: string | undefined } | undefined
  connectFailures: Readonly<Record<string, number>>
  deadLinks: Readonly<Record<string, number>>
  resent: number
  accepted: number
  /** Drops after acceptance by reason (every priority). */
  dropped: Readonly<Record<string, number>>
  diskDegraded: boolean
  repairedAtOpen: boolean
  rejected: Readonly<Record<string, number>>
  /** Rejected frames by device id (device-supplied text). */
  deviceRejections: Readonly<Record<string, number>>
  /** Failures of the sources that read local brokers and devices, by `transport:reason` (mqtt:connect, modbus:timeout). */
  sourceFailures: Readonly<Record<string, number>>
  rollbacks: number
}

export interface IncidentImpact {
  eventsAccepted: number
  eventsLost: number
  framesRejected: number
  eventsResent: number
}

export interface Incident {
  id: number
  kind: IncidentKind
  startMs: number
  /** Undefined while it goes on. */
  endMs: number | undefined
  /** Our words, from our counters. */
  summary: string
  impact: IncidentImpact
  /** Reasons and EDGEFWD_ERR_* codes seen, at most MAX_CODES. */
  codes: string[]
  /** Device ids involved (rejected_input): untrusted, device-supplied text. */
  devices?: string[]
  note?: string
}

export interface IncidentReport {
  /** Newest first. */
  incidents: Incident[]
  /** How many are kept in all (the last MAX_INCIDENTS). */
  recorded: number
  /** Since when this gateway records incidents (its first sample, or the oldest saved one). */
  sinceMs: number | undefined
}

interface Open { incident: Incident, base: IncidentImpact, lastActivityMs: number }

const sum = (m: Readonly<Record<string, number>>): number => { let n = 0; for (const k in m) n += m[k] ?? 0; return n }

export class IncidentTracker {
  private incidents: Incident[] = []
  private readonly open = new Map<IncidentKind, Open>()
  private previous: IncidentInput | undefined
  private nextId = 1
  private sinceMs: number | undefined
  private dirty = false
  private lastSaveMs = 0
  private saving: Promise<void> | undefined

  constructor (private readonly file: string | undefined, private readonly logger: Logger) {}

  /** Reads the saved list; a missing file is a first start, a damaged one is logged and set aside. */
  async load (nowMs: number): Promise<void> {
    if (this.file === undefined) return
    let text: string
    try {
      text = await readFile(this.file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn({ err, file: this.file }, 'incident history unreadable; starting a new one')
      return
    }
    try {
      const saved = JSON.parse(text) as { savedMs?: unknown, incidents?: unknown }
      if (!Array.isArray(saved.incidents) || typeof saved.savedMs !== 'number') throw new Error('not an incident history')
      const endedAt = Math.min(saved.savedMs, nowMs)
      this.incidents = (saved.incidents as Incident[]).filter(isIncident).slice(-MAX_INCIDENTS).map(i => i.endMs === undefined
        ? { ...i, endMs: endedAt, note: 'edgefwd stopped while it went on; its end is the last record before the stop' }
        : i)
      this.nextId = this.incidents.reduce((n, i) => Math.max(n, i.id + 1), 1)
      this.sinceMs = this.incidents[0]?.startMs
    } catch (err) {
      this.logger.warn({ err, file: this.file }, 'incident history damaged; starting a new one')
    }
  }

  /** Takes one sample of the counters; opens, extends and closes incidents. */
  observe (input: IncidentInput): void {
    const prev = this.previous
    this.previous = input
    this.sinceMs ??= input.atMs
    const now = input.atMs
    for (const open of this.open.values()) this.updateImpact(open, input)
    if (prev === undefined) {
      if (input.repairedAtOpen) this.instant('store_repair', now, 'the store was found damaged at start and repaired or moved aside; events in damaged blocks may be gone (counted as unexplained if so)', ['EDGEFWD_ERR_STORE_CORRUPT'], input)
      // Counters before the first sample are history this process did not watch.
      this.previous = input
    } else {
      this.sampleOutage(prev, input)
      this.sampleDisk(prev, input)
      this.sampleBursts(prev, input)
      if (input.rollbacks > prev.rollbacks) this.instant('config_rollback', now, 'a remote configuration update was rolled back: the gateway returned to its previous configuration', ['rolled_back'], input)
    }
    for (const [kind, open] of this.open) {
      if (isBursty(kind) && now - open.lastActivityMs >= (kind === 'input_failing' ? INPUT_QUIET_MS : QUIET_MS)) this.close(kind, open.lastActivityMs)
    }
    this.maybeSave(now)
  }

  report (limit: number): IncidentReport {
    const n = Math.max(1, Math.min(limit, MAX_INCIDENTS))
    return { incidents: this.incidents.slice(-n).reverse().map(i => ({ ...i, impact: { ...i.impact }, codes: [...i.codes] })), recorded: this.incidents.length, sinceMs: this.sinceMs }
  }

  /** Saves now if anything changed (at stop). */
  async flush (): Promise<void> {
    await this.saving
    if (this.dirty) await this.save(this.previous?.atMs ?? Date.now())
  }

  /**
   * An outage open while the uplink is offline; closed at the uplink's own record of when it came
   * back (lastOutage), so one that began and ended between two samples is not missed either.
   */
  private sampleOutage (prev: IncidentInput, input: IncidentInput): void {
    const codes = [...increases(prev.connectFailures, input.connectFailures).map(([reason]) => reason)]
    const ended = input.lastOutage
    if (ended !== undefined && ended.untilMs !== prev.lastOutage?.untilMs) {
      const o = this.open.get('outage') ?? this.start('outage', ended.sinceMs, '', prev)
      o.incident.summary = 'the uplink was not connected to the broker; events waited in the store'
      if (ended.lastError !== undefined) this.addCode(o.incident, ended.lastError)
      for (const c of codes) this.addCode(o.incident, c)
      this.updateImpact(o, input)
      this.close('outage', ended.untilMs)
    }
    if (!input.online && !input.stopping) {
      const o = this.open.get('outage') ?? this.start('outage', input.offlineSinceMs ?? input.atMs, 'the uplink is not connected to the broker; events wait in the store', prev)
      o.lastActivityMs = input.atMs
      if (input.lastError !== undefined) this.addCode(o.incident, input.lastError)
      for (const c of codes) this.addCode(o.incident, c)
    } else if (input.online && this.open.has('outage')) {
      // Online again without a record of when (an uplink without lastOutage): this sample.
      const o = this.open.get('outage') as Open
      o.incident.summary = 'the uplink was not connected to the broker; events waited in the store'
      this.close('outage', input.atMs)
    }
  }

  private sampleDisk (prev: IncidentInput, input: IncidentInput): void {
    const open = this.open.get('disk_full')
    if (input.diskDegraded && open === undefined) {
      this.start('disk_full', prev.atMs, 'the store runs on its in-memory fallback (disk full or failing): new events are not durable', prev, ['EDGEFWD_ERR_STORE_DISK_FULL'])
    } else if (!input.diskDegraded && open !== undefined) {
      open.incident.summary = 'the store ran on its in-memory fallback (disk full or failing)'
      this.close('disk_full', input.atMs)
    }
  }

  private sampleBursts (prev: IncidentInput, input: IncidentInput): void {
    const refusals = increases(prev.connectFailures, input.connectFailures).filter(([reason]) => reason.startsWith('refused_') || reason.startsWith('tls_'))
    if (refusals.length > 0) this.burst('broker_refusal', 'the broker refused connection attempts (MQTT CONNACK or TLS)', refusals.map(([r]) => r), prev, input)
    const dead = increases(prev.deadLinks, input.deadLinks)
    if (dead.length > 0) this.burst('dead_link', 'connections were found dead and dropped; their batches in flight were sent again', dead.map(([r]) => r), prev, input)
    const rejected = increases(prev.rejected, input.rejected)
    if (rejected.reduce((n, [, d]) => n + d, 0) >= BURST_FRAMES || (this.open.has('rejected_input') && rejected.length > 0)) {
      const o = this.burst('rejected_input', 'devices sent frames that failed validation; they were refused and counted', rejected.map(([r]) => r), prev, input)
      const devices = increases(prev.deviceRejections, input.deviceRejections).sort((a, b) => b[1] - a[1]).map(([id]) => id.slice(0, MAX_TEXT))
      const known = new Set(o.incident.devices ?? [])
      for (const id of devices) if (known.size < MAX_DEVICES) known.add(id)
      if (known.size > 0) o.incident.devices = [...known]
    }
    const inputs = increases(prev.sourceFailures, input.sourceFailures)
    if (inputs.length > 0) this.burst('input_failing', 'a local input (an MQTT broker, a Modbus device) could not be read; it is retried with backoff, and its devices\' readings are not collected meanwhile', inputs.map(([r]) => r), prev, input)
    const lost = increases(prev.dropped, input.dropped)
    if (lost.length > 0) this.burst('data_loss', 'events accepted earlier were dropped (evicted for space, expired or refused); each is counted and reported upstream', lost.map(([r]) => r), prev, input)
  }

  /** A burst seen in this sample began after the previous one: it starts there, its impact counted from there. */
  private burst (kind: IncidentKind, summary: string, codes: string[], prev: IncidentInput, input: IncidentInput): Open {
    const o = this.open.get(kind) ?? this.start(kind, prev.atMs, summary, prev)
    o.lastActivityMs = input.atMs
    for (const c of codes) this.addCode(o.incident, c)
    this.updateImpact(o, input)
    return o
  }

  private instant (kind: IncidentKind, atMs: number, summary: string, codes: string[], input: IncidentInput): void {
    this.start(kind, atMs, summary, input, codes)
    this.close(kind, atMs)
  }

  private start (kind: IncidentKind, startMs: number, summary: string, base: IncidentInput, codes: string[] = []): Open {
    const incident: Incident = { id: this.nextId++, kind, startMs, endMs: undefined, summary, impact: { eventsAccepted: 0, eventsLost: 0, framesRejected: 0, eventsResent: 0 }, codes: [...codes] }
    const open: Open = { incident, base: impactOf(base), lastActivityMs: startMs }
    this.open.set(kind, open)
    this.incidents.push(incident)
    if (this.incidents.length > MAX_INCIDENTS) this.incidents.splice(0, this.incidents.length - MAX_INCIDENTS)
    this.dirty = true
    return open
  }

  private close (kind: IncidentKind, endMs: number): void {
    const open = this.open.get(kind)
    if (open === undefined) return
    open.incident.endMs = Math.max(open.incident.startMs, endMs)
    this.open.delete(kind)
    this.dirty = true
  }

  private updateImpact (open: Open, input: IncidentInput): void {
    const now = impactOf(input)
    const impact = open.incident.impact
    const next = {
      eventsAccepted: Math.max(0, now.eventsAccepted - open.base.eventsAccepted),
      eventsLost: Math.max(0, now.eventsLost - open.base.eventsLost),
      framesRejected: Math.max(0, now.framesRejected - open.base.framesRejected),
      eventsResent: Math.max(0, now.eventsResent - open.base.eventsResent),
    }
    if (next.eventsAccepted !== impact.eventsAccepted || next.eventsLost !== impact.eventsLost || next.framesRejected !== impact.framesRejected || next.eventsResent !== impact.eventsResent) {
      open.incident.impact = next
      this.dirty = true
    }
  }

  private addCode (incident: Incident, code: string): void {
    const text = code.slice(0, MAX_TEXT)
    if (incident.codes.length < MAX_CODES && !incident.codes.includes(text)) {
      incident.codes.push(text)
      this.dirty = true
    }
  }

  private maybeSave (now: number): void {
    if (!this.dirty || this.file === undefined || this.saving !== undefined || now - this.lastSaveMs < SAVE_EVERY_MS) return
    this.saving = this.save(now).finally(() => { this.saving = undefined })
  }

  private async save (now: number): Promise<void> {
    if (this.file === undefined) return
    this.dirty = false
    this.lastSaveMs = now
    const tmp = `${this.file}.tmp`
    try {
      await writeFile(tmp, JSON.stringify({ savedMs: now, incidents: this.incidents }), { mode: 0o640 })
      await rename(tmp, this.file)
    } catch (err) {
      this.dirty = true
      this.logger.warn({ err, file: this.file }, 'incident history not saved; it is kept in memory and tried again')
    }
  }
}

function isBursty (kind: IncidentKind): boolean {
  return kind === 'broker_refusal' || kind === 'dead_link' || kind === 'rejected_input' || kind === 'input_failing' || kind === 'data_loss'
}

function impactOf (i: IncidentInput): IncidentImpact {
  return { eventsAccepted: i.accepted, eventsLost: sum(i.dropped), framesRejected: sum(i.rejected), eventsResent: i.resent }
}

/** Keys whose count went up, with the increase. */
function increases (before: Readonly<Record<string, number>>, after: Readonly<Record<string, number>>): Array<[string, number]> {
  const out: Array<[string, number]> = []
  for (const key in after) {
    const d = (after[key] ?? 0) - (before[key] ?? 0)
    if (d > 0) out.push([key, d])
  }
  return out
}

function isIncident (v: unknown): v is Incident {
  const i = v as Partial<Incident> | null
  return i !== null && typeof i === 'object' && typeof i.id === 'number' && typeof i.kind === 'string' && (INCIDENT_KINDS as readonly string[]).includes(i.kind) &&
    typeof i.startMs === 'number' && (i.endMs === undefined || i.endMs === null || typeof i.endMs === 'number') && Array.isArray(i.codes) && typeof i.impact === 'object'
}
