/**
 * Model-based test of the ring buffer: random sequences of append, lease, ack, nack, expire and
 * restart run against the real store and against a plain model of priorities, capacity, leases,
 * the priority TTL and per-event deadlines; after every step the two must agree. Failing cases found here are kept as named
 * regression tests at the bottom of this file.
 */
import fc from 'fast-check'
import t from 'tap'
import { decodeBatch, encodeEvent } from '../../src/proto/codec.js'
import { MemoryVolume, openLevelStore, openMemoryStore } from '../../src/store/index.js'
import type { EventStore, RingBufferOptions } from '../../src/store/index.js'
import type { EventRecord, Priority } from '../../src/types.js'
import { silentLogger } from '../helpers/logger.js'

/** Key sizes of the store's layout (src/store/keys.ts): 'e' + priority digit + 14 hex digits. */
const KEY = 16
/** An event with a deadline also has an expiry index record ('x' + 14 + 1 + 14), counted with it. */
const EXPIRY_KEY = 30
const CAPACITY = 3000
const TTL_LOW = 1000

interface ModelEvent { seq: number, priority: Priority, bytes: number, time: number, deadline: number | undefined, leased: number | undefined, device: string, deviceSeq: number }

class Model {
  events: ModelEvent[] = []
  seq = 1
  leaseId = 0
  leases = new Map<number, number[]>()
  drops = new Map<string, number>()
  delivered = new Map<string, number>()
  now = 1_000_000

  used (): number { return this.events.reduce((n, e) => n + e.bytes, 0) }

  drop (priority: number, reason: string, n = 1): void {
    const k = `${priority}:${reason}`
    this.drops.set(k, (this.drops.get(k) ?? 0) + n)
  }

  /** The oldest unleased event among priorities <= p, lowest priority first. */
  victim (p: Priority): ModelEvent | undefined {
    for (let q = 0; q <= p; q++) {
      const e = this.events.filter(x => x.priority === q && x.leased === undefined).sort((a, b) => a.seq - b.seq)[0]
      if (e !== undefined) return e
    }
    return undefined
  }
}

interface Real { store: EventStore, reopen: () => Promise<EventStore>, clock: { now: number } }

let deviceSeq = 0
function record (priority: Priority, size: number, now: number, device: string, ttl: number | undefined): EventRecord {
  const r: EventRecord = { deviceId: device, deviceSeq: ++deviceSeq, gatewayTimeMs: now, priority, stream: 's', value: { kind: 'raw', raw: new Uint8Array(size) } }
  if (ttl !== undefined) r.expiresAtMs = now + ttl
  return r
}

class AppendCommand implements fc.AsyncCommand<Model, Real> {
  constructor (readonly items: Array<{ priority: Priority, size: number, device: string, ttl: number | undefined }>) {}
  check (): boolean { return true }
  async run (m: Model, r: Real): Promise<void> {
    const records = this.items.map(i => record(i.priority, i.size, r.clock.now, i.device, i.ttl))
    const expectedRejected: number[] = []
    records.forEach((rec, index) => {
      const seq = m.seq++
      const bytes = KEY + encodeEvent(rec, seq).byteLength + (rec.expiresAtMs !== undefined ? EXPIRY_KEY : 0)
      while (m.used() + bytes > CAPACITY) {
        const v = m.victim(rec.priority)
        if (v === undefined) break
        m.events.splice(m.events.indexOf(v), 1)
        m.drop(v.priority, 'evicted_for_space')
      }
      if (m.used() + bytes > CAPACITY) { expectedRejected.push(index); m.drop(rec.priority, 'rejected_full'); return }
      m.events.push({ seq, priority: rec.priority, bytes, time: rec.gatewayTimeMs, deadline: rec.expiresAtMs, leased: undefined, device: rec.deviceId, deviceSeq: rec.deviceSeq })
    })
    const result = await r.store.append(records)
    if (JSON.stringify(result.rejected.map(x => x.index)) !== JSON.stringify(expectedRejected)) {
      throw new Error(`rejected ${JSON.stringify(result.rejected)}, model expected ${JSON.stringify(expectedRejected)}`)
    }
    checkState(m, r)
  }

