/**
 * A real Mosquitto broker for tests: one TLS listener on 127.0.0.1 and a free port, client
 * certificates required, the certificate's CN taken as the MQTT username. The config, the PEM
 * files and the log are written into `dir` (use t.testdir()); the process is stopped by its PID
 * (SIGTERM, then SIGKILL after a bound) and never by name, so a system mosquitto is left alone.
 *
 * Mosquitto started as root drops privileges to the user `mosquitto` unless the config says
 * `user root`, and could then not read files in a root-owned temp dir (checked with 2.0.11):
 * so as root we keep root. Non-root, `user` is ignored and mosquitto runs as us.
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './wait.js'

// Kept importable from here, where it was first.
export { freePort }

export const MOSQUITTO_BIN = existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : 'mosquitto'

export interface MosquittoOptions {
  /** A directory the helper may write into: config, PEM files, log. */
  dir: string
  /** PEM strings: the CA client certificates must chain to, the broker's certificate and key. Unused with `plain`. */
  ca: string
  cert: string
  key: string
  /** A plain MQTT listener (mqtt://, anonymous clients allowed), as a gateway's local broker usually is. */
  plain?: boolean
  /** More mosquitto.conf lines, before the listener (e.g. `max_queued_messages 100000`). */
  extraConfig?: readonly string[]
  /** More lines for the listener (e.g. `password_file ...`, which is per listener here). */
  listenerConfig?: readonly string[]
  requireCertificate?: boolean
  useIdentityAsUsername?: boolean
  /** Mosquitto's `tls_version`: 'tlsv1.3' or 'tlsv1.2' (the minimum it accepts). */
  tlsVersion?: 'tlsv1.2' | 'tlsv1.3'
  /** Bound on the wait for the listener; default 10 s. */
  startTimeoutMs?: number
  /** Listen on this port (a broker restart); default a free one. */
  port?: number
  /** Keep sessions and queued messages in `dir` across a restart (saved on SIGTERM). */
  persistence?: boolean
}

/** One "New client connected" log line. */
export interface MosquittoConnection {
  address: string
  clientId: string
  /** 'p5' is MQTT 5, 'p2' 3.1.1 (Mosquitto's numbering). */
  protocol: string
  /** With use_identity_as_username: the client certificate's CN. */
  username: string | undefined
}

export interface Mosquitto {
  port: number
  url: string
  pid: number
  logFile: string
  /** The log so far. */
  log: () => string
  connections: () => MosquittoConnection[]
  stop: () => Promise<void>
}

export async function startMosquitto (options: MosquittoOptions): Promise<Mosquitto> {
  let lastError: unknown
  if (options.port !== undefined) return await startOnce(options, options.port)
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort()
    try {
      return await startOnce(options, port)
    } catch (err) {
      lastError = err
      // Another process took the port between our probe and mosquitto's bind: try another.
      if (!(err instanceof Error) || !/Address already in use/i.test(err.message)) throw err
    }
  }
  throw lastError
}

async function startOnce (options: MosquittoOptions, port: number): Promise<Mosquitto> {
  const { dir } = options
  // mosquitto.conf has no quoting: a value ends at the first space.
  if (/\s/.test(dir)) throw new Error(`startMosquitto: dir must not contain white space: ${dir}`)
  const files = { ca: join(dir, 'mosquitto-ca.pem'), cert: join(dir, 'mosquitto-server.pem'), key: join(dir, 'mosquitto-server-key.pem') }
  writeFileSync(files.ca, options.ca)
  writeFileSync(files.cert, options.cert)
  writeFileSync(files.key, options.key, { mode: 0o600 })
  const logFile = join(dir, `mosquitto-${port}.log`)
  const configFile = join(dir, `mosquitto-${port}.conf`)
  const useIdentity = options.useIdentityAsUsername ?? true
  const tlsLines = options.plain === true
    ? ['allow_anonymous true']
    : [
        `cafile ${files.ca}`,
        `certfile ${files.cert}`,
        `keyfile ${files.key}`,
        `require_certificate ${options.requireCertificate ?? true}`,
        `use_identity_as_username ${useIdentity}`,
        // Without a username every client would be refused; with the identity as username nobody is anonymous.
        `allow_anonymous ${!useIdentity}`,
        ...(options.tlsVersion === undefined ? [] : [`tls_version ${options.tlsVersion}`]),
      ]
  const lines = [
    'per_listener_settings true',
    ...(options.persistence === true ? ['persistence true', `persistence_location ${dir}/`] : ['persistence false']),
    `log_dest file ${logFile}`,
    'log_type all',
    'connection_messages true',
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    ...(options.extraConfig ?? []),
    `listener ${port} 127.0.0.1`,
    ...tlsLines,
    ...(options.listenerConfig ?? []),
  ]
  writeFileSync(configFile, lines.join('\n') + '\n')

  const child = spawn(MOSQUITTO_BIN, ['-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  let exited = false
  let spawnError: Error | undefined
  const exit = new Promise<void>(resolve => {
    child.once('exit', () => { exited = true; resolve() })
    child.once('error', (err) => { spawnError = err; exited = true; resolve() })
  })
  // A safety net when a test dies before its teardown: never leave our broker behind.
  const onProcessExit = (): void => { if (!exited) child.kill('SIGKILL') }
  process.once('exit', onProcessExit)

  const readLog = (): string => existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''
  const stop = async (): Promise<void> => {
    if (!exited) child.kill('SIGTERM')
    const timer = setTimeout(() => { if (!exited) child.kill('SIGKILL') }, 3000)
    await exit
    clearTimeout(timer)
    process.off('exit', onProcessExit)
  }

  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000)
  for (;;) {
    const failed = await Promise.race([
      exit.then(() => spawnError ?? new Error(`mosquitto exited during start-up: ${stderr.trim()} ${readLog().trim()}`)),
      accepts(port).then(ok => ok ? null : undefined),
    ])
    // "running" is logged once every listener is bound: a port answering without it could be
    // another process that grabbed the port first (mosquitto then exits with "Address already in use").
    if (failed === null && /mosquitto version \S+ running/.test(readLog())) break
    if (failed instanceof Error) { await stop(); throw failed }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`mosquitto did not accept connections on 127.0.0.1:${port} within ${options.startTimeoutMs ?? 10_000} ms: ${readLog().trim()}`)
    }
    await sleep(50)
  }

  if (child.pid === undefined) throw new Error('mosquitto has no pid')
  return {
    port,
    url: `${options.plain === true ? 'mqtt' : 'mqtts'}://127.0.0.1:${port}`,
    pid: child.pid,
    logFile,
    log: readLog,
    connections: () => parseConnections(readLog()),
    stop,
  }
}

/** Mosquitto 2.0: "New client connected from 127.0.0.1:40000 as gw-1 (p5, c1, k60, u'gw-1')." */
export function parseConnections (log: string): MosquittoConnection[] {
  const result: MosquittoConnection[] = []
  for (const m of log.matchAll(/New client connected from (\S+) as (\S+) \((p\d+)[^)]*?(?:, u'([^']*)')?\)/g)) {
    result.push({ address: m[1] ?? '', clientId: m[2] ?? '', protocol: m[3] ?? '', username: m[4] })
  }
  return result
}

/** Whether a TCP connection to the port opens within a second. */
async function accepts (port: number): Promise<boolean> {
  return await new Promise<boolean>(resolve => {
    const socket = createConnection({ host: '127.0.0.1', port })
    const done = (ok: boolean): void => { clearTimeout(timer); socket.destroy(); resolve(ok) }
    const timer = setTimeout(() => done(false), 1000)
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}
