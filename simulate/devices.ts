/**
 * A fleet of simulated devices for `edgefwd simulate`: each device produces events at its rate
 * and sends them to the forwarder's real ingest listeners, TCP (COBS stream frames, with acks,
 * tcp-device.ts) or UDP (one raw frame per datagram, udp-device.ts), as
 * firmware-bridge/PROTOCOL.md describes. The frames come from the project's own encoders; what a
 * device produces, and how it stays the same for a seed, is device-events.ts.
 *
 * Scheduling: one setInterval per fleet. Each tick every device adds rate × elapsed to its due
 * count (the fraction carries over) and sends floor(due) events; due is capped at max(rate, 1), so
 * a stalled event loop yields at most one second's worth of events in one tick, not a flood.
 * Elapsed time is measured with performance.now(); `options.now` only stamps events.
 *
 * `sent()` lists every event a device produced, with sentAtMs = deviceTimeMs = now() when it was
 * produced; `lost()` the seqs of those it gave up itself: dropped while disconnected, left
 * unwritten when a no-ack connection dropped, pushed out of a full ring before they were acked,
 * or a UDP send that failed. So the simulation can tell a device's own losses from the
 * gateway's, event by event. (`DeviceStats.sent` counts first writes to a socket.)
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { deviceIdProblem, eventProblem, PRIORITIES } from '../src/index.js'
import { EventMaker, type DeviceSpec, type DeviceStats, type SentEvent, type SimDevice } from './device-events.js'
import { seededRandom } from './random.js'
import { TcpDevice } from './tcp-device.js'
import { UdpDevice } from './udp-device.js'

export type { DeviceSpec, DeviceStats, SentEvent } from './device-events.js'
export { MAX_QUEUED } from './tcp-device.js'

export interface FleetStats { sent: number, resent: number, unacked: number, dropped: number, devices: DeviceStats[] }

export interface FleetOptions {
  devices: DeviceSpec[]
  /** Required when any device uses tcp. */
  tcp?: { host: string, port: number }
  /** Required when any device uses udp. */
  udp?: { host: string, port: number }
  /** Seeded; every device's choices are derived from it (see the module comment). */
  random: () => number
  /** ms clock for deviceTimeMs and sentAtMs; default Date.now. */
  now?: () => number
  /** Scheduling granularity, default 20. */
  tickMs?: number
}

export interface Fleet {
  /** Every event each device produced, by device id, in seq order (resends do not add entries). */
  sent: () => ReadonlyMap<string, readonly SentEvent[]>
  /** The seqs each device gave up itself (see the module comment): lost before the gateway. */
  lost: () => ReadonlyMap<string, ReadonlySet<number>>
  stats: () => FleetStats
  /** Stop producing new events; tcp devices keep their connections (to get acks and resend). */
  stopSending: () => void
  /** Resolves when every tcp-with-acks device has no unacked event, or after timeoutMs; returns the number still unacked. */
  settle: (timeoutMs: number) => Promise<number>
  /** Closes every socket and timer. */
  close: () => Promise<void>
}

const SETTLE_POLL_MS = 25
const MAX_PAYLOAD_BYTES = 8192

