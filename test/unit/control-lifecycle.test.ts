/**
 * The Supervisor's and the ConfigRollout's lifecycles: stop and close are final and memoised, a
 * second stop only shortens the first, a stop during a restart leaves no forwarder running, and
 * nothing is applied once stop began. The Supervisor runs stand-in forwarders, each over a memory
 * store, that the test holds at the step it needs; the rollout waits on an injected clock.
 */
import { createPrivateKey } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { configBuilder, type Config } from '../../src/config/index.js'
import { abortableSleep } from '../../src/clock.js'
import { ManualClock } from '../helpers/manual-clock.js'
import { ConfigRollout, type RolloutHost } from '../../src/control/rollout.js'
import { encodeMessage, generateKeyPair, loadPublicKeys, signDocument } from '../../src/control/signing.js'
import { ControlStateStore } from '../../src/control/state.js'
import { Supervisor, type SupervisedForwarder } from '../../src/control/supervisor.js'
import type { HealthReport } from '../../src/observe/http-server.js'
import { ForwarderMetrics } from '../../src/observe/forwarder-metrics.js'
import { MetricsRegistry } from '../../src/observe/metrics.js'
import { openMemoryStore, type EventStore } from '../../src/store/index.js'
import { silentLogger } from '../helpers/logger.js'
import { waitFor } from '../helpers/wait.js'

const operator = generateKeyPair()
const operatorKey = createPrivateKey(operator.privatePem)
const signed = (doc: unknown): Buffer => Buffer.from(encodeMessage(signDocument(Buffer.from(JSON.stringify(doc)), operatorKey)))
/** uplink.window is not a live key: applying it restarts the forwarder. */
const restartUpdate = (version: number): Buffer => signed({ version, restart: true, config: { uplink: { window: 16 } } })

/** A gate a stand-in waits at until the test opens it. */
class Gate {
  private open = (): void => {}
  readonly opened = new Promise<void>(resolve => { this.open = resolve })
  release (): void { this.open() }
}

/** A forwarder stand-in over a memory store; stop() and stopNow() behave as Forwarder's do (memoised, stopNow shortens). */
class StandIn implements SupervisedForwarder {
  stopCalls = 0
  stopNowCalls = 0
  /** Shutdowns run (each closes the store): must end at 1. */
  shutdowns = 0
  reconfigured = 0
  onMessage: ((topic: string, payload: Buffer) => void) | undefined
  readonly stopGate = new Gate()
  private stopping: Promise<void> | undefined

  /** Its stop waits at stopGate (released by the test, or by stopNow). */
  constructor (public currentConfig: Config, readonly store: EventStore) {}

  health (): HealthReport { return { ok: true, checks: {} } }
  readiness (): HealthReport { return this.health() }
  reconfigure (next: Config): void { this.reconfigured++; this.currentConfig = next }
  subscribe (_topics: string[], onMessage: (topic: string, payload: Buffer) => void): void { this.onMessage = onMessage }
  async publishConfirmed (): Promise<boolean> { return true }

  async stop (): Promise<void> {
    this.stopCalls++
    this.stopping ??= this.shutdown()
    await this.stopping
  }

  async stopNow (): Promise<void> {
    this.stopNowCalls++
    this.stopGate.release()
    this.stopping ??= this.shutdown()
    await this.stopping
  }

  get running (): boolean { return this.store.stats().state === 'open' }

  private async shutdown (): Promise<void> {
    this.shutdowns++
    await this.stopGate.opened
    await this.store.close()
  }
}

interface Rig {
  supervisor: Supervisor<StandIn>
  started: StandIn[]
  /** Each start waits for this gate when set (the start of a forwarder in progress). */
  startGate: Gate | undefined
  state: () => Promise<ControlStateStore>
}

