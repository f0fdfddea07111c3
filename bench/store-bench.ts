/**
 * `npm run bench:store`: throughput and memory of the LevelDB ring buffer on this machine.
 * Prints a table, then one JSON line (the last line) with the figures.
 *
 *   append_eps          durable (`sync`) appends of ~200-byte events from many concurrent appenders
 *   append_relaxed_eps  the same with durability `relaxed`
 *   drain_eps           lease + ack of a 1M-event backlog (8 leases of 1000 in flight, like the uplink)
 *   evict_eps           appends into a full store (every append evicts)
 *   rss_mb_peak         peak resident set size over the whole run
 *
 * Environment: BENCH_EVENTS (default 1000000), BENCH_DIR (default a temp dir).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLogger } from '../src/observe/log.js'
import { openLevelStore } from '../src/store/index.js'
import type { EventStore, RingBufferOptions } from '../src/store/index.js'
import type { EventRecord, Priority } from '../src/types.js'

const N = Number(process.env.BENCH_EVENTS ?? 1_000_000)
const APPENDERS = Number(process.env.BENCH_APPENDERS ?? 128)
const PER_APPEND = Number(process.env.BENCH_PER_APPEND ?? 8)
const root = process.env.BENCH_DIR ?? mkdtempSync(join(tmpdir(), 'edgefwd-bench-'))
const logger = createLogger({ level: 'warn' })

let rssPeak = 0
let anonPeak = 0
/** Anonymous resident memory (heap, native allocations); the rest of RSS is file pages (code, mmapped tables). */
function rssAnon (): number {
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find(l => l.startsWith('RssAnon:'))
    return Number(/\d+/.exec(line ?? '')?.[0] ?? 0) * 1024
  } catch {
    return 0
  }
}
const sampler = setInterval(() => {
  rssPeak = Math.max(rssPeak, process.memoryUsage.rss())
  anonPeak = Math.max(anonPeak, rssAnon())
}, 20)
/** With BENCH_MEMORY=1, prints memory after each phase (to see which one grows). */
function memory (phase: string): void {
  if (process.env.BENCH_MEMORY !== '1') return
  const m = process.memoryUsage()
  const status = readFileSync('/proc/self/status', 'utf8')
  const kb = (name: string): number => Number(/\d+/.exec(status.split('\n').find(l => l.startsWith(name)) ?? '')?.[0] ?? 0) * 1024
  console.error(`${phase}: rss ${mb(m.rss)} (anon ${mb(kb('RssAnon'))}, file ${mb(kb('RssFile'))}) heapTotal ${mb(m.heapTotal)} heapUsed ${mb(m.heapUsed)} external ${mb(m.external)} peak so far ${mb(rssPeak)}`)
}
function mb (n: number): string { return (n / 1024 / 1024).toFixed(0) }

/** ~200 bytes encoded: an id, a stream, 8 numbers and two tags, like a sensor reading. */
function makeEvent (i: number): EventRecord {
  return {
    deviceId: `sensor-${String(i % 50).padStart(4, '0')}`,
    deviceSeq: i,
    gatewayTimeMs: Date.now(),
    priority: (i % 4) as Priority,
    stream: 'telemetry',
    value: { kind: 'numbers', numbers: { t: 21.5 + (i % 7), rh: 40.1, p: 1013.2, v: 3.3, i: 0.12, co2: 415, pm25: 7.5, lux: 300 + (i % 100) } },
    tags: { site: 'plant-7', line: 'L3' }
  }
}

async function fill (store: EventStore, total: number): Promise<number> {
  let next = 0
  const start = process.hrtime.bigint()
  await Promise.all(Array.from({ length: APPENDERS }, async () => {
    while (next < total) {
      const batch = []
      for (let k = 0; k < PER_APPEND && next < total; k++) batch.push(makeEvent(next++))
      await store.append(batch)
    }
  }))
  return total / (Number(process.hrtime.bigint() - start) / 1e9)
}

