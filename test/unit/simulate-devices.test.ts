// simulate/devices.ts against small loopback servers: a TCP server that deframes COBS, parses
// frames with the gateway's own parseFrame and can ack (encodeStreamAck), and a UDP server. Only
// 127.0.0.1, listen(0), a bound on every wait, every server and fleet closed in t.teardown.
import { createSocket } from 'node:dgram'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { encodeStreamAck } from '../../src/ingest/ack.js'
import { cobsDecode } from '../../src/ingest/cobs.js'
import { DEFAULT_MAX_FRAME_SIZE, parseFrame, type DeviceEvent } from '../../src/ingest/frame.js'
import { startFleet, type DeviceSpec, type Fleet, type FleetOptions } from '../../simulate/devices.js'
import { waitFor } from '../helpers/wait.js'

const HOST = '127.0.0.1'
const FRAME_OPTS = { maxFrameSize: DEFAULT_MAX_FRAME_SIZE }

function seeded (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), a | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function spec (id: string, extra: Partial<DeviceSpec> = {}): DeviceSpec {
  return { id, transport: 'tcp', acks: false, ratePerSecond: 200, priorities: [['normal', 1]], streams: ['telemetry'], payloadBytes: 16, ...extra }
}

function fleet (t: Test, options: FleetOptions): Fleet {
  const f = startFleet(options)
  t.teardown(() => f.close())
  return f
}

interface TcpServer {
  port: number
  events: DeviceEvent[]
  problems: string[]
  /** Server-side sockets open now. */
  sockets: Set<Socket>
  /** Acks every 100 ms, on each socket, the highest seq per device received on it. */
  setAcking: (on: boolean) => void
  /** Destroys every connection and closes the listener (the forwarder was killed). */
  stop: () => Promise<void>
  /** Listens again on the same port. */
  restart: () => Promise<void>
  /** Stop reading from connections (a stalled gateway) or resume. */
  setReading: (on: boolean) => void
}

async function startTcpServer (t: Test): Promise<TcpServer> {
  const events: DeviceEvent[] = []
  const problems: string[] = []
  const sockets = new Set<Socket>()
  const highest = new Map<Socket, Map<string, number>>()
  let acking = false
  let reading = true
  const onConnection = (s: Socket): void => {
    sockets.add(s)
    highest.set(s, new Map())
    if (!reading) s.pause()
    let pending = Buffer.alloc(0)
    s.on('error', () => {})
    s.on('close', () => { sockets.delete(s); highest.delete(s) })
    s.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk])
      let start = 0
      for (let at = pending.indexOf(0); at !== -1; at = pending.indexOf(0, start)) {
        const piece = pending.subarray(start, at)
        start = at + 1
        if (piece.length === 0) continue
        const frame = cobsDecode(piece)
        const r = frame === undefined ? undefined : parseFrame(frame, FRAME_OPTS)
        if (r?.ok === true && r.kind === 'event') {
          events.push(r.event)
          const m = highest.get(s)
          if (m !== undefined) m.set(r.event.deviceId, Math.max(m.get(r.event.deviceId) ?? 0, r.event.seq))
        } else {
          problems.push(r === undefined ? 'bad_cobs' : r.ok ? r.kind : r.reason)
        }
      }
      pending = Buffer.from(pending.subarray(start))
    })
  }
  let server: Server = createServer(onConnection)
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve))
  const port = (server.address() as AddressInfo).port
  const ackTimer = setInterval(() => {
    if (!acking) return
    for (const [s, m] of highest) for (const [id, seq] of m) s.write(encodeStreamAck(id, seq))
  }, 100)
  const stop = async (): Promise<void> => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  t.teardown(async () => {
    clearInterval(ackTimer)
    if (server.listening) await stop()
  })
  return {
    port,
    events,
    problems,
    sockets,
    setAcking: (on) => { acking = on },
    stop,
    restart: async () => {
      server = createServer(onConnection)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, HOST, () => resolve())
      })
    },
    setReading: (on) => {
      reading = on
      for (const s of sockets) if (on) s.resume(); else s.pause()
    }
  }
}

function seqsOf (events: readonly { seq: number }[]): number[] {
  return events.map((e) => e.seq)
}

function oneToN (n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1)
}

