/**
 * `edgefwd run` (the built executable) under a stand-in for systemd: a python3 receiver bound to a
 * unix datagram socket (bench/lib/notify-receiver.ts, which bench:sea uses too) plays the manager's end of NOTIFY_SOCKET, and the real systemd-notify
 * carries the messages. The receiver closes every file descriptor it is passed (SCM_RIGHTS): that
 * is how systemd-notify's BARRIER=1 wait completes, as it does against systemd itself.
 * Then the failures the forwarder must survive: no systemd-notify on PATH, nobody on the socket.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { startNotifyReceiver } from '../../bench/lib/notify-receiver.js'
import { assertBuilt, distRoot } from '../helpers/built.js'
import { makeCa, makeClient, writeSet } from '../helpers/test-pki.js'
import { waitFor } from '../helpers/wait.js'

const WARN = 40
const ca = makeCa()
const client = makeClient(ca, { commonName: 'gw-systemd' })

/** JSON lines of a child's stdout, parsed as they arrive. */
function jsonLines<T> (child: ChildProcess): T[] {
  const lines: T[] = []
  let buffered = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString()
    const parts = buffered.split('\n')
    buffered = parts.pop() ?? ''
    for (const line of parts) if (line.trim() !== '') lines.push(JSON.parse(line) as T)
  })
  return lines
}

interface Started { child: ChildProcess, exited: Promise<number | null>, stderr: () => string }

/** Stopped by its PID in the teardown if the test has not stopped it. */
function startChild (t: Test, command: string, args: string[], env: NodeJS.ProcessEnv): Started {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = new Promise<number | null>(resolve => { child.once('exit', code => { resolve(code) }) })
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
    process.kill(child.pid, 'SIGKILL')
    await exited
  })
  return { child, exited, stderr: () => stderr }
}

/** The manager's end of NOTIFY_SOCKET, at a short path (sun_path holds 108 bytes) removed in the teardown. */
async function startReceiver (t: Test): Promise<{ socket: string, texts: () => string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'edgefwd-sd-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const receiver = await startNotifyReceiver(dir)
  t.teardown(async () => { await receiver.close() })
  return { socket: receiver.socket, texts: () => receiver.datagrams.map(d => d.text) }
}

type LogLine = Record<string, unknown> & { level: number, msg: string }

function startForwarder (t: Test, env: NodeJS.ProcessEnv): Started & { lines: LogLine[] } {
  const dir = t.testdir()
  const files = writeSet(join(dir, 'tls'), { ca: ca.certPem, cert: client.certPem, key: client.keyPem })
  mkdirSync(join(dir, 'store'))
  const config = join(dir, 'edgefwd.yaml')
  // Nothing listens on port 1: the uplink backs off, which is no reason not to be ready.
  writeFileSync(config, [
    'gateway: { id: gw-systemd }',
    `store: { path: ${join(dir, 'store')} }`,
    'log: { level: info }',
    'observe: { metrics: { listen: "127.0.0.1:0" } }',
    `tls: { ca: ${files.ca}, cert: ${files.cert}, key: ${files.key} }`,
    'uplink: { url: "mqtts://127.0.0.1:1", stopTimeout: 2s }',
    'ingest:',
    '  tcp:',
    '    - { address: 127.0.0.1, port: 0, format: frames }',
  ].join('\n'))
  // The test runner may itself run under systemd: only `env` says what this forwarder sees of it.
  const inherited = { ...process.env }
  for (const name of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) delete inherited[name]
  const started = startChild(t, process.execPath, [join(distRoot, 'bin/edgefwd.js'), 'run', '--config', config], { ...inherited, ...env })
  return { ...started, lines: jsonLines<LogLine>(started.child) }
}

const running = (lines: LogLine[]): LogLine | undefined => lines.find(l => l.msg.includes(' running: '))
const systemdWarnings = (lines: LogLine[]): LogLine[] => lines.filter(l => l.module === 'systemd' && l.level === WARN)

