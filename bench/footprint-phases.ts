/**
 * The footprint bench's measured phases on a running forwarder: (a) drain a stored backlog, (b)
 * soak under steady TCP + UDP device load, (c) a burst of malformed frames. Each samples the
 * forwarder's memory under its own phase name. What each figure means is in
 * bench/footprint-bench.ts's module comment.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { encodeFrame, encodeStreamFrame } from '../src/ingest/frame.js'
import { decodeEnvelopeMessage } from '../src/sink/decode.js'
import { deviceEventBody } from './lib/device-frames.js'
import { sendMalformedTcp, sendMalformedUdp, TcpDevice, udpSocket, type UdpDevice } from './lib/device-senders.js'
import { exitText, type ForwarderChild } from './lib/forwarder-child.js'
import type { RssSampler } from './lib/proc-memory.js'
import { metricTotal, type Scrape } from './lib/prometheus-scrape.js'
import { kernelUdpDrops } from './lib/udp-kernel-drops.js'
import { EVENTS, GARBAGE, mb, progress, RATE, SOAK_S } from './footprint-settings.js'

const TCP_DEVICES = 10
const UDP_DEVICES = 10
const TICK_MS = 10

/** The kernel's drops at the forwarder's UDP listener; NaN (null in the JSON line) when not listed. */
const udpDrops = (port: number): number => kernelUdpDrops(port) ?? NaN

// ── (a) drain ──────────────────────────────────────────────────────────────────────────────────

export interface DrainResult { eps: number, seconds: number, epsFromSpawn: number, stop: string }

export async function drain (f: ForwarderChild, sampler: RssSampler): Promise<DrainResult> {
  sampler.phase('drain', 100)
  await f.waitLine('metrics on http://', 60_000)
  const online = await f.waitLine('uplink online', 60_000)
  // The line's own time (pino's epoch ms), not when the bench read it.
  const onlineAt = typeof online.line.time === 'number' ? online.line.time : online.at
  // Generous: 60 s plus 1M events per 100 s (bench:uplink drains 1M in 5–6 s here).
  const until = Date.now() + 60_000 + EVENTS / 10
  let emptyAt: number
  for (;;) {
    const s = await f.scrape()
    if (metricTotal(s, 'edgefwd_store_events') === 0 && metricTotal(s, 'edgefwd_events_acked_total') >= EVENTS) { emptyAt = Date.now(); break }
    if (Date.now() > until) throw new Error(`the store did not drain within ${((until - f.spawnedAt) / 1000).toFixed(0)} s: ${metricTotal(s, 'edgefwd_store_events')} events left, ${metricTotal(s, 'edgefwd_events_acked_total')} acked`)
    await f.idle(200)
  }
  sampler.phase('drain-stop', 1000)
  const stop = exitText(await f.stop())
  const seconds = (emptyAt - onlineAt) / 1000
  return { eps: EVENTS / seconds, seconds, epsFromSpawn: EVENTS / ((emptyAt - f.spawnedAt) / 1000), stop }
}

// ── (b) soak ───────────────────────────────────────────────────────────────────────────────────

/** The unique seqs delivered for one device: a byte per seq, grown as seqs arrive. */
class SeqSet {
  private bytes = new Uint8Array(1024)
  /** True when seq is new. */
  add (seq: number): boolean {
    if (seq >= this.bytes.length) {
      const grown = new Uint8Array(Math.max(seq + 1, this.bytes.length * 2))
      grown.set(this.bytes)
      this.bytes = grown
    }
    if (this.bytes[seq] === 1) return false
    this.bytes[seq] = 1
    return true
  }

  has (seq: number): boolean { return this.bytes[seq] === 1 }
}

/** What a subscriber on the events topic received, by device and seq. */
export class Delivered {
  readonly byDevice = new Map<string, SeqSet>()
  duplicates = 0
  undecodable = 0
  unique = 0

  take (payload: Uint8Array): void {
    try {
      for (const e of decodeEnvelopeMessage(payload).events) {
        let seqs = this.byDevice.get(e.deviceId)
        if (seqs === undefined) this.byDevice.set(e.deviceId, seqs = new SeqSet())
        if (seqs.add(e.deviceSeq)) this.unique++
        else this.duplicates++
      }
    } catch { this.undecodable++ }
  }
}

