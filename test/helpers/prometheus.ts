/**
 * A real Prometheus server for tests (Debian's `prometheus` package): listening on 127.0.0.1 and
 * a free port, its TSDB and log in `dir` (use t.testdir()), stopped by its PID (SIGTERM, then
 * SIGKILL after a bound) and never by name, so a system Prometheus is left alone.
 */
import { spawn } from 'node:child_process'
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './mosquitto.js'

export const PROMETHEUS_INSTALL_HINT = 'prometheus not found: install Debian\'s `prometheus` package (apt-get install --no-install-recommends prometheus)'

export interface PrometheusOptions {
  dir: string
  /** prometheus.yml, as text. */
  config: string
  /** Bound on the wait for /-/ready; default 30 s. */
  startTimeoutMs?: number
}

/** One sample of an instant vector: its labels and value. */
export interface Sample { metric: Record<string, string>, value: number }

/** One entry of /api/v1/alerts. */
export interface ActiveAlert { labels: Record<string, string>, state: 'pending' | 'firing' }

/** One rule of /api/v1/rules, as far as the tests read it. */
export interface RuleState { name: string, health: string, lastError?: string }

export interface Prometheus {
  url: string
  pid: number
  log: () => string
  /** An instant query, evaluated now; throws Prometheus's error (a parse error, say) with the query. */
  query: (expr: string) => Promise<Sample[]>
  /** GET an API path (e.g. /api/v1/targets) and return its `data`. */
  api: <T>(path: string) => Promise<T>
  alerts: () => Promise<ActiveAlert[]>
  rules: () => Promise<RuleState[]>
  stop: () => Promise<void>
}

export async function startPrometheus (options: PrometheusOptions): Promise<Prometheus> {
  const port = await freePort()
  const configFile = join(options.dir, 'prometheus.yml')
  const logFile = join(options.dir, 'prometheus.log')
  writeFileSync(configFile, options.config)
  const child = spawn('prometheus', [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${join(options.dir, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  const logStream = createWriteStream(logFile)
  child.stderr.pipe(logStream)
  let exited = false
  let spawnError: NodeJS.ErrnoException | undefined
  const exit = new Promise<void>(resolve => {
    child.once('exit', () => { exited = true; resolve() })
    child.once('error', (err) => { spawnError = err; exited = true; resolve() })
  })
  const onProcessExit = (): void => { if (!exited) child.kill('SIGKILL') }
  process.once('exit', onProcessExit)
  const log = (): string => { try { return readFileSync(logFile, 'utf8') } catch { return '' } }
  const stop = async (): Promise<void> => {
    if (!exited) child.kill('SIGTERM')
    const timer = setTimeout(() => { if (!exited) child.kill('SIGKILL') }, 10_000)
    await exit
    clearTimeout(timer)
    process.off('exit', onProcessExit)
  }

  const url = `http://127.0.0.1:${port}`
  const timeoutMs = options.startTimeoutMs ?? 30_000
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (exited) {
      await stop()
      if (spawnError?.code === 'ENOENT') throw new Error(PROMETHEUS_INSTALL_HINT)
      throw new Error(`prometheus exited during start-up: ${spawnError?.message ?? log().trim()}`)
    }
    const ready = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).then(r => r.ok, () => false)
    if (ready) break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`prometheus was not ready on ${url} within ${timeoutMs} ms: ${log().trim()}`)
    }
    await sleep(100)
  }
  if (child.pid === undefined) throw new Error('prometheus has no pid')

  const api = async <T>(path: string): Promise<T> => {
    const response = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(10_000) })
    const body = await response.json() as { status: string, data?: T, error?: string, errorType?: string }
    if (body.status !== 'success') throw new Error(`${path}: ${body.errorType ?? ''} ${body.error ?? response.status}`)
    return body.data as T
  }
  return {
    url,
    pid: child.pid,
    log,
    api,
    async query (expr) {
      try {
        const data = await api<{ resultType: string, result: Array<{ metric: Record<string, string>, value: [number, string] }> | [number, string] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)
        if (data.resultType === 'scalar') return [{ metric: {}, value: Number((data.result as [number, string])[1]) }]
        return (data.result as Array<{ metric: Record<string, string>, value: [number, string] }>).map(s => ({ metric: s.metric, value: Number(s.value[1]) }))
      } catch (err) {
        throw new Error(`query ${expr}: ${(err as Error).message}`)
      }
    },
    async alerts () {
      return (await api<{ alerts: ActiveAlert[] }>('/api/v1/alerts')).alerts
    },
    async rules () {
      const data = await api<{ groups: Array<{ rules: RuleState[] }> }>('/api/v1/rules')
      return data.groups.flatMap(g => g.rules)
    },
    stop,
  }
}