async function rig (t: Test): Promise<Rig> {
  const dir = t.testdir({ 'operator.pub': operator.publicPem })
  const file = join(dir, 'gw.json')
  writeFileSync(file, JSON.stringify({
    gateway: { id: 'gw-life' },
    store: { path: join(dir, 'store') },
    uplink: { url: 'mqtts://127.0.0.1:1' },
    control: { publicKeys: [join(dir, 'operator.pub')], stateDir: join(dir, 'control'), probation: '10s' }
  }))
  const metrics = new ForwarderMetrics(new MetricsRegistry(), 'test')
  t.teardown(() => { metrics.close() })
  const r: Rig = {
    supervisor: undefined as unknown as Supervisor<StandIn>,
    started: [],
    startGate: undefined,
    state: async () => await ControlStateStore.open(join(dir, 'control'), silentLogger())
  }
  const build = await configBuilder({ file })
  r.supervisor = await Supervisor.start({
    config: build(),
    build,
    logger: silentLogger(),
    env: {},
    version: 'test',
    metrics,
    onFatal: (err) => { t.fail(`onFatal: ${String(err)}`) },
    startForwarder: async (config) => {
      const standIn = new StandIn(config, await openMemoryStore({ capacityBytes: 1 << 20 }))
      r.started.push(standIn)
      await r.startGate?.opened
      return standIn
    }
  })
  t.teardown(async () => {
    for (const s of r.started) s.stopGate.release()
    r.startGate?.release()
    await r.supervisor.stopNow()
  })
  return r
}

/** A promise's settling as a flag, so a test can wait for it with waitFor. */
function watch (p: Promise<unknown>): { settled: boolean } {
  const w = { settled: false }
  p.then(() => { w.settled = true }, () => { w.settled = true })
  return w
}

function assertAllStopped (t: Test, r: Rig): void {
  t.equal(r.supervisor.current, undefined, 'no forwarder is running')
  t.same(r.started.map(s => s.running), r.started.map(() => false), 'every store is closed')
  t.same(r.started.map(s => s.shutdowns), r.started.map(() => 1), 'each store closed once')
}

t.test('a stop while a restart stops the old forwarder: the restart starts no new one, and the stop waits for it', async t => {
  const r = await rig(t)
  const first = r.started[0] as StandIn
  first.onMessage?.('config', restartUpdate(1))
  await waitFor('the restart stopping the first forwarder', () => first.stopCalls === 1, 5000)
  const stop = r.supervisor.stop()
  const stopped = watch(stop)
  first.stopGate.release()
  await waitFor('the stop to end', () => stopped.settled, 5000)
  await stop
  await r.supervisor.settled()
  t.equal(r.started.length, 1, 'no forwarder was started after the stop')
  assertAllStopped(t, r)
})

t.test('a stop while a restart starts the new forwarder: that one is stopped at once, and the stop waits for it', async t => {
  const r = await rig(t)
  const first = r.started[0] as StandIn
  first.stopGate.release()
  r.startGate = new Gate()
  first.onMessage?.('config', restartUpdate(1))
  await waitFor('the restart starting a second forwarder', () => r.started.length === 2, 5000)
  const stop = r.supervisor.stop()
  const stopped = watch(stop)
  const second = r.started[1] as StandIn
  r.startGate.release()
  await waitFor('the second forwarder asked to stop', () => second.stopCalls + second.stopNowCalls > 0, 5000)
  t.notOk(stopped.settled, 'the stop waits for the forwarder the restart started')
  second.stopGate.release()
  await waitFor('the stop to end', () => stopped.settled, 5000)
  await stop
  await r.supervisor.settled()
  t.equal(r.started.length, 2)
  assertAllStopped(t, r)
})

t.test('stop is memoised and final; stopNow during it shortens that stop, never runs a second', async t => {
  const r = await rig(t)
  const first = r.started[0] as StandIn
  const one = r.supervisor.stop()
  const two = r.supervisor.stop()
  const stopped = watch(Promise.all([one, two]))
  t.equal(first.stopCalls, 1, 'a second stop() asks the forwarder nothing more')
  await new Promise(resolve => setImmediate(resolve))
  t.notOk(stopped.settled, 'the graceful stop waits (batches in flight)')
  const now = r.supervisor.stopNow()
  t.equal(first.stopNowCalls, 1, 'stopNow() shortens the stop in progress')
  await waitFor('both stops to end', () => stopped.settled, 5000)
  await now
  t.equal(first.stopCalls, 1)
  t.equal(first.stopNowCalls, 1)
  await r.supervisor.stopNow()
  t.equal(first.stopNowCalls, 1, 'after the stop, stopNow() does nothing')
  t.same(r.supervisor.health(), { ok: false, checks: { forwarder: { ok: false, detail: 'stopped' } } })
  assertAllStopped(t, r)
})