export interface SoakResult {
  sent: number
  rateEps: number
  accepted: number
  delivered: number
  lost: number
  ackedUndelivered: number
  duplicates: number
  undecodable: number
  udpKernelDrops: number
  overloadDrops: number
  rejected: number
  storeDropped: number
  settled: boolean
  rssMbLastMinute: number
  rssMbGrowthPerMin: number
}

/** Least-squares slope of y over x. */
function slope (points: Array<[number, number]>): number {
  const n = points.length
  if (n < 2) return NaN
  const mx = points.reduce((s, [x]) => s + x, 0) / n
  const my = points.reduce((s, [, y]) => s + y, 0) / n
  let num = 0
  let den = 0
  for (const [x, y] of points) { num += (x - mx) * (y - my); den += (x - mx) ** 2 }
  return den === 0 ? NaN : num / den
}

export async function soak (f: ForwarderChild, sampler: RssSampler, delivered: Delivered): Promise<SoakResult> {
  const tcpPort = f.listenerPort('tcp')
  const udpPort = f.listenerPort('udp')
  const tcp = await Promise.all(Array.from({ length: TCP_DEVICES }, async (_, d) => await TcpDevice.connect(`tcp-${String(d).padStart(3, '0')}`, tcpPort)))
  const udp: UdpDevice[] = await Promise.all(Array.from({ length: UDP_DEVICES }, async (_, d) => ({ id: `udp-${String(d).padStart(3, '0')}`, socket: await udpSocket(udpPort), sent: 0 })))
  const before = await f.scrape()
  const dropsBefore = udpDrops(udpPort)
  sampler.phase('soak', 1000)
  const count = Math.round(RATE * SOAK_S)
  const loadStart = Date.now()
  let sent = 0
  let lastReport = loadStart
  // Each tick sends what the elapsed time says is due, so timer lag is caught up; event i goes
  // to device i mod 20, so TCP and UDP each carry half. A TCP device writes its tick's frames at once.
  while (sent < count) {
    const due = Math.min(count, Math.floor(RATE * (Date.now() - loadStart) / 1000))
    const batches = new Map<TcpDevice, Uint8Array[]>()
    for (; sent < due; sent++) {
      const d = sent % (TCP_DEVICES + UDP_DEVICES)
      const t = tcp[d]
      if (t !== undefined) {
        t.sent++
        const list = batches.get(t) ?? []
        list.push(encodeStreamFrame({ type: 'event', body: deviceEventBody(t.id, t.sent) }))
        batches.set(t, list)
      } else {
        const u = udp[d - TCP_DEVICES] as UdpDevice
        u.sent++
        u.socket.send(encodeFrame({ type: 'event', body: deviceEventBody(u.id, u.sent) }))
      }
    }
    for (const [device, frames] of batches) device.send(frames)
    f.alive()
    if (Date.now() - lastReport >= 30_000) {
      lastReport = Date.now()
      progress(`  soak: ${sent} sent, ${delivered.unique} delivered, RSS ${mb(sampler.samples.at(-1)?.rss ?? NaN).toFixed(1)} MB`)
    }
    await sleep(TICK_MS)
  }
  const loadEnd = Date.now()
  // The RSS figures are of the load itself; the settling that follows still counts for the peak.
  const loadSamples = sampler.samples.filter(s => s.phase === 'soak' && s.t >= loadStart && s.t <= loadEnd)

  // Settled: every TCP event acked, and the subscriber has as many events as the forwarder took.
  let settled = false
  let after: Scrape
  const settleUntil = Date.now() + 60_000
  await f.idle(500) // datagrams still in the socket buffer, the last group commit
  while (Date.now() < settleUntil) {
    after = await f.scrape()
    const accepted = metricTotal(after, 'edgefwd_events_accepted_total') - metricTotal(before, 'edgefwd_events_accepted_total')
    if (tcp.every(t => t.acked >= t.sent) && delivered.unique >= accepted) { settled = true; break }
    await f.idle(200)
  }
  after = await f.scrape()
  for (const t of tcp) await t.close()
  for (const u of udp) u.socket.close()

  const delta = (name: string): number => metricTotal(after, name) - metricTotal(before, name)
  const accepted = delta('edgefwd_events_accepted_total')
  let ackedUndelivered = 0
  for (const t of tcp) {
    const seqs = delivered.byDevice.get(t.id)
    for (let seq = 1; seq <= t.acked; seq++) if (seqs?.has(seq) !== true) ackedUndelivered++
  }
  const lastMinute = loadSamples.filter(s => s.t >= loadEnd - 60_000)
  const secondHalf = loadSamples.filter(s => s.t >= loadStart + (loadEnd - loadStart) / 2)
  return {
    sent,
    rateEps: sent / ((loadEnd - loadStart) / 1000),
    accepted,
    delivered: delivered.unique,
    lost: Math.max(0, accepted - delivered.unique),
    ackedUndelivered,
    duplicates: delivered.duplicates,
    undecodable: delivered.undecodable,
    udpKernelDrops: udpDrops(udpPort) - dropsBefore,
    overloadDrops: delta('edgefwd_ingest_overload_drops_total'),
    rejected: delta('edgefwd_frames_rejected_total'),
    storeDropped: delta('edgefwd_events_dropped_total'),
    settled,
    rssMbLastMinute: mb(lastMinute.reduce((s, x) => s + x.rss, 0) / lastMinute.length),
    rssMbGrowthPerMin: slope(secondHalf.map(s => [(s.t - loadStart) / 60_000, mb(s.rss)]))
  }
}

