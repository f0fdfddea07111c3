/**
 * systemd's notify protocol for a `Type=notify` unit (packaging/edgefwd.service): READY=1 once
 * the forwarder is up, STOPPING=1 when a stop begins, STATUS= lines for `systemctl status`, and
 * WATCHDOG=1 keep-alives when the unit sets WatchdogSec=.
 *
 * Why a child process: NOTIFY_SOCKET is a unix SOCK_DGRAM socket (a path, or the abstract
 * namespace when it begins with `@`), and Node can send neither (node:dgram is UDP only, node:net
 * is stream only). So every message is one run of `systemd-notify ASSIGNMENT...`, the program
 * that ships with systemd, with our environment (NOTIFY_SOCKET included). Since systemd 246 it
 * waits until the manager has processed the message (the BARRIER=1 round trip) before exiting;
 * without that, systemd may look the sender up after it has exited and drop the message. The
 * sender is not the main process, so the unit needs `NotifyAccess=all`.
 *
 * Rules this module keeps:
 * - NOTIFY_SOCKET unset or empty (not under systemd, tests, a shell): everything is a no-op and no
 *   process is ever spawned.
 * - At most one systemd-notify child at a time. READY/STOPPING/STATUS queue behind a running one;
 *   a watchdog ping that falls due while one runs is skipped and counted (a wedged systemd-notify
 *   must not turn into a pile of processes). A skipped ping is harmless until WatchdogSec passes
 *   without any: pings go every WATCHDOG_USEC/2, as sd_watchdog_enabled(3) recommends.
 * - A child that runs longer than `timeoutMs` is killed. Its own barrier wait gives up after 5 s
 *   and says so on stderr, so the default bound is above that.
 * - Failures (systemd-notify missing, exiting non-zero, killed) are warnings, the first at once
 *   and then at most one per key a minute; nothing here throws into the caller.
 */
import { spawn as nodeSpawn, type SpawnOptions } from 'node:child_process'
import { ThrottledLog } from '../ingest/throttled-log.js'
import type { Logger } from './log.js'

export interface SystemdNotifier {
  /** NOTIFY_SOCKET is set: messages are sent. When false every method does nothing. */
  readonly active: boolean
  /** Milliseconds between WATCHDOG=1 pings once ready(); undefined when there is no watchdog. */
  readonly watchdogIntervalMs: number | undefined
  /** Watchdog pings skipped because the previous message was still being sent. */
  readonly skippedPings: number
  /** READY=1 (with STATUS=status), and the first WATCHDOG=1; starts the watchdog pings. */
  ready (status?: string): void
  /** STOPPING=1 (with STATUS=status). The watchdog keeps pinging until close(). */
  stopping (status?: string): void
  status (text: string): void
  /** Stops the watchdog and ignores later calls; a message already queued is still sent. */
  close (): void
}

/** What the notifier needs of a child process; node:child_process's ChildProcess is one. */
export interface NotifyChild {
  readonly stderr?: { on (event: 'data', listener: (chunk: Buffer) => void): unknown } | null
  once (event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown
  once (event: 'error', listener: (err: NodeJS.ErrnoException) => void): unknown
  kill (signal?: NodeJS.Signals): boolean
}

export type SpawnNotify = (command: string, args: string[], options: SpawnOptions) => NotifyChild

export interface SystemdNotifierOptions {
  /** The environment (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID, PATH); given to the child as is. */
  env: Readonly<Record<string, string | undefined>>
  logger: Logger
  /** Default node:child_process spawn; tests inject a fake. */
  spawn?: SpawnNotify
  /** Default 'systemd-notify', looked up in env.PATH. */
  command?: string
  /** Kill a systemd-notify still running after this long; default 10 s. */
  timeoutMs?: number
  /** Compared with WATCHDOG_PID; default process.pid. */
  pid?: number
}

const DEFAULT_TIMEOUT_MS = 10_000
const WARN_INTERVAL_MS = 60_000
/** setInterval's largest delay; anything longer fires after 1 ms instead. */
const MAX_TIMER_MS = 2 ** 31 - 1
/** Bytes of a failing systemd-notify's stderr quoted in the warning. */
const STDERR_QUOTE_BYTES = 500

export function createSystemdNotifier (options: SystemdNotifierOptions): SystemdNotifier {
  const socket = options.env.NOTIFY_SOCKET
  if (socket === undefined || socket === '') return inactiveNotifier
  return new NotifyChannel(options)
}

const inactiveNotifier: SystemdNotifier = Object.freeze({
  active: false,
  watchdogIntervalMs: undefined,
  skippedPings: 0,
  ready () {},
  stopping () {},
  status () {},
  close () {},
})

type Phase = 'starting' | 'ready' | 'closed'

class NotifyChannel implements SystemdNotifier {
  readonly active = true
  readonly watchdogIntervalMs: number | undefined
  private phase: Phase = 'starting'
  private sending: NotifyChild | undefined
  private readonly queue: string[][] = []
  private watchdog: NodeJS.Timeout | undefined
  private skipped = 0
  private readonly warnings: ThrottledLog
  private readonly spawn: SpawnNotify
  private readonly command: string
  private readonly timeoutMs: number