t.test('an update in hand when stop is called is not applied; one arriving after it is ignored', async t => {
  const r = await rig(t)
  const first = r.started[0] as StandIn
  first.stopGate.release()
  const before = (await r.state()).get()
  // Received, and its handling begun (it is persisting `pending`) when the stop comes.
  first.onMessage?.('config', restartUpdate(1))
  const stop = r.supervisor.stop()
  const stopped = watch(stop)
  await waitFor('the stop to end', () => stopped.settled, 5000)
  await stop
  await r.supervisor.settled()
  first.onMessage?.('config', restartUpdate(2))
  first.onMessage?.('config', signed({ version: 3, config: { log: { level: 'debug' } } }))
  await r.supervisor.settled()
  t.equal(r.started.length, 1, 'no forwarder was started')
  t.equal(first.reconfigured, 0, 'nothing was applied live')
  const after = (await r.state()).get()
  t.equal(after.current, before.current, 'no update became the current configuration')
  t.ok(after.lastFailed === undefined, 'nothing was recorded as failed (a stop is not a failure)')
  t.ok(after.highestVersion <= 1, 'the update after the stop was not processed')
  assertAllStopped(t, r)
})

/** The shared manual clock, counting the sleeps in progress (the probation's waits). */
class ProbationClock extends ManualClock {
  sleeping = 0
  override readonly sleep = async (ms: number, signal?: AbortSignal): Promise<void> => {
    this.sleeping++
    try { await abortableSleep(this, ms, signal) } finally { this.sleeping-- }
  }
}

async function rolloutRig (t: Test, publish: () => Promise<boolean>): Promise<{ rollout: ConfigRollout, applied: Array<{ restart: boolean }>, state: ControlStateStore, clock: ProbationClock }> {
  const dir = t.testdir({ 'operator.pub': operator.publicPem })
  const file = join(dir, 'gw.json')
  writeFileSync(file, JSON.stringify({ gateway: { id: 'gw-roll' }, store: { path: join(dir, 'store') }, uplink: { url: 'mqtts://127.0.0.1:1' } }))
  const build = await configBuilder({ file })
  let current = build()
  const applied: Array<{ restart: boolean }> = []
  const host: RolloutHost = {
    current: () => current,
    apply: async (config, restart) => { applied.push({ restart }); current = config },
    publishConfirmed: publish
  }
  const state = await ControlStateStore.open(join(dir, 'control'), silentLogger())
  const clock = new ProbationClock()
  const registry = new MetricsRegistry()
  const rollout = new ConfigRollout({
    keys: await loadPublicKeys([join(dir, 'operator.pub')]), state, build, host, ackTopic: 'edgefwd/gw-roll/config/ack', gatewayId: 'gw-roll',
    probationMs: 10_000, logger: silentLogger(), registry, clock
  })
  t.teardown(async () => { await rollout.close() })
  return { rollout, applied, state, clock }
}

t.test('the probation runs on the injected clock: its deadline passes when the clock says so', async t => {
  const { rollout, applied, state, clock } = await rolloutRig(t, async () => false)
  rollout.receive(restartUpdate(1))
  await waitFor('the update applied and its probation waiting', () => applied.length === 1 && clock.sleeping === 1, 5000)
  for (let i = 0; i < 10 && applied.length === 1; i++) {
    await waitFor('the probation to sleep', () => clock.sleeping === 1 || applied.length > 1, 5000)
    await clock.advance(1000)
  }
  await rollout.idle()
  t.same(applied, [{ restart: true }, { restart: true }], 'applied, then rolled back at the deadline')
  t.equal(state.get().lastFailed?.version, 1)
})

t.test('close during a probation gives the update up: no rollback applied, it stays pending; close is memoised', async t => {
  const { rollout, applied, state, clock } = await rolloutRig(t, async () => false)
  rollout.receive(restartUpdate(1))
  await waitFor('the probation waiting', () => clock.sleeping === 1, 5000)
  const one = rollout.close()
  const two = rollout.close()
  const closed = watch(Promise.all([one, two]))
  await waitFor('close to end without the clock moving', () => closed.settled, 5000)
  await one
  await rollout.idle()
  t.same(applied, [{ restart: true }], 'applied once, and not rolled back by the close')
  t.equal(state.get().pending?.version, 1, 'still pending: the next start comes back on the last good')
  t.equal(state.get().lastFailed, undefined)
  rollout.receive(restartUpdate(2))
  await rollout.idle()
  t.equal(applied.length, 1, 'nothing is applied after close')
  t.equal(state.get().highestVersion, 1)
})