t.test('the real systemd-notify: READY=1 once running, WATCHDOG=1 every WATCHDOG_USEC/2, STOPPING=1 on SIGTERM', async t => {
  assertBuilt()
  const { socket, texts } = await startReceiver(t)
  const fwd = startForwarder(t, { NOTIFY_SOCKET: socket, WATCHDOG_USEC: '400000' })

  await waitFor(`READY=1 (stderr: ${fwd.stderr()})`, () => texts().some(d => d.startsWith('READY=1')))
  await waitFor('the running line', () => running(fwd.lines) !== undefined)
  const ready = texts().find(d => d.startsWith('READY=1')) ?? ''
  const listening = (running(fwd.lines)?.listening as string[] | undefined)?.[0] ?? 'none'
  t.match(listening, /^tcp 127\.0\.0\.1:\d+$/)
  // The port is chosen by the OS during the start: a STATUS= naming it was sent after the start.
  t.equal(ready, `READY=1\nSTATUS=listening on ${listening}; delivering to mqtts://127.0.0.1:1\nWATCHDOG=1`)
  t.match(fwd.lines.find(l => l.module === 'systemd'), { msg: 'systemd watchdog: WATCHDOG=1 every 200 ms', intervalMs: 200 })

  await waitFor('three watchdog pings after READY=1', () => texts().filter(d => d === 'WATCHDOG=1').length >= 3, 15_000)
  t.equal(texts().indexOf(ready), texts().findIndex(d => d.includes('WATCHDOG=1')), 'nothing before READY=1')
  t.ok(texts().filter(d => d === 'BARRIER=1').length >= 4, 'systemd-notify waited for each message to be processed (BARRIER=1)')

  fwd.child.kill('SIGTERM')
  await waitFor('STOPPING=1', () => texts().some(d => d.startsWith('STOPPING=1')), 15_000)
  t.equal(texts().find(d => d.startsWith('STOPPING=1')), 'STOPPING=1\nSTATUS=stopping on SIGTERM')
  t.equal(await fwd.exited, 0, `exit 0 on SIGTERM ${fwd.stderr()}`)
  t.ok(fwd.lines.some(l => l.msg === 'edgefwd stopped'))
  t.same(systemdWarnings(fwd.lines).filter(l => !l.msg.includes('ping skipped')), [], 'systemd-notify never failed')
})

t.test('no systemd-notify on PATH: the forwarder runs, stops with exit 0, and says why systemd hears nothing', async t => {
  assertBuilt()
  const { socket, texts } = await startReceiver(t)
  const emptyBin = t.testdir()
  const fwd = startForwarder(t, { NOTIFY_SOCKET: socket, WATCHDOG_USEC: '400000', PATH: emptyBin })
  await waitFor(`the running line (stderr: ${fwd.stderr()})`, () => running(fwd.lines) !== undefined)
  await waitFor('the warning', () => systemdWarnings(fwd.lines).length > 0)
  // Some pings fail too, and are not logged again: a span of several watchdog intervals.
  await new Promise(resolve => setTimeout(resolve, 1000))
  const warnings = systemdWarnings(fwd.lines)
  t.equal(warnings.length, 1, 'one warning, the repeats throttled')
  t.match(warnings[0], { message: 'READY=1', msg: `systemd-notify not found (PATH=${emptyBin}): systemd gets no READY=1 or WATCHDOG=1` })
  fwd.child.kill('SIGTERM')
  t.equal(await fwd.exited, 0, fwd.stderr())
  t.same(texts(), [], 'nothing reached the socket')
})

t.test('nobody on NOTIFY_SOCKET: systemd-notify fails, the warning quotes it, the forwarder runs on', async t => {
  assertBuilt()
  const dir = mkdtempSync(join(tmpdir(), 'edgefwd-sd-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const fwd = startForwarder(t, { NOTIFY_SOCKET: join(dir, 'nobody.sock') })
  await waitFor(`the warning (stderr: ${fwd.stderr()})`, () => systemdWarnings(fwd.lines).length > 0)
  t.ok(running(fwd.lines) !== undefined, 'running')
  t.match(systemdWarnings(fwd.lines)[0], { code: 1, msg: /^systemd notification READY=1 failed: systemd-notify exited with 1: .*Failed to notify init system/ })
  fwd.child.kill('SIGTERM')
  t.equal(await fwd.exited, 0, fwd.stderr())
})
