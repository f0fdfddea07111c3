/**
 * The systemd notifier with a fake spawn: which systemd-notify runs it makes, with which
 * arguments, when the watchdog pings, and that every failure is a warning and never a throw.
 * test/integration/run-systemd.test.ts runs the real systemd-notify against a real socket.
 */
import { EventEmitter } from 'node:events'
import type { SpawnOptions } from 'node:child_process'
import t from 'tap'
import { createSystemdNotifier, type NotifyChild, type SystemdNotifierOptions } from '../../src/observe/systemd-notify.js'
import { captureLogger } from '../helpers/logger.js'
import type { LogRecord } from '../helpers/log-lines.js'
import { waitFor } from '../helpers/wait.js'

const WARN = 40
const SOCKET = '/run/systemd/notify-test'

class FakeChild extends EventEmitter implements NotifyChild {
  readonly stderr = new EventEmitter()
  readonly killed: NodeJS.Signals[] = []
  exited = false

  kill (signal: NodeJS.Signals = 'SIGTERM'): boolean {
    this.killed.push(signal)
    this.exit(null, signal)
    return true
  }

  exit (code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.exited) return
    this.exited = true
    this.emit('exit', code, signal)
  }
}

interface Spawned { command: string, args: string[], options: SpawnOptions, child: FakeChild }

/**
 * A spawn that records each call. `behaviour` says what the child does: exit 0 on the next turn
 * (default), or nothing until the test calls child.exit().
 */
function fakeSpawn (behaviour: 'exit-0' | 'hang' | ((child: FakeChild) => void) = 'exit-0'): { spawn: SystemdNotifierOptions['spawn'], calls: Spawned[] } {
  const calls: Spawned[] = []
  return {
    calls,
    spawn: (command, args, options) => {
      const child = new FakeChild()
      calls.push({ command, args, options, child })
      if (behaviour === 'exit-0') setImmediate(() => { child.exit(0) })
      else if (typeof behaviour === 'function') behaviour(child)
      return child
    },
  }
}

// The sleeps left in this file are the point of their test: a span in which nothing may be
// spawned, or over which the watchdog's pings are counted.
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
const warnings = (records: LogRecord[]): LogRecord[] => records.filter(r => r.level === WARN)
const pings = (calls: Spawned[]): Spawned[] => calls.filter(c => c.args.length === 1 && c.args[0] === 'WATCHDOG=1')

t.test('without NOTIFY_SOCKET nothing is ever spawned, watchdog or not', async t => {
  for (const env of [{}, { NOTIFY_SOCKET: '' }, { WATCHDOG_USEC: '200000' }, { NOTIFY_SOCKET: '', WATCHDOG_USEC: '200000' }]) {
    const { spawn, calls } = fakeSpawn()
    const { logger, records } = captureLogger()
    const notifier = createSystemdNotifier({ env, logger, spawn })
    t.equal(notifier.active, false, JSON.stringify(env))
    t.equal(notifier.watchdogIntervalMs, undefined)
    notifier.ready('up')
    notifier.status('busy')
    notifier.stopping('down')
    await sleep(250)
    notifier.close()
    t.same(calls, [], 'no process spawned')
    t.same(records(), [], 'nothing logged')
  }
})

t.test('READY=1, STATUS= and STOPPING=1 as arguments of systemd-notify, with the environment inherited', async t => {
  const { spawn, calls } = fakeSpawn()
  const { logger, records } = captureLogger()
  const env = { NOTIFY_SOCKET: SOCKET, PATH: '/usr/bin:/bin' }
  const notifier = createSystemdNotifier({ env, logger, spawn })
  t.equal(notifier.active, true)
  t.equal(notifier.watchdogIntervalMs, undefined, 'no WATCHDOG_USEC: no watchdog')
  notifier.ready('listening on tcp 127.0.0.1:7000; delivering to mqtts://broker:8883')
  notifier.status('two\nlines\r\nhere')
  notifier.stopping('stopping on SIGTERM')
  notifier.stopping()
  await waitFor('four runs', () => calls.length === 4 && calls.every(c => c.child.exited))
  t.same(calls.map(c => c.command), ['systemd-notify', 'systemd-notify', 'systemd-notify', 'systemd-notify'])
  t.same(calls.map(c => c.args), [
    ['READY=1', 'STATUS=listening on tcp 127.0.0.1:7000; delivering to mqtts://broker:8883'],
    ['STATUS=two lines here'],
    ['STOPPING=1', 'STATUS=stopping on SIGTERM'],
    ['STOPPING=1'],
  ], 'a newline in a status cannot start another assignment')
  t.match(calls[0]?.options, { env, stdio: ['ignore', 'ignore', 'pipe'] }, 'NOTIFY_SOCKET reaches the child')
  t.same(warnings(records()), [])
  notifier.ready('again')
  notifier.close()
  notifier.status('after close')
  await sleep(50)
  t.equal(calls.length, 4, 'a second ready() and anything after close() send nothing')
})

