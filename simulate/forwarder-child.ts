/**
 * The parent's handle on a forwarder process (forwarder-process.ts): start it and wait until it
 * is ready, watch its stats, stop it gracefully, or kill it as a power cut would.
 */
import { fork, spawn, type ChildProcess, type StdioOptions } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ForwarderMessage, ForwarderStatsMessage } from './forwarder-process.js'

export interface ForwarderChild {
  readonly pid: number | undefined
  /** host:port of its metrics endpoint, when the configuration turns it on. */
  readonly metrics: string | undefined
  /** The latest stats, undefined until the first arrives. */
  stats: () => ForwarderStatsMessage | undefined
  running: () => boolean
  /** SIGKILL: no stop, no flush, as when the power goes. Resolves when the process is gone. */
  kill: () => Promise<void>
  /** A graceful stop (SIGTERM-like); SIGKILL after `timeoutMs`. */
  stop: (timeoutMs?: number) => Promise<void>
}

/**
 * In the single executable (scripts/build-sea.mjs defines it): the hidden first argument with
 * which the binary runs runForwarderProcess (packaging/sea/entry.ts). Undeclared otherwise.
 */
declare const EDGEFWD_FORWARDER_COMMAND: string | undefined

/**
 * What fork() starts. fork(x) runs `process.execPath x ...`: a module file for node, and for the
 * single executable (whose execPath is the binary, which ignores no argument) the hidden command.
 * Under the test runner the sources run as .ts (its loader is inherited through execArgv).
 */
function forwarderEntry (): string {
  if (typeof EDGEFWD_FORWARDER_COMMAND === 'string') return EDGEFWD_FORWARDER_COMMAND
  const here = fileURLToPath(import.meta.url)
  return here.replace(/forwarder-child\.(ts|js)$/, (_m: string, ext: string) => `forwarder-process-main.${ext}`)
}

/**
 * EDGEFWD_SIMULATE_EXEC_PREFIX, when set, is a command put in front of the executable, such as
 * `qemu-aarch64-static`: an arm binary run under qemu-user on another architecture, without
 * binfmt_misc, could not otherwise start a second copy of itself.
 */
function startProcess (args: string[]): ChildProcess {
  const stdio: StdioOptions = ['ignore', 'ignore', 'pipe', 'ipc']
  // The single executable applies its own Node options (its build's execArgv) and would take
  // any passed on the command line for its own arguments.
  const execArgv = typeof EDGEFWD_FORWARDER_COMMAND === 'string' ? [] : process.execArgv
  const prefix = (process.env.EDGEFWD_SIMULATE_EXEC_PREFIX ?? '').split(/\s+/).filter(word => word !== '')
  const [command, ...prefixArgs] = prefix
  if (command === undefined) return fork(forwarderEntry(), args, { stdio, execArgv })
  return spawn(command, [...prefixArgs, process.execPath, ...execArgv, forwarderEntry(), ...args], { stdio })
}

export async function startForwarderChild (options: { configFile: string, logFile: string, readyTimeoutMs?: number }): Promise<ForwarderChild> {
  const child = startProcess(['--config', options.configFile, '--log', options.logFile])
  let latest: ForwarderStatsMessage | undefined
  let exited = false
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { if (stderr.length < 8192) stderr += chunk.toString() })
  const gone = new Promise<void>(resolve => { child.once('exit', () => { exited = true; resolve() }) })
  child.on('message', (m: ForwarderMessage) => { if (m.type === 'stats') latest = m })
  let metrics: string | undefined

  const timeoutMs = options.readyTimeoutMs ?? 30_000
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { fail(new Error(`the forwarder did not start within ${timeoutMs} ms`)) }, timeoutMs)
    const onMessage = (m: ForwarderMessage): void => {
      if (m.type === 'ready') { metrics = m.metrics; cleanup(); resolve() }
      if (m.type === 'failed') fail(new Error(`the forwarder failed to start: ${m.message}`))
    }
    const onExit = (code: number | null): void => { fail(new Error(`the forwarder exited (${String(code)}) before it was ready${stderr === '' ? '' : `: ${stderr.trim()}`}`)) }
    const cleanup = (): void => { clearTimeout(timer); child.off('message', onMessage); child.off('exit', onExit) }
    const fail = (err: Error): void => { cleanup(); child.kill('SIGKILL'); reject(err) }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })

  return {
    pid: child.pid,
    metrics,
    stats: () => latest,
    running: () => !exited,
    async kill () {
      if (!exited) child.kill('SIGKILL')
      await gone
    },
    async stop (stopTimeoutMs = 15_000) {
      if (exited) return
      child.send({ type: 'stop' })
      const timer = setTimeout(() => { child.kill('SIGKILL') }, stopTimeoutMs)
      await gone
      clearTimeout(timer)
    },
  }
}