t.test('rate: 200 events/s for 1 s, seqs 1..n, priorities by weight, repeatable with a seed', async (t) => {
  const server = await startTcpServer(t)
  const devices = [
    spec('rate-1', { priorities: [['low', 1], ['high', 3]], streams: ['a', 'b', 'c'] }),
    spec('other', { ratePerSecond: 50, priorities: [['normal', 1], ['critical', 1]], streams: ['x', 'y'] })
  ]
  const startedAt = performance.now()
  const f = fleet(t, { devices, tcp: { host: HOST, port: server.port }, random: seeded(42) })
  await sleep(1000) // the span over which the rate is measured
  f.stopSending()
  // On a loaded machine the sleep can overrun: compare with the time that really passed.
  const expected = 200 * (performance.now() - startedAt) / 1000
  const sent = f.sent().get('rate-1') ?? []
  t.ok(Math.abs(sent.length - expected) <= 25, `${Math.round(expected)} ± 25 events (200/s for ~1 s), got ${sent.length}`)
  t.same(seqsOf(sent), oneToN(sent.length), 'seqs 1..n without gaps')
  const high = sent.filter((e) => e.priority === 'high').length
  const low = sent.filter((e) => e.priority === 'low').length
  t.equal(high + low, sent.length, 'only the weighted priorities')
  t.ok(high / sent.length > 0.62 && high / sent.length < 0.88, `about 3/4 high, got ${high}/${sent.length}`)
  const total = f.stats().sent
  await waitFor('every event at the server', () => server.events.length === total)
  t.same(server.problems, [], 'every frame parses')

  // A second fleet with the same seed, started at another moment (so ticks fall elsewhere):
  // the same choices for the same (device, seq).
  const server2 = await startTcpServer(t)
  await sleep(7)
  const f2 = fleet(t, { devices, tcp: { host: HOST, port: server2.port }, random: seeded(42), tickMs: 13 })
  await sleep(400) // a run long enough to overlap the first fleet's (device, seq) pairs
  f2.stopSending()
  const total2 = f2.stats().sent
  await waitFor('every event at the second server', () => server2.events.length === total2)
  const key = (e: DeviceEvent): string => `${e.deviceId}/${e.seq}`
  const first = new Map(server.events.map((e) => [key(e), e]))
  let compared = 0
  for (const e of server2.events) {
    const a = first.get(key(e))
    if (a === undefined) continue
    compared++
    if (a.priority !== e.priority || a.stream !== e.stream || Buffer.compare(Buffer.from(raw(a)), Buffer.from(raw(e))) !== 0) {
      t.fail(`event ${key(e)} differs between the two fleets`)
      break
    }
  }
  t.ok(compared > 50, `compared ${compared} events`)
  t.equal(new Set(server.events.filter((e) => e.deviceId === 'rate-1').map((e) => e.stream)).size, 3, 'every stream used')
})

function raw (e: DeviceEvent): Uint8Array {
  if (e.value?.kind !== 'raw') throw new Error(`event ${e.seq} has no raw value`)
  return e.value.raw
}

t.test('decoded frames carry device id, seq, priority, stream, deviceTimeMs and the payload size', async (t) => {
  const server = await startTcpServer(t)
  let clock = 1_700_000_000_000
  const f = fleet(t, {
    devices: [spec('frame-1', { ratePerSecond: 100, priorities: [['critical', 1]], streams: ['alarm'], payloadBytes: 37 })],
    tcp: { host: HOST, port: server.port },
    random: seeded(1),
    now: () => ++clock
  })
  await waitFor('10 events', () => server.events.length >= 10)
  f.stopSending()
  const sent = f.sent().get('frame-1') ?? []
  await waitFor('every event', () => server.events.length === sent.length)
  server.events.forEach((e, i) => {
    const s = sent[i]
    t.match(e, { deviceId: 'frame-1', seq: i + 1, priority: 3, stream: 'alarm', deviceTimeMs: s?.sentAtMs })
    t.equal(raw(e).length, 37)
  })
  t.ok((sent[0]?.sentAtMs ?? 0) > 1_700_000_000_000, 'times from the injected clock')
  t.equal(sent[0]?.priority, 'critical')
})