async function open (name: string, options: Partial<RingBufferOptions>): Promise<EventStore> {
  return await openLevelStore(join(root, name), { capacityBytes: 1024 * 1024 * 1024, compactAfterDeletes: 0, ...options }, logger)
}

async function main (): Promise<void> {
  const rows: Array<[string, string]> = []

  const durable = await open('durable', { durability: 'sync' })
  memory('open')
  const appendEps = await fill(durable, N)
  memory('append')
  rows.push([`append (sync, ${APPENDERS} appenders × ${PER_APPEND} events)`, `${Math.round(appendEps).toLocaleString()} events/s`])
  const stats = durable.stats()
  const bytesPerEvent = stats.perPriority.reduce((n, p) => n + p.bytes, 0) / stats.events
  rows.push(['stored bytes per event (key + value)', bytesPerEvent.toFixed(1)])

  // Drain the backlog the way the uplink will: a window of 8 leases, each acked when "delivered".
  const drainStart = process.hrtime.bigint()
  let drained = 0
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (;;) {
      const lease = await durable.lease(1000, 1 << 20)
      if (lease === null) return
      drained += lease.events.length
      await durable.ack(lease.id)
    }
  }))
  memory('drain')
  const drainEps = drained / (Number(process.hrtime.bigint() - drainStart) / 1e9)
  rows.push([`drain (lease + ack, ${drained.toLocaleString()} events)`, `${Math.round(drainEps).toLocaleString()} events/s`])
  const compactStart = process.hrtime.bigint()
  await durable.compact()
  rows.push(['compact after the drain', `${(Number(process.hrtime.bigint() - compactStart) / 1e6).toFixed(0)} ms`])
  await durable.close()

  const relaxed = await open('relaxed', { durability: 'relaxed' })
  const relaxedEps = await fill(relaxed, Math.min(N, 500_000))
  memory('relaxed')
  rows.push(['append (relaxed)', `${Math.round(relaxedEps).toLocaleString()} events/s`])
  await relaxed.close()

  // A store that holds ~50k events, filled, then 200k more appends that each evict.
  const small = await open('evict', { durability: 'sync', capacityBytes: Math.round(50_000 * bytesPerEvent) })
  await fill(small, 60_000)
  const evictEps = await fill(small, Math.min(N, 200_000))
  memory('evict')
  const evicted = small.stats().drops.reduce((n, d) => n + d.count, 0)
  rows.push([`append into a full store (${evicted.toLocaleString()} evicted)`, `${Math.round(evictEps).toLocaleString()} events/s`])
  await small.close()

  clearInterval(sampler)
  rssPeak = Math.max(rssPeak, process.memoryUsage.rss())
  anonPeak = Math.max(anonPeak, rssAnon())
  rows.push(['RSS peak (of which anonymous)', `${(rssPeak / 1024 / 1024).toFixed(1)} MB (${(anonPeak / 1024 / 1024).toFixed(1)} MB)`])

  const width = Math.max(...rows.map(r => r[0].length))
  console.log(`edgefwd store benchmark — ${N.toLocaleString()} events, Node ${process.version} ${process.execArgv.join(' ')}, ${root}`)
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`)
  console.log(JSON.stringify({
    append_eps: Math.round(appendEps),
    append_relaxed_eps: Math.round(relaxedEps),
    drain_eps: Math.round(drainEps),
    evict_eps: Math.round(evictEps),
    rss_mb_peak: Number((rssPeak / 1024 / 1024).toFixed(1)),
    rss_anon_mb_peak: Number((anonPeak / 1024 / 1024).toFixed(1)),
    bytes_per_event_stored: Number(bytesPerEvent.toFixed(1)),
    events: N
  }))
  if (process.env.BENCH_DIR === undefined) rmSync(root, { recursive: true, force: true })
}

main().catch(err => { console.error(err); process.exitCode = 1 })