t.test('messages are serialized: one systemd-notify at a time, the others queued in order', async t => {
  const { spawn, calls } = fakeSpawn('hang')
  const { logger } = captureLogger()
  const notifier = createSystemdNotifier({ env: { NOTIFY_SOCKET: SOCKET }, logger, spawn, command: '/usr/bin/systemd-notify' })
  notifier.ready('up')
  notifier.status('one')
  notifier.stopping('two')
  await sleep(20)
  t.equal(calls.length, 1, 'the others wait for the first to finish')
  notifier.close()
  calls[0]?.child.exit(0)
  t.equal(calls.length, 2)
  calls[1]?.child.exit(0)
  calls[2]?.child.exit(0)
  t.same(calls.map(c => c.args), [['READY=1', 'STATUS=up'], ['STATUS=one'], ['STOPPING=1', 'STATUS=two']],
    'queued messages go out in order, even after close()')
  t.equal(calls[0]?.command, '/usr/bin/systemd-notify', 'the command option is used')
})

t.test('watchdog: WATCHDOG=1 with READY=1, then every WATCHDOG_USEC/2 until close()', async t => {
  const { spawn, calls } = fakeSpawn()
  const { logger, records } = captureLogger()
  const notifier = createSystemdNotifier({ env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '200000' }, logger, spawn })
  t.equal(notifier.watchdogIntervalMs, 100, '200000 µs / 2 = 100 ms')
  await sleep(250)
  t.equal(calls.length, 0, 'no ping before ready()')
  const started = Date.now()
  notifier.ready('up')
  t.same(calls[0]?.args, ['READY=1', 'STATUS=up', 'WATCHDOG=1'], 'the first ping goes with READY=1')
  await sleep(1000)
  const elapsed = Date.now() - started
  const count = pings(calls).length
  // Timers never fire early, so more pings than elapsed/100 (+1 for ms rounding) means a shorter
  // interval; a loaded machine can only make fewer, hence the low lower bound.
  t.ok(count >= 3 && count <= Math.floor(elapsed / 100) + 1, `${count} pings in ${elapsed} ms`)
  t.match(records(), [{ msg: 'systemd watchdog: WATCHDOG=1 every 100 ms', intervalMs: 100 }])
  notifier.close()
  const atClose = calls.length
  await sleep(300)
  t.equal(calls.length, atClose, 'close() stops the pings')
  t.equal(notifier.skippedPings, 0)
})

t.test('WATCHDOG_PID of another process: no watchdog; our own pid: a watchdog', async t => {
  {
    const { spawn, calls } = fakeSpawn()
    const { logger, records } = captureLogger()
    const notifier = createSystemdNotifier({ env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '200000', WATCHDOG_PID: String(process.pid + 1) }, logger, spawn })
    t.equal(notifier.watchdogIntervalMs, undefined)
    notifier.ready()
    await sleep(350)
    notifier.close()
    t.same(calls.map(c => c.args), [['READY=1']], 'READY=1 only, no WATCHDOG=1')
    t.match(records(), [{ msg: /WATCHDOG_PID names another process/ }])
  }
  {
    const { spawn, calls } = fakeSpawn()
    const { logger } = captureLogger()
    const notifier = createSystemdNotifier({ env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '200000', WATCHDOG_PID: '4242' }, logger, spawn, pid: 4242 })
    t.equal(notifier.watchdogIntervalMs, 100)
    notifier.ready()
    await waitFor('a ping', () => pings(calls).length >= 1)
    notifier.close()
    t.same(calls[0]?.args, ['READY=1', 'WATCHDOG=1'])
  }
})

t.test('an invalid WATCHDOG_USEC: one warning, no watchdog', async t => {
  for (const value of ['abc', '0', '-200000', '1.5', '200000us', '99999999999999999999']) {
    const { spawn, calls } = fakeSpawn()
    const { logger, records } = captureLogger()
    const notifier = createSystemdNotifier({ env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: value }, logger, spawn })
    t.equal(notifier.watchdogIntervalMs, undefined, value)
    notifier.ready()
    await sleep(30)
    notifier.close()
    t.same(calls.map(c => c.args), [['READY=1']])
    t.match(warnings(records()), [{ WATCHDOG_USEC: value, msg: /WATCHDOG_USEC is not a positive whole number/ }])
    t.equal(warnings(records()).length, 1)
  }
})

t.test('a ping due while systemd-notify still runs is skipped and counted, not piled up', async t => {
  const { spawn, calls } = fakeSpawn('hang')
  const { logger, records } = captureLogger()
  const notifier = createSystemdNotifier({ env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '100000' }, logger, spawn })
  t.teardown(() => { notifier.close() })
  notifier.ready('up')
  await waitFor('three skipped pings', () => notifier.skippedPings >= 3)
  notifier.stopping('down')
  t.equal(calls.length, 1, 'still only the READY=1 run')
  const skipped = warnings(records()).filter(r => /ping skipped/.test(r.msg ?? ''))
  t.equal(skipped.length, 1, 'one warning: the rest are throttled')
  t.match(skipped[0], { skippedPings: 1 })
  calls[0]?.child.exit(0)
  t.same(calls[1]?.args, ['STOPPING=1', 'STATUS=down'], 'the queued message goes first')
  calls[1]?.child.exit(0)
  await waitFor('a ping once the line is free', () => pings(calls).length >= 1)
})