function checkSpec (d: DeviceSpec, options: FleetOptions): void {
  const where = `device ${JSON.stringify(d.id)}`
  const idProblem = typeof d.id === 'string' ? deviceIdProblem(d.id) : 'id must be a string'
  if (idProblem !== undefined) throw new RangeError(`${where}: ${idProblem}`)
  if (d.transport !== 'tcp' && d.transport !== 'udp') throw new RangeError(`${where}: transport must be tcp or udp`)
  if (d.transport === 'tcp' && options.tcp === undefined) throw new RangeError(`${where} uses tcp: options.tcp is required`)
  if (d.transport === 'udp' && options.udp === undefined) throw new RangeError(`${where} uses udp: options.udp is required`)
  if (d.transport === 'udp' && d.acks) throw new RangeError(`${where}: acks need tcp (UDP has none, PROTOCOL.md §4)`)
  if (!(Number.isFinite(d.ratePerSecond) && d.ratePerSecond >= 0)) throw new RangeError(`${where}: ratePerSecond must be a finite number >= 0`)
  if (!Number.isInteger(d.payloadBytes) || d.payloadBytes < 0 || d.payloadBytes > MAX_PAYLOAD_BYTES) {
    throw new RangeError(`${where}: payloadBytes must be an integer 0..${MAX_PAYLOAD_BYTES}`)
  }
  let total = 0
  for (const [name, w] of d.priorities) {
    if (!PRIORITIES.includes(name)) throw new RangeError(`${where}: unknown priority ${JSON.stringify(name)}`)
    if (!(Number.isFinite(w) && w >= 0)) throw new RangeError(`${where}: priority weights must be finite and >= 0`)
    total += w
  }
  if (!(total > 0)) throw new RangeError(`${where}: priorities need a positive total weight`)
  if (d.streams.length === 0) throw new RangeError(`${where}: streams must not be empty`)
  for (const stream of d.streams) {
    const problem = eventProblem({ deviceId: d.id, seq: 1, deviceTimeMs: 0, priority: 1, stream, value: { kind: 'raw', raw: new Uint8Array(d.payloadBytes) } })
    if (problem !== undefined) throw new RangeError(`${where}, stream ${JSON.stringify(stream)}: ${problem}`)
  }
}

/** Starts every device now: TCP devices dial at once, events flow from the first tick. Throws RangeError for an invalid spec. */
export function startFleet (options: FleetOptions): Fleet {
  const tickMs = options.tickMs ?? 20
  if (!(Number.isFinite(tickMs) && tickMs > 0)) throw new RangeError('tickMs must be a positive number')
  const ids = new Set<string>()
  for (const d of options.devices) {
    checkSpec(d, options)
    if (ids.has(d.id)) throw new RangeError(`device ${JSON.stringify(d.id)} appears twice`)
    ids.add(d.id)
  }
  const now = options.now ?? Date.now
  const seeds = options.devices.map(() => Math.floor(options.random() * 4294967296))
  const jitter = seededRandom(Math.floor(options.random() * 4294967296))
  const devices: SimDevice[] = options.devices.map((spec, i) => {
    const maker = new EventMaker(spec, seededRandom(seeds[i] as number), now)
    return spec.transport === 'tcp'
      ? new TcpDevice(spec, maker, options.tcp as { host: string, port: number }, jitter)
      : new UdpDevice(spec, maker, options.udp as { host: string, port: number })
  })
  const sent = new Map<string, readonly SentEvent[]>(devices.map((d) => [d.spec.id, d.maker.sent]))
  const lost = new Map<string, ReadonlySet<number>>(devices.map((d) => [d.spec.id, d.maker.lost]))
  const due = devices.map(() => 0)
  let last = performance.now()
  let timer: NodeJS.Timeout | undefined = setInterval(tick, tickMs)
  let closing: Promise<void> | undefined

  function tick (): void {
    const t = performance.now()
    const elapsed = t - last
    last = t
    devices.forEach((d, i) => {
      const rate = d.spec.ratePerSecond
      let owed = Math.min((due[i] as number) + rate * elapsed / 1000, Math.max(rate, 1))
      const n = Math.floor(owed)
      owed -= n
      due[i] = owed
      for (let k = 0; k < n; k++) d.produce()
    })
  }

  function stopSending (): void {
    if (timer !== undefined) clearInterval(timer)
    timer = undefined
  }

  function unacked (): number {
    return devices.reduce((sum, d) => sum + d.unacked(), 0)
  }

  return {
    sent: () => sent,
    lost: () => lost,
    stats: () => {
      const list = devices.map((d) => d.stats())
      const sum = (k: 'sent' | 'resent' | 'unacked' | 'dropped'): number => list.reduce((s, d) => s + d[k], 0)
      return { sent: sum('sent'), resent: sum('resent'), unacked: sum('unacked'), dropped: sum('dropped'), devices: list }
    },
    stopSending,
    settle: async (timeoutMs: number) => {
      const deadline = performance.now() + timeoutMs
      for (;;) {
        const n = unacked()
        const left = deadline - performance.now()
        if (n === 0 || left <= 0 || closing !== undefined) return n
        await sleep(Math.min(SETTLE_POLL_MS, left))
      }
    },
    close: async () => {
      stopSending()
      closing ??= Promise.all(devices.map(async (d) => await d.close())).then(() => {})
      await closing
    }
  }
}
