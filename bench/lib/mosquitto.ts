/**
 * A Mosquitto broker for benchmarks: one mTLS listener on 127.0.0.1 (client certificates required,
 * the CN as username), persistence off, logging to a file in `dir`. Stopped by its PID, never by
 * name. `restart()` starts it again on the SAME port (the reconnect measurement needs the
 * gateway's address to stay put). bench/ cannot import test/, hence this small copy of
 * test/helpers/mosquitto.ts.
 *
 * As root, mosquitto would drop to the user `mosquitto` and could not read a root-owned temp dir:
 * so as root the config says `user root`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './wait.js'

const BIN = existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : 'mosquitto'

export interface BenchMosquittoOptions {
  dir: string
  ca: string
  cert: string
  key: string
  /** Extra config lines for the listener (e.g. `max_inflight_messages 0`). */
  extra?: readonly string[]
  /** A plain MQTT listener without TLS, anonymous clients allowed (a gateway's local broker); ca/cert/key unused. */
  plain?: boolean
}

export interface BenchMosquitto {
  port: number
  url: string
  pid: () => number | undefined
  stop: () => Promise<void>
  /** Starts again on the same port; resolves when it accepts connections. */
  restart: () => Promise<void>
}

export async function startBenchMosquitto (options: BenchMosquittoOptions): Promise<BenchMosquitto> {
  const { dir } = options
  if (/\s/.test(dir)) throw new Error(`mosquitto dir must not contain white space: ${dir}`)
  const files = { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server-key.pem') }
  writeFileSync(files.ca, options.ca)
  writeFileSync(files.cert, options.cert)
  writeFileSync(files.key, options.key, { mode: 0o600 })
  const port = await freePort()
  const logFile = join(dir, 'mosquitto.log')
  const configFile = join(dir, 'mosquitto.conf')
  writeFileSync(configFile, [
    'per_listener_settings true',
    'persistence false',
    `log_dest file ${logFile}`,
    'log_type error',
    'log_type warning',
    'log_type notice',
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    ...(options.extra ?? []),
    `listener ${port} 127.0.0.1`,
    ...(options.plain === true
      ? ['allow_anonymous true']
      : [`cafile ${files.ca}`, `certfile ${files.cert}`, `keyfile ${files.key}`, 'require_certificate true', 'use_identity_as_username true', 'allow_anonymous false']),
  ].join('\n') + '\n')

  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  const killOnExit = (): void => { child?.kill('SIGKILL') }
  process.on('exit', killOnExit)

  const start = async (): Promise<void> => {
    const proc = spawn(BIN, ['-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    proc.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
    let gone = false
    exited = new Promise<void>(resolve => { proc.once('exit', () => { gone = true; resolve() }); proc.once('error', () => { gone = true; resolve() }) })
    child = proc
    const deadline = Date.now() + 10_000
    while (!(await accepts(port))) {
      // A restart right after a stop can meet the port in TIME_WAIT for a moment: bounded retries.
      if (gone) throw new Error(`mosquitto exited during start-up: ${stderr.trim()} ${existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-500) : ''}`)
      if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`mosquitto did not accept on 127.0.0.1:${port} within 10 s`) }
      await sleep(5)
    }
  }
  const stop = async (): Promise<void> => {
    const proc = child
    if (proc === undefined || proc.exitCode !== null) return
    proc.kill('SIGTERM')
    const timer = setTimeout(() => { proc.kill('SIGKILL') }, 3000)
    await exited
    clearTimeout(timer)
    child = undefined
  }

  await start()
  return {
    port,
    url: `${options.plain === true ? 'mqtt' : 'mqtts'}://127.0.0.1:${port}`,
    pid: () => child?.pid,
    stop: async () => { await stop(); process.off('exit', killOnExit) },
    restart: async () => { await stop(); await start() },
  }
}

async function accepts (port: number): Promise<boolean> {
  return await new Promise<boolean>(resolve => {
    const socket = createConnection({ host: '127.0.0.1', port })
    const done = (ok: boolean): void => { clearTimeout(timer); socket.destroy(); resolve(ok) }
    const timer = setTimeout(() => { done(false) }, 1000)
    socket.once('connect', () => { done(true) })
    socket.once('error', () => { done(false) })
  })
}
