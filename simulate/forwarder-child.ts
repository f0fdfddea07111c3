/**
 * The parent's handle on a forwarder process (forwarder-process.ts): start it and wait until it
 * is ready, watch its stats, stop it gracefully, or kill it as a power cut would.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ForwarderMessage, ForwarderStatsMessage } from './forwarder-process.js'

export interface ForwarderChild {
  readonly pid: number | undefined
  /** The latest stats, undefined until the first arrives. */
  stats: () => ForwarderStatsMessage | undefined
  running: () => boolean
  /** SIGKILL: no stop, no flush, as when the power goes. Resolves when the process is gone. */
  kill: () => Promise<void>
  /** A graceful stop (SIGTERM-like); SIGKILL after `timeoutMs`. */
  stop: (timeoutMs?: number) => Promise<void>
}

const here = fileURLToPath(import.meta.url)
// Under the test runner the sources run as .ts (its loader is inherited through execArgv).
const entry = here.replace(/forwarder-child\.(ts|js)$/, (_m: string, ext: string) => `forwarder-process.${ext}`)

export async function startForwarderChild (options: { configFile: string, logFile: string, readyTimeoutMs?: number }): Promise<ForwarderChild> {
  const child: ChildProcess = fork(entry, ['--config', options.configFile, '--log', options.logFile], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  let latest: ForwarderStatsMessage | undefined
  let exited = false
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { if (stderr.length < 8192) stderr += chunk.toString() })
  const gone = new Promise<void>(resolve => { child.once('exit', () => { exited = true; resolve() }) })
  child.on('message', (m: ForwarderMessage) => { if (m.type === 'stats') latest = m })

  const timeoutMs = options.readyTimeoutMs ?? 30_000
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { fail(new Error(`the forwarder did not start within ${timeoutMs} ms`)) }, timeoutMs)
    const onMessage = (m: ForwarderMessage): void => {
      if (m.type === 'ready') { cleanup(); resolve() }
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