  toString (): string { return `append(${JSON.stringify(this.items)})` }
}

class LeaseCommand implements fc.AsyncCommand<Model, Real> {
  constructor (readonly max: number) {}
  check (): boolean { return true }
  async run (m: Model, r: Real): Promise<void> {
    const expected = m.events.filter(e => e.leased === undefined)
      .sort((a, b) => b.priority - a.priority || a.seq - b.seq).slice(0, this.max)
    const lease = await r.store.lease(this.max, 1 << 30)
    const got = lease === null ? [] : decodeBatch(lease.batch).map(e => e.storeSeq)
    if (JSON.stringify(got) !== JSON.stringify(expected.map(e => e.seq))) {
      throw new Error(`leased ${JSON.stringify(got)}, model expected ${JSON.stringify(expected.map(e => e.seq))}`)
    }
    if (lease !== null) {
      m.leases.set(lease.id, expected.map(e => e.seq))
      for (const e of expected) e.leased = lease.id
      leaseReports.set(lease.id, lease.report?.counts.map(c => [`${c.priority}:${c.reason}`, c.count] as const) ?? [])
    }
    checkState(m, r)
  }

  toString (): string { return `lease(${this.max})` }
}

const leaseReports = new Map<number, ReadonlyArray<readonly [string, number]>>()

class SettleCommand implements fc.AsyncCommand<Model, Real> {
  constructor (readonly pick: number, readonly ack: boolean) {}
  check (m: Readonly<Model>): boolean { return m.leases.size > 0 }
  async run (m: Model, r: Real): Promise<void> {
    const ids = [...m.leases.keys()]
    const id = ids[this.pick % ids.length] as number
    const seqs = new Set(m.leases.get(id))
    m.leases.delete(id)
    if (this.ack) {
      m.events = m.events.filter(e => !seqs.has(e.seq))
      for (const [k, n] of leaseReports.get(id) ?? []) m.delivered.set(k, (m.delivered.get(k) ?? 0) + n)
      await r.store.ack(id)
    } else {
      for (const e of m.events) if (seqs.has(e.seq)) e.leased = undefined
      r.store.nack(id)
    }
    checkState(m, r)
  }

  toString (): string { return `${this.ack ? 'ack' : 'nack'}(#${this.pick})` }
}

class ExpireCommand implements fc.AsyncCommand<Model, Real> {
  constructor (readonly advanceMs: number) {}
  check (): boolean { return true }
  async run (m: Model, r: Real): Promise<void> {
    r.clock.now += this.advanceMs
    m.now += this.advanceMs
    // Low has a priority TTL; any event may carry its own deadline; leased events never expire.
    const expired = m.events.filter(e => e.leased === undefined &&
      ((e.priority === 0 && e.time < m.now - TTL_LOW) || (e.deadline !== undefined && e.deadline < m.now)))
    m.events = m.events.filter(e => !expired.includes(e))
    for (const e of expired) m.drop(e.priority, 'expired_ttl')
    const n = await r.store.expire()
    if (n !== expired.length) throw new Error(`expired ${n}, model expected ${expired.length}`)
    checkState(m, r)
  }

  toString (): string { return `expire(+${this.advanceMs}ms)` }
}

class RestartCommand implements fc.AsyncCommand<Model, Real> {
  check (): boolean { return true }
  async run (m: Model, r: Real): Promise<void> {
    await r.store.close()
    r.store = await r.reopen()
    // Leases do not survive a restart; their reports become pending again.
    m.leases.clear()
    for (const e of m.events) e.leased = undefined
    checkState(m, r)
  }

  toString (): string { return 'restart' }
}

