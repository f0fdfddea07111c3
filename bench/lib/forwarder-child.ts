/**
 * `edgefwd run --config FILE` as a child process, the way a gateway runs it: its JSON log lines on
 * stdout watched for the few a bench waits on, its stderr kept, its ports and metrics address read
 * from its own log lines (every listener is on port 0, so nothing is picked ahead and raced for),
 * and stopped with SIGTERM as systemd stops it.
 *
 * A forwarder under load or garbage logs a great deal: only lines that contain a watched text are
 * parsed, and only the last 20 kept (for error messages). Each watched line is stamped when its
 * chunk arrived, both in wall-clock ms and in process.hrtime ns (the clock of the NOTIFY_SOCKET
 * receiver's datagrams, bench/lib/notify-receiver.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { scrapeMetrics, type Scrape } from './prometheus-scrape.js'

/**
 * Log lines a bench can wait for, by a piece of their msg: src/forwarder.ts's start line, the
 * uplink's first connect, src/cli/commands/run.ts's metrics address and its warning that the
 * budget's heap limit is not in force (the figures would then not be the budget's), and two
 * start-up steps (src/pki/reloader.ts, src/ingest/transports/).
 */
export const WATCHED = ['running: listening on', 'uplink online', 'metrics on http://', 'heap limit is not the budget', 'TLS material loaded', 'ingest listening'] as const
export type Watched = typeof WATCHED[number]

export type LogLine = Record<string, unknown> & { msg?: string, time?: number }

/** What runs: a command and the arguments before `run --config FILE` (the CLI's path for node). */
export interface ForwarderCommand { command: string, args: string[] }

export interface ForwarderExit { code: number | null, signal: NodeJS.Signals | null }

/** How a forwarder exited, as the benches print it: the signal, else the code. */
export const exitText = (exit: ForwarderExit): string => exit.signal ?? String(exit.code)

/** Thrown by waits once the forwarder has gone without being asked to. */
export class ForwarderDied extends Error {}

const running = new Set<ChildProcess>()

/** SIGKILL to every forwarder still running: for a bench's exit handler, so none outlives it. */
export function killRunningForwarders (): void {
  for (const c of running) c.kill('SIGKILL')
}

export class ForwarderChild {
  readonly child: ChildProcess
  readonly pid: number
  /** Date.now() at spawn, for the `time` field of its log lines. */
  readonly spawnedAt = Date.now()
  /** process.hrtime at spawn, for start-up times. */
  readonly spawnedAtNs = process.hrtime.bigint()
  /** The first line of each WATCHED kind, and when it arrived. */
  readonly seen = new Map<Watched, { line: LogLine, at: number, atNs: bigint }>()
  /** The last log lines, for error messages. */
  readonly tail: string[] = []
  stderr = ''
  exit: ForwarderExit | undefined
  stopRequested = false
  readonly exited: Promise<void>

  /** killAfterMs: how long stop() waits after SIGTERM before SIGKILL. */
  constructor (target: ForwarderCommand, config: string, env: NodeJS.ProcessEnv, private readonly killAfterMs: number) {
    this.child = spawn(target.command, [...target.args, 'run', '--config', config], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    running.add(this.child)
    let buffered = ''
    this.child.stdout?.on('data', (chunk: Buffer) => {
      const at = Date.now()
      const atNs = process.hrtime.bigint()
      buffered += chunk.toString()
      const parts = buffered.split('\n')
      buffered = parts.pop() ?? ''
      for (const part of parts) {
        this.tail.push(part)
        if (this.tail.length > 20) this.tail.shift()
        if (!WATCHED.some(w => part.includes(w))) continue
        let line: LogLine
        try { line = JSON.parse(part) as LogLine } catch { continue }
        for (const w of WATCHED) if (!this.seen.has(w) && line.msg?.includes(w) === true) this.seen.set(w, { line, at, atNs })
      }
    })
    this.child.stderr?.on('data', (d: Buffer) => { this.stderr = (this.stderr + d.toString()).slice(-20_000) })
    this.exited = new Promise<void>(resolve => {
      this.child.once('exit', (code, signal) => { running.delete(this.child); this.exit = { code, signal }; resolve() })
      this.child.once('error', err => { running.delete(this.child); this.stderr += String(err); this.exit = { code: null, signal: null }; resolve() })
    })
    if (this.child.pid === undefined) throw new Error(`cannot start ${target.command}`)
    this.pid = this.child.pid
  }

  /** Exited (or said so) without being asked: what a memory budget that does not hold looks like. */
  get oom (): boolean {
    return (this.exit !== undefined && !this.stopRequested) || /heap out of memory/i.test(this.stderr)
  }

  describe (): string {
    const exit = this.exit === undefined ? 'running' : `exit code ${this.exit.code}, signal ${this.exit.signal}`
    return `${exit}; stderr: ${this.stderr.trim().slice(-2000)}; last log lines: ${this.tail.slice(-5).join(' ')}`
  }

  /** Throws ForwarderDied once the process has gone without being asked to. */
  alive (): void {
    if (this.exit !== undefined && !this.stopRequested) throw new ForwarderDied(`the forwarder exited unexpectedly: ${this.describe()}`)
  }

  async waitLine (what: Watched, ms: number): Promise<{ line: LogLine, at: number, atNs: bigint }> {
    const until = Date.now() + ms
    for (;;) {
      const seen = this.seen.get(what)
      if (seen !== undefined) return seen
      this.alive()
      if (Date.now() > until) throw new Error(`no "${what}" log line within ${ms} ms: ${this.describe()}`)
      await sleep(5)
    }
  }

  /** sleep(), watching the process: a forwarder that dies while the bench waits is noticed at once. */
  async idle (ms: number): Promise<void> {
    const until = Date.now() + ms
    for (let left = ms; left > 0; left = until - Date.now()) {
      this.alive()
      await sleep(Math.min(200, left))
    }
    this.alive()
  }

  /** SIGTERM, then SIGKILL after killAfterMs; resolves with how it exited. */
  async stop (): Promise<ForwarderExit> {
    if (this.exit === undefined) {
      this.stopRequested = true
      this.child.kill('SIGTERM')
      const timer = setTimeout(() => { this.child.kill('SIGKILL') }, this.killAfterMs)
      await this.exited
      clearTimeout(timer)
    }
    return this.exit ?? { code: null, signal: null }
  }

  metricsAddress (): string {
    const line = this.seen.get('metrics on http://')?.line
    const address = typeof line?.address === 'string' ? line.address : /http:\/\/([^/]+)\//.exec(line?.msg ?? '')?.[1]
    if (address === undefined) throw new Error(`no metrics address in: ${JSON.stringify(line)}`)
    return address
  }

  /** The port of the listener `kind` (udp or tcp), from the "running: listening on …" line. */
  listenerPort (kind: 'udp' | 'tcp'): number {
    const msg = this.seen.get('running: listening on')?.line.msg ?? ''
    const m = new RegExp(`\\b${kind} [\\d.]+:(\\d+)`).exec(msg)
    if (m === null) throw new Error(`no ${kind} listener in: ${msg}`)
    return Number(m[1])
  }

  /** A scrape, retried for up to 10 s (a scrape can time out while the forwarder is busiest). */
  async scrape (): Promise<Scrape> {
    const until = Date.now() + 10_000
    for (;;) {
      this.alive()
      try { return await scrapeMetrics(this.metricsAddress()) } catch (err) {
        if (Date.now() > until) throw err
        await sleep(200)
      }
    }
  }
}