  constructor (private readonly options: SystemdNotifierOptions) {
    this.spawn = options.spawn ?? nodeSpawn
    this.command = options.command ?? 'systemd-notify'
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.warnings = new ThrottledLog(options.logger, WARN_INTERVAL_MS, Date.now)
    this.watchdogIntervalMs = watchdogInterval(options.env, options.pid ?? process.pid, options.logger)
  }

  get skippedPings (): number { return this.skipped }

  ready (status?: string): void {
    if (this.phase !== 'starting') return
    this.phase = 'ready'
    const interval = this.watchdogIntervalMs
    this.send(['READY=1', ...statusLine(status), ...(interval === undefined ? [] : ['WATCHDOG=1'])])
    if (interval === undefined) return
    this.options.logger.info({ intervalMs: interval }, `systemd watchdog: WATCHDOG=1 every ${interval} ms`)
    this.watchdog = setInterval(() => { this.ping() }, interval).unref()
  }

  stopping (status?: string): void {
    if (this.phase === 'closed') return
    this.send(['STOPPING=1', ...statusLine(status)])
  }

  status (text: string): void {
    if (this.phase === 'closed') return
    this.send(statusLine(text))
  }

  close (): void {
    this.phase = 'closed'
    clearInterval(this.watchdog)
    this.watchdog = undefined
  }

  private ping (): void {
    if (this.sending !== undefined) {
      this.skipped++
      this.warnings.warn('ping-skipped', () => ({ skippedPings: this.skipped }),
        `systemd watchdog ping skipped: the previous ${this.command} is still running`)
      return
    }
    this.send(['WATCHDOG=1'])
  }

  private send (args: string[]): void {
    if (this.sending !== undefined) {
      this.queue.push(args)
      return
    }
    this.start(args)
  }

  private start (args: string[]): void {
    let child: NotifyChild
    try {
      child = this.spawn(this.command, args, { env: { ...this.options.env }, stdio: ['ignore', 'ignore', 'pipe'] })
    } catch (err) {
      this.failed('spawn', { err }, `systemd notification not sent: cannot run ${this.command}`)
      this.next()
      return
    }
    this.sending = child
    let stderr = ''
    child.stderr?.on('data', (chunk: Buffer) => { if (stderr.length < STDERR_QUOTE_BYTES) stderr += chunk.toString() })
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, this.timeoutMs).unref()
    let settled = false
    const settle = (report: () => void): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      report()
      this.sending = undefined
      this.next()
    }
    const message = args[0] ?? ''
    child.once('error', err => {
      settle(() => {
        if (err.code === 'ENOENT') {
          this.failed('missing', { command: this.command, message },
            `${this.command} not found (PATH=${this.options.env.PATH ?? ''}): systemd gets no READY=1 or WATCHDOG=1, so a Type=notify unit will fail to start or be killed by its watchdog; install systemd's systemd-notify or run the unit as Type=simple without WatchdogSec`)
        } else {
          this.failed('spawn', { command: this.command, message, err }, `systemd notification not sent: cannot run ${this.command}`)
        }
      })
    })
    child.once('exit', (code, signal) => {
      settle(() => {
        if (code === 0) return
        const fields = { command: this.command, message, code, signal, stderr: stderr.trim().slice(0, STDERR_QUOTE_BYTES) }
        if (timedOut) this.failed('timeout', fields, `systemd notification ${message} not confirmed: ${this.command} killed after ${this.timeoutMs} ms`)
        else this.failed('exit', fields, `systemd notification ${message} failed: ${this.command} exited with ${code ?? signal ?? '?'}${fields.stderr === '' ? '' : `: ${fields.stderr}`}`)
      })
    })
  }

  private next (): void {
    const args = this.queue.shift()
    if (args !== undefined) this.start(args)
  }

  private failed (key: string, fields: Record<string, unknown>, message: string): void {
    this.warnings.warn(key, () => fields, message)
  }
}

/** One STATUS= assignment; a newline would start another assignment, so none gets through. */
function statusLine (text: string | undefined): string[] {
  return text === undefined ? [] : [`STATUS=${text.replace(/[\r\n\0]+/g, ' ')}`]
}

/** WATCHDOG_USEC/2 in ms when the watchdog is on and meant for this process (sd_watchdog_enabled(3)). */
function watchdogInterval (env: Readonly<Record<string, string | undefined>>, pid: number, logger: Logger): number | undefined {
  const usecText = env.WATCHDOG_USEC
  if (usecText === undefined || usecText === '') return undefined
  const usec = /^\d+$/.test(usecText) ? Number(usecText) : NaN
  if (!Number.isSafeInteger(usec) || usec <= 0) {
    logger.warn({ WATCHDOG_USEC: usecText }, 'systemd watchdog off: WATCHDOG_USEC is not a positive whole number of microseconds')
    return undefined
  }
  const watchdogPid = env.WATCHDOG_PID
  if (watchdogPid !== undefined && watchdogPid !== '' && watchdogPid !== String(pid)) {
    logger.info({ WATCHDOG_PID: watchdogPid, pid }, 'systemd watchdog off: WATCHDOG_PID names another process')
    return undefined
  }
  return Math.min(Math.max(1, Math.floor(usec / 2000)), MAX_TIMER_MS)
}