t.test('acks: the server acks every 100 ms; settle() waits until nothing is unacked', async (t) => {
  const server = await startTcpServer(t)
  server.setAcking(true)
  const f = fleet(t, { devices: [spec('ack-1', { acks: true })], tcp: { host: HOST, port: server.port }, random: seeded(2) })
  await waitFor('acks while sending', () => (f.stats().devices[0]?.acked ?? 0) > 0)
  t.ok((f.stats().devices[0]?.acked ?? 0) > 0, 'acks arrive while sending')
  f.stopSending()
  const left = await f.settle(3000)
  t.equal(left, 0, 'settled')
  const st = f.stats()
  t.equal(st.unacked, 0)
  t.equal(st.devices[0]?.acked, st.sent, 'the last seq is acked')
  t.equal(st.resent, 0)
  t.equal(st.devices[0]?.connects, 1)
})

t.test('no ack for written events: after the ack timeout they are written again on the same connection', async (t) => {
  // A gateway acks only what it stored; an event it refused (its store full of higher priorities)
  // is never acked, and when it is the device's last, no later ack covers it.
  const server = await startTcpServer(t)
  const f = fleet(t, { devices: [spec('quiet-1', { acks: true, ratePerSecond: 20 })], tcp: { host: HOST, port: server.port }, random: seeded(7) })
  await waitFor('some events sent', () => f.stats().sent >= 5)
  f.stopSending()
  const last = f.stats().sent
  await waitFor('the last event written twice', () => server.events.filter(e => e.seq === last).length >= 2, 5000)
  const st = f.stats()
  t.ok(st.resent >= last, `every unacked event written again (${st.resent})`)
  t.equal(st.devices[0]?.connects, 1, 'on the same connection')
  server.setAcking(true)
  t.equal(await f.settle(3000), 0, 'settled once acked')
})

t.test('reconnect + resend: after the server is killed and back, every unacked event arrives again', async (t) => {
  const server = await startTcpServer(t)
  server.setAcking(true)
  const f = fleet(t, {
    devices: [spec('cut-1', { acks: true }), spec('cut-noack', { acks: false, ratePerSecond: 100 })],
    tcp: { host: HOST, port: server.port },
    random: seeded(3)
  })
  await waitFor('acks before the cut', () => (f.stats().devices[0]?.acked ?? 0) > 0)
  server.setAcking(false) // events written from here on are unacked at the cut
  const sentAtOff = f.stats().devices[0]?.sent ?? 0
  await waitFor('20 events written since acks stopped', () => (f.stats().devices[0]?.sent ?? 0) >= sentAtOff + 20)
  const ackedBefore = f.stats().devices[0]?.acked ?? 0
  t.ok(ackedBefore > 0, `acked up to ${ackedBefore} before the cut`)
  await server.stop()
  await sleep(600) // refused meanwhile; the device keeps producing into its ring
  const down = f.stats().devices
  t.equal(down[0]?.connected, false)
  t.ok((down[0]?.connectFailures ?? 0) > 0, 'reconnects were refused')
  t.ok((down[1]?.dropped ?? 0) > 0, 'the device without acks lost events while down')
  await server.restart()
  server.setAcking(true)
  await waitFor('the device reconnected', () => f.stats().devices[0]?.connects === 2)
  f.stopSending()
  t.equal(await f.settle(5000), 0, 'settled after the restart')
  const st = f.stats().devices[0]
  const n = f.sent().get('cut-1')?.length ?? 0
  t.same(seqsOf(f.sent().get('cut-1') ?? []), oneToN(n), 'sent() lists seqs 1..n once each')
  const received = new Set(server.events.filter((e) => e.deviceId === 'cut-1').map((e) => e.seq))
  t.same([...received].sort((a, b) => a - b), oneToN(n), 'the server received every seq 1..n (duplicates allowed)')
  t.ok((st?.resent ?? 0) > 0, `resent ${st?.resent ?? 0}`)
  t.equal(st?.connects, 2)
  t.equal(st?.dropped, 0)
  t.same(server.problems, [], 'every frame parses, also across the cut')
})

