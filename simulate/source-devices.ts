/**
 * A scenario's source devices, what the forwarder's `ingest.mqtt` and `ingest.modbus` read:
 *
 *   Tasmota-like plugs (tasmota-device.ts) ──QoS 1──▶ local broker (local-broker.ts: plain aedes
 *   on 127.0.0.1, no proxy) ◀──subscribes── forwarder ──polls Modbus TCP──▶ meters (modbus-meter.ts)
 *
 * This module starts them, writes the forwarder's configuration for them (an `ingest.mqtt` entry
 * with `tele/{device}/SENSOR`, an `ingest.modbus` connection with a device per unit id, and one
 * ingest rule per device giving its events the group's priority), and keeps what the accounting
 * needs (accounting.ts says how they are accounted):
 * - each event's message or poll number and when it was sent (numberOf), for the sink's side;
 * - what was sent: messages the local broker acknowledged, polls the meter answered (ledgers);
 * - whether the forwarder has taken every message the local broker holds for it
 *   (pendingForForwarder: the drain waits for 0, since aedes keeps them while the forwarder is
 *   down and they are not in its store yet);
 * - the Modbus polls in flight at a power cut (powerCut), the only ones a correct gateway loses.
 *
 * Timing: the meter answers from the start (it is powered, whoever polls it); the plugs connect at
 * start and publish from startSending(), one tick for all as in devices.ts. stopSending() stops
 * both: the plugs publish no more, the meter answers every later poll with an exception.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { EventValue, PriorityName } from '../src/index.js'
import type { DeviceTotals, SentRecord } from './accounting.js'
import { startLocalBroker, type LocalBroker } from './local-broker.js'
import { METER_REGISTERS, pollNumberOf, startModbusMeter, type ModbusMeter } from './modbus-meter.js'
import { seededRandom } from './random.js'
import type { SourceRow } from './report-model.js'
import { isSourceGroup, SOURCE_STREAM, type DeviceGroup, type SourceDeviceGroup } from './scenario-model.js'
import { TASMOTA_FILTER, TasmotaDevice, tasmotaDeviceOf } from './tasmota-device.js'

/** The forwarder's client id on the local broker. */
export const LOCAL_CLIENT_ID = 'sim-gw-local'
const TICK_MS = 20
const SETTLE_POLL_MS = 25
/** Late enough that the meter has answered any request of a killed forwarder that reached it before the kill. */
const AFTER_CUT_MS = 50
/** The forwarder's Modbus timeout: far above a loopback answer, so only a stalled process times a poll out. */
const MODBUS_TIMEOUT_MS = 5000

export interface SourceLedger { transport: 'mqtt' | 'modbus', sent: SentRecord[], inFlightAtCut: ReadonlySet<number> }

export interface SourceDevices {
  /** Device ids, in scenario order. */
  readonly ids: readonly string[]
  /** `mqtt`, `modbus` and `rules` for the forwarder's `ingest` section (empty without source devices). */
  ingestConfig: () => Record<string, unknown>
  /** Resolves once the forwarder has subscribed on the local broker (at once without mqtt devices). */
  forwarderReady: (timeoutMs: number) => Promise<void>
  startSending: () => void
  stopSending: () => void
  /** Waits until the local broker acknowledged every message published, or timeoutMs; returns how many it did not. */
  settle: (timeoutMs: number) => Promise<number>
  /** Messages the local broker acknowledged that the forwarder has not acknowledged yet. */
  pendingForForwarder: () => number
  /** Call just before a power cut kills the forwarder, and `after` once it is dead, before it restarts. */
  powerCut: { before: () => void, after: () => Promise<void> }
  isSource: (deviceId: string) => boolean
  /** For an event of a source device: its message or poll number and when that was sent; undefined if it carries none. */
  numberOf: (deviceId: string, value: EventValue | undefined) => { number: number, sentAtMs: number } | undefined
  /** Messages acknowledged by the local broker plus polls answered, so far. */
  sentCount: () => number
  ledgers: () => Map<string, SourceLedger>
  close: () => Promise<void>
}