function checkState (m: Model, r: Real): void {
  const s = r.store.stats()
  const expected = [0, 1, 2, 3].map(p => m.events.filter(e => e.priority === p).length)
  const got = s.perPriority.map(p => p.events)
  if (JSON.stringify(got) !== JSON.stringify(expected)) throw new Error(`events per priority ${JSON.stringify(got)}, model ${JSON.stringify(expected)}`)
  if (s.usedBytes !== m.used()) throw new Error(`used ${s.usedBytes}, model ${m.used()}`)
  if (s.usedBytes > CAPACITY) throw new Error(`over capacity: ${s.usedBytes}`)
  const drops = Object.fromEntries(s.drops.map(d => [`${['low', 'normal', 'high', 'critical'].indexOf(d.priority)}:${d.reason}`, d.count]))
  if (JSON.stringify(sortKeys(drops)) !== JSON.stringify(sortKeys(Object.fromEntries(m.drops)))) {
    throw new Error(`drops ${JSON.stringify(drops)}, model ${JSON.stringify(Object.fromEntries(m.drops))}`)
  }
}

function sortKeys (o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)))
}

/** At the end: drain everything; every drop must have travelled upstream in an acked report. */
async function drainAndCheckReports (m: Model, r: Real): Promise<void> {
  for (const id of [...m.leases.keys()]) { r.store.nack(id); m.leases.delete(id) }
  for (let l = await r.store.lease(1000, 1 << 30); l !== null; l = await r.store.lease(1000, 1 << 30)) {
    for (const c of l.report?.counts ?? []) m.delivered.set(`${c.priority}:${c.reason}`, (m.delivered.get(`${c.priority}:${c.reason}`) ?? 0) + c.count)
    await r.store.ack(l.id)
  }
  if (JSON.stringify(sortKeys(Object.fromEntries(m.delivered))) !== JSON.stringify(sortKeys(Object.fromEntries(m.drops)))) {
    throw new Error(`reported drops ${JSON.stringify(Object.fromEntries(m.delivered))} != drops ${JSON.stringify(Object.fromEntries(m.drops))}`)
  }
}

const priority = fc.constantFrom<Priority>(0, 1, 2, 3)
const commands = fc.commands([
  fc.array(fc.record({
    priority,
    size: fc.integer({ min: 0, max: 300 }),
    device: fc.constantFrom('a', 'b', 'c'),
    ttl: fc.option(fc.integer({ min: 0, max: 2000 }), { nil: undefined })
  }), { minLength: 1, maxLength: 8 }).map(items => new AppendCommand(items)),
  fc.integer({ min: 1, max: 6 }).map(n => new LeaseCommand(n)),
  fc.tuple(fc.nat(), fc.boolean()).map(([pick, ack]) => new SettleCommand(pick, ack)),
  fc.integer({ min: 0, max: 1500 }).map(ms => new ExpireCommand(ms)),
  fc.constant(new RestartCommand())
], { maxCommands: 60 })

type Opener = (options: RingBufferOptions) => Promise<{ store: EventStore, reopen: () => Promise<EventStore> }>

async function runModel (open: Opener, cmds: Iterable<fc.AsyncCommand<Model, Real>>): Promise<void> {
  leaseReports.clear()
  const clock = { now: 1_000_000 }
  const options: RingBufferOptions = { capacityBytes: CAPACITY, ttlMs: { low: TTL_LOW }, expiryIntervalMs: 0, groupCommit: { windowMs: 0, maxEvents: 100 }, now: () => clock.now }
  const { store, reopen } = await open(options)
  const real: Real = { store, reopen, clock }
  const model = new Model()
  try {
    await fc.asyncModelRun(() => ({ model, real }), cmds)
    await drainAndCheckReports(model, real)
  } finally {
    await real.store.close()
  }
}

const memory: Opener = async options => {
  const volume = new MemoryVolume()
  return { store: await openMemoryStore(options, volume), reopen: async () => await openMemoryStore(options, volume) }
}

t.test('the memory store behaves like the model', async t => {
  await fc.assert(fc.asyncProperty(commands, async cmds => { await runModel(memory, cmds) }), { numRuns: 150 })
  t.pass('150 random command sequences agreed with the model')
})

t.test('the LevelDB store behaves like the model', async t => {
  let n = 0
  const level: Opener = async options => {
    const path = `${t.testdir()}/run-${n++}`
    return { store: await openLevelStore(path, options, silentLogger()), reopen: async () => await openLevelStore(path, options, silentLogger()) }
  }
  await fc.assert(fc.asyncProperty(commands, async cmds => { await runModel(level, cmds) }), { numRuns: 25 })
  t.pass('25 random command sequences agreed with the model')
})