t.test('backpressure: a stalled server pauses writing; everything arrives once it reads again', async (t) => {
  const server = await startTcpServer(t)
  server.setReading(false)
  const f = fleet(t, {
    devices: [spec('bp-1', { acks: true, ratePerSecond: 4000, payloadBytes: 4096 })],
    tcp: { host: HOST, port: server.port },
    random: seeded(4)
  })
  // 1000 events (4 MB) behind: far more than a socket buffers, so the device stopped writing.
  await waitFor('writing to pause', () => (f.stats().devices[0]?.unacked ?? 0) - (f.stats().devices[0]?.sent ?? 0) >= 1000)
  f.stopSending()
  const st = f.stats().devices[0]
  const produced = st?.unacked ?? 0
  t.ok((st?.sent ?? 0) < produced, `writing paused: ${st?.sent ?? 0} written of ${produced} produced`)
  server.setAcking(true)
  server.setReading(true)
  t.equal(await f.settle(10000), 0, 'settled once the server reads')
  const n = f.sent().get('bp-1')?.length ?? 0
  t.equal(n, produced, 'every produced event was written')
  t.same([...new Set(seqsOf(server.events))].sort((a, b) => a - b), oneToN(n))
})

t.test('udp: one datagram per event, each parses', async (t) => {
  const server = createSocket('udp4')
  const events: DeviceEvent[] = []
  const problems: string[] = []
  server.on('message', (msg) => {
    const r = parseFrame(msg, FRAME_OPTS)
    if (r.ok && r.kind === 'event') events.push(r.event)
    else problems.push(r.ok ? r.kind : r.reason)
  })
  await new Promise<void>((resolve) => server.bind(0, HOST, resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const f = fleet(t, {
    devices: [spec('udp-1', { transport: 'udp', ratePerSecond: 100, payloadBytes: 100, streams: ['u'] })],
    udp: { host: HOST, port: server.address().port },
    random: seeded(5)
  })
  await waitFor('a dozen datagrams sent', () => f.stats().sent >= 12)
  f.stopSending()
  const sent = f.sent().get('udp-1') ?? []
  t.ok(sent.length > 10)
  await waitFor('every datagram', () => events.length === sent.length)
  t.same(seqsOf(events).sort((a, b) => a - b), oneToN(sent.length))
  t.match(events[0], { deviceId: 'udp-1', stream: 'u', priority: 1 })
  t.equal(raw(events[0] as DeviceEvent).length, 100)
  t.same(problems, [])
  t.equal(f.stats().devices[0]?.sendErrors, 0)
})

t.test('a tcp port nobody listens on: no throw, connect failures counted, close() ends cleanly', async (t) => {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, HOST, resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const f = startFleet({
    devices: [spec('nobody-1', { acks: true }), spec('nobody-2', { acks: false })],
    tcp: { host: HOST, port },
    random: seeded(6)
  })
  await waitFor('connect retries and 50 events kept', () => (f.stats().devices[0]?.connectFailures ?? 0) > 1 && f.stats().unacked > 50)
  const st = f.stats()
  t.ok((st.devices[0]?.connectFailures ?? 0) > 1, `retried: ${st.devices[0]?.connectFailures ?? 0} failures`)
  t.equal(st.devices[0]?.connects, 0)
  t.equal(st.sent, 0, 'nothing written')
  t.ok(st.unacked > 50, 'the device with acks keeps its events')
  t.ok((st.devices[1]?.dropped ?? 0) > 50, 'the device without acks drops them')
  t.ok(await f.settle(100) > 0, 'settle() gives up after its timeout')
  await f.close()
  await f.close() // idempotent
  t.pass('closed')
})

t.test('invalid specs are rejected before anything starts', async (t) => {
  const random = seeded(7)
  t.throws(() => startFleet({ devices: [spec('a/b')], tcp: { host: HOST, port: 1 }, random }), RangeError)
  t.throws(() => startFleet({ devices: [spec('x')], random }), /options\.tcp/)
  t.throws(() => startFleet({ devices: [spec('x', { priorities: [['low', 0]] })], tcp: { host: HOST, port: 1 }, random }), /weight/)
  t.throws(() => startFleet({ devices: [spec('x', { streams: ['has space'] })], tcp: { host: HOST, port: 1 }, random }), RangeError)
  t.throws(() => startFleet({ devices: [spec('x'), spec('x')], tcp: { host: HOST, port: 1 }, random }), /twice/)
  t.throws(() => startFleet({ devices: [spec('x', { transport: 'udp', acks: true })], udp: { host: HOST, port: 1 }, random }), /acks/)
})