// ── (c) garbage ────────────────────────────────────────────────────────────────────────────────

export interface GarbageResult { sent: number, rejected: number, udpKernelDrops: number, overloadDrops: number, unaccounted: number, seconds: number, settled: boolean }

export async function garbage (f: ForwarderChild, sampler: RssSampler): Promise<GarbageResult> {
  const tcpPort = f.listenerPort('tcp')
  const udpPort = f.listenerPort('udp')
  const before = await f.scrape()
  const dropsBefore = udpDrops(udpPort)
  sampler.phase('garbage', 1000)
  const start = Date.now()
  const udpCount = Math.floor(GARBAGE / 2)
  // Both at once, and the forwarder watched meanwhile: a burst that kills it must show as oom.
  let sending = true
  const sends = Promise.all([sendMalformedTcp(tcpPort, GARBAGE - udpCount), sendMalformedUdp(udpPort, udpCount)]).finally(() => { sending = false })
  while (sending) {
    f.alive()
    await Promise.race([sends.catch(() => {}), sleep(200)])
  }
  f.alive()
  await sends
  const sentSeconds = (Date.now() - start) / 1000
  // Settled: every frame is rejected or dropped on the way, or nothing moved for 3 s (bounded).
  const until = Date.now() + 60_000
  let seen = -1
  let stillSince = Date.now()
  let settled = false
  let after = before
  for (;;) {
    after = await f.scrape()
    const count = metricTotal(after, 'edgefwd_frames_rejected_total') - metricTotal(before, 'edgefwd_frames_rejected_total') +
      metricTotal(after, 'edgefwd_ingest_overload_drops_total') - metricTotal(before, 'edgefwd_ingest_overload_drops_total') +
      udpDrops(udpPort) - dropsBefore
    if (count >= GARBAGE) { settled = true; break }
    if (count !== seen) { seen = count; stillSince = Date.now() }
    if (Date.now() - stillSince > 3000 || Date.now() > until) break
    await f.idle(200)
  }
  const rejected = metricTotal(after, 'edgefwd_frames_rejected_total') - metricTotal(before, 'edgefwd_frames_rejected_total')
  const overloadDrops = metricTotal(after, 'edgefwd_ingest_overload_drops_total') - metricTotal(before, 'edgefwd_ingest_overload_drops_total')
  const udpKernelDrops = udpDrops(udpPort) - dropsBefore
  return { sent: GARBAGE, rejected, udpKernelDrops, overloadDrops, unaccounted: GARBAGE - rejected - overloadDrops - udpKernelDrops, seconds: sentSeconds, settled }
}