t.test('systemd-notify missing (ENOENT): a clear warning, throttled; the caller never sees an error', async t => {
  const { spawn, calls } = fakeSpawn(child => {
    setImmediate(() => { child.emit('error', Object.assign(new Error('spawn systemd-notify ENOENT'), { code: 'ENOENT' })) })
  })
  const { logger, records } = captureLogger()
  const notifier = createSystemdNotifier({ env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '100000', PATH: '/nowhere' }, logger, spawn })
  notifier.ready('up')
  await waitFor('several attempts', () => calls.length >= 4)
  notifier.close()
  const missing = warnings(records())
  t.equal(missing.length, 1, 'one warning, the repeats throttled')
  t.match(missing[0], { command: 'systemd-notify', message: 'READY=1', msg: /systemd-notify not found \(PATH=\/nowhere\): systemd gets no READY=1 or WATCHDOG=1/ })
})

t.test('the real spawn with a command that does not exist: a warning, no throw', async t => {
  const { logger, records } = captureLogger()
  const notifier = createSystemdNotifier({ env: { NOTIFY_SOCKET: SOCKET, PATH: process.env.PATH }, logger, command: 'edgefwd-test-no-such-systemd-notify' })
  notifier.ready('up')
  await waitFor('the warning', () => warnings(records()).length > 0)
  notifier.close()
  t.match(warnings(records())[0], { msg: /edgefwd-test-no-such-systemd-notify not found/ })
})

t.test('systemd-notify failing, hanging or not spawnable: warnings, and the next message still goes', async t => {
  await t.test('exit 1: the warning quotes its stderr', async t => {
    const { spawn } = fakeSpawn(child => {
      setImmediate(() => { child.stderr.emit('data', Buffer.from('Failed to notify init system: Connection refused\n')); child.exit(1) })
    })
    const { logger, records } = captureLogger()
    const notifier = createSystemdNotifier({ env: { NOTIFY_SOCKET: SOCKET }, logger, spawn })
    notifier.ready()
    await waitFor('the warning', () => warnings(records()).length > 0)
    t.match(warnings(records())[0], { code: 1, message: 'READY=1', msg: 'systemd notification READY=1 failed: systemd-notify exited with 1: Failed to notify init system: Connection refused' })
  })
  await t.test('no exit within timeoutMs: killed, and a warning', async t => {
    const { spawn, calls } = fakeSpawn('hang')
    const { logger, records } = captureLogger()
    const notifier = createSystemdNotifier({ env: { NOTIFY_SOCKET: SOCKET }, logger, spawn, timeoutMs: 50 })
    notifier.ready()
    notifier.stopping()
    await waitFor('the warning', () => warnings(records()).length > 0)
    t.same(calls[0]?.child.killed, ['SIGKILL'])
    t.match(warnings(records())[0], { signal: 'SIGKILL', msg: 'systemd notification READY=1 not confirmed: systemd-notify killed after 50 ms' })
    t.same(calls[1]?.args, ['STOPPING=1'], 'the queued message is sent after the kill')
    calls[1]?.child.exit(0)
  })
  await t.test('an error other than ENOENT (EACCES): a warning naming it', async t => {
    const { spawn } = fakeSpawn(child => {
      setImmediate(() => { child.emit('error', Object.assign(new Error('spawn systemd-notify EACCES'), { code: 'EACCES' })) })
    })
    const { logger, records } = captureLogger()
    const notifier = createSystemdNotifier({ env: { NOTIFY_SOCKET: SOCKET }, logger, spawn })
    notifier.ready()
    await waitFor('the warning', () => warnings(records()).length > 0)
    t.match(warnings(records())[0], { err: { code: 'EACCES' }, msg: 'systemd notification not sent: cannot run systemd-notify' })
  })
  await t.test('spawn throwing: a warning, the queue goes on', async t => {
    let attempts = 0
    const { logger, records } = captureLogger()
    const notifier = createSystemdNotifier({
      env: { NOTIFY_SOCKET: SOCKET },
      logger,
      spawn: (command, args, options) => {
        attempts++
        if (attempts === 1) throw new Error('EAGAIN')
        return fakeSpawn().spawn?.(command, args, options) as NotifyChild
      },
    })
    t.doesNotThrow(() => { notifier.ready() })
    notifier.stopping()
    await waitFor('the second spawn', () => attempts >= 2)
    t.equal(attempts, 2)
    t.match(warnings(records()), [{ msg: 'systemd notification not sent: cannot run systemd-notify' }])
  })
})