/** Starts the local broker, the meter and the plugs for `groups` (nothing when there are none). */
export async function startSourceDevices (options: { groups: readonly SourceDeviceGroup[], random: () => number, now?: () => number }): Promise<SourceDevices> {
  const mqttGroups = options.groups.filter(g => g.transport === 'mqtt')
  const modbusGroups = options.groups.filter(g => g.transport === 'modbus')
  const priorityOf = new Map(options.groups.flatMap(g => g.ids.map(id => [id, g.priority] as [string, PriorityName])))
  const closers: Array<() => Promise<void>> = []
  const close = async (): Promise<void> => { for (const c of closers.splice(0).reverse()) await c().catch(() => {}) }
  try {
    // One seed per device, drawn in scenario order, as devices.ts does for framed devices.
    const seeds = new Map(options.groups.flatMap(g => g.ids).map(id => [id, Math.floor(options.random() * 4294967296)]))
    const seedOf = (id: string): () => number => seededRandom(seeds.get(id) ?? 0)

    let local: LocalBroker | undefined
    const plugs = new Map<string, TasmotaDevice>()
    const taken = new Map<string, Set<number>>()
    const waiting = new Map<string, Set<number>>()
    if (mqttGroups.length > 0) {
      const broker = await startLocalBroker()
      local = broker
      closers.push(async () => { await broker.close() })
      for (const id of mqttGroups.flatMap(g => g.ids)) {
        taken.set(id, new Set())
        waiting.set(id, new Set())
      }
      // Acknowledged by the broker and not yet by the forwarder: waiting (the two can come in either order).
      const brokerAcked = (id: string, n: number): void => { if (!(taken.get(id)?.has(n) ?? false)) waiting.get(id)?.add(n) }
      const connects = await Promise.allSettled(mqttGroups.flatMap(g => g.ids.map(async id =>
        await TasmotaDevice.connect({ id, ratePerSecond: g.ratePerSecond }, broker.url, seedOf(id), {
          ...(options.now === undefined ? {} : { now: options.now }),
          onAcked: n => { brokerAcked(id, n) },
        }))))
      for (const c of connects) {
        if (c.status !== 'fulfilled') continue
        plugs.set(c.value.id, c.value)
        closers.push(async () => { await c.value.close() })
      }
      const failed = connects.find(c => c.status === 'rejected')
      if (failed !== undefined) throw failed.reason
      broker.onAck(({ clientId, topic, payload }) => {
        const id = clientId === LOCAL_CLIENT_ID ? tasmotaDeviceOf(topic) : undefined
        const plug = id === undefined ? undefined : plugs.get(id)
        if (id === undefined || plug === undefined) return
        let n: number | undefined
        try {
          n = plug.numberOf((JSON.parse(payload.toString()) as { ENERGY?: Record<string, unknown> }).ENERGY)
        } catch {
          return
        }
        if (n === undefined) return
        taken.get(id)?.add(n)
        waiting.get(id)?.delete(n)
      })
    }

    let meter: ModbusMeter | undefined
    const unitOf = new Map<string, number>()
    if (modbusGroups.length > 0) {
      modbusGroups.flatMap(g => g.ids).forEach((id, i) => unitOf.set(id, i + 1))
      const m = await startModbusMeter({
        units: [...unitOf].map(([deviceId, unitId]) => ({ deviceId, unitId })),
        random: seededRandom(Math.floor(options.random() * 4294967296)),
        ...(options.now === undefined ? {} : { now: options.now }),
      })
      meter = m
      closers.push(async () => { await m.close() })
    }

    // Publishing: one tick for all plugs; the fraction carries over, at most a second's worth a tick.
    let timer: NodeJS.Timeout | undefined
    const due = new Map<string, number>()
    const cutStart = new Map<string, number>()
    const inFlight = new Map<string, Set<number>>([...unitOf.keys()].map(id => [id, new Set<number>()]))
    const ids = options.groups.flatMap(g => g.ids)
    const stopSending = (): void => {
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
      meter?.stopAnswering()
    }
    closers.push(async () => { stopSending() })

    return {
      ids,
      ingestConfig: () => ({
        ...(local === undefined
          ? {}
          : {
              mqtt: [{
                url: local.url,
                mqttVersion: '3.1.1',
                clientId: LOCAL_CLIENT_ID,
                keepalive: 5000,
                topics: [{ filter: TASMOTA_FILTER, stream: SOURCE_STREAM, path: 'ENERGY' }],
              }],
            }),
        ...(meter === undefined
          ? {}
          : {
              modbus: [{
                tcp: { host: '127.0.0.1', port: meter.port },
                timeout: MODBUS_TIMEOUT_MS,
                devices: modbusGroups.flatMap(g => g.ids.map(id => ({
                  id, unitId: unitOf.get(id), interval: g.pollIntervalMs, stream: SOURCE_STREAM, registers: METER_REGISTERS,
                }))),
              }],
            }),
        ...(ids.length === 0 ? {} : { rules: ids.map(id => ({ device: id, priority: priorityOf.get(id) })) }),
      }),
      forwarderReady: async (timeoutMs) => {
        await local?.subscribed(LOCAL_CLIENT_ID, TASMOTA_FILTER.replace('{device}', '+'), timeoutMs)
      },
      startSending: () => {
        if (plugs.size === 0 || timer !== undefined) return
        let last = performance.now()
        timer = setInterval(() => {
          const t = performance.now()
          const elapsed = t - last
          last = t
          for (const plug of plugs.values()) {
            const rate = plug.ratePerSecond
            let owed = Math.min((due.get(plug.id) ?? 0) + rate * elapsed / 1000, Math.max(rate, 1))
            const n = Math.floor(owed)
            owed -= n
            due.set(plug.id, owed)
            for (let k = 0; k < n; k++) plug.produce()
          }
        }, TICK_MS)
      },
      stopSending,
      settle: async (timeoutMs) => {
        const deadline = performance.now() + timeoutMs
        for (;;) {
          const n = [...plugs.values()].reduce((sum, p) => sum + p.unacked(), 0)
          const left = deadline - performance.now()
          if (n === 0 || left <= 0) return n
          await sleep(Math.min(SETTLE_POLL_MS, left))
        }
      },
      pendingForForwarder: () => [...waiting.values()].reduce((sum, w) => sum + w.size, 0),
      powerCut: {
        before: () => { for (const id of unitOf.keys()) cutStart.set(id, meter?.answered(id) ?? 0) },
        after: async () => {
          if (meter === undefined) return
          await sleep(AFTER_CUT_MS)
          for (const id of unitOf.keys()) {
            const last = meter.answered(id)
            for (let n = Math.max(1, cutStart.get(id) ?? 1); n <= last; n++) inFlight.get(id)?.add(n)
          }
        },
      },
      isSource: id => priorityOf.has(id),
      numberOf: (deviceId, value) => {
        if (value?.kind !== 'numbers') return undefined
        const plug = plugs.get(deviceId)
        if (plug !== undefined) {
          const n = plug.numberOf(value.numbers)
          const at = n === undefined ? undefined : plug.producedAtMs(n)
          return n === undefined || at === undefined ? undefined : { number: n, sentAtMs: at }
        }
        const n = pollNumberOf(value.numbers)
        const at = n === undefined ? undefined : meter?.answeredAtMs(deviceId, n)
        return n === undefined || at === undefined ? undefined : { number: n, sentAtMs: at }
      },
      sentCount: () => [...plugs.values()].reduce((sum, p) => sum + p.ackedCount(), 0) + [...unitOf.keys()].reduce((sum, id) => sum + (meter?.answered(id) ?? 0), 0),
      ledgers: () => {
        const out = new Map<string, SourceLedger>()
        for (const [id, plug] of plugs) {
          const priority = priorityOf.get(id) ?? 'normal'
          out.set(id, { transport: 'mqtt', sent: plug.ackedNumbers().map(n => ({ seq: n, priority, sentAtMs: plug.producedAtMs(n) ?? 0 })), inFlightAtCut: new Set() })
        }
        for (const id of unitOf.keys()) {
          const priority = priorityOf.get(id) ?? 'normal'
          const answered = meter?.answered(id) ?? 0
          const sent = Array.from({ length: answered }, (_, i) => ({ seq: i + 1, priority, sentAtMs: meter?.answeredAtMs(id, i + 1) ?? 0 }))
          out.set(id, { transport: 'modbus', sent, inFlightAtCut: inFlight.get(id) ?? new Set() })
        }
        return out
      },
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}

/** The summary's rows: one per source device group, its devices' columns summed. */
export function sourceRows (groups: readonly DeviceGroup[], devices: ReadonlyMap<string, DeviceTotals>): SourceRow[] {
  return groups.filter(isSourceGroup).map(g => {
    const row: SourceRow = { transport: g.transport, devices: g.idPattern, count: g.ids.length, priority: g.priority, sent: 0, delivered: 0, evicted: 0, droppedAtIngest: 0, lostBeforeGateway: 0, duplicates: 0, unexplained: 0 }
    for (const d of g.ids.map(id => devices.get(id))) {
      if (d === undefined) continue
      row.sent += d.sent
      row.delivered += d.delivered
      row.evicted += d.evicted
      row.droppedAtIngest += d.droppedAtIngest
      row.lostBeforeGateway += d.lostBeforeGateway
      row.duplicates += d.duplicates
      row.unexplained += d.unexplained
    }
    return row
  })
}
