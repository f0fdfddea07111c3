import { writeFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createNetServer, type Socket } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { statusCommand } from '../../src/cli/commands/status.js'
import { main } from '../../src/cli/program.js'
import { isEdgefwdError } from '../../src/errors.js'
import { startObserveServer, type HealthReport, type ObserveServer } from '../../src/observe/http-server.js'
import { MetricsRegistry } from '../../src/observe/metrics.js'
import { silentLogger } from '../helpers/logger.js'
import { freePort } from '../helpers/wait.js'

interface Run { code: number, stdout: string, stderr: string }

async function run (argv: string[]): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const io = { stdout: { write: (s: string) => { stdout += s } }, stderr: { write: (s: string) => { stderr += s } } }
  const code = await main(argv, {}, io, [statusCommand])
  return { code, stdout, stderr }
}

const MiB = 1024 * 1024
const READY: HealthReport = { ok: true, checks: { uplink: { ok: true, detail: 'online' }, store: { ok: true, detail: 'open' } } }
const NOT_READY: HealthReport = { ok: false, checks: { uplink: { ok: false, detail: 'offline for 6 min' }, store: { ok: true, detail: 'open' } } }

/** A registry holding the figures of a gateway that has been busy for about two hours. */
function busyRegistry (): MetricsRegistry {
  const r = new MetricsRegistry()
  r.set('edgefwd_build_info', 1, { version: '0.1.0' })
  for (const state of ['idle', 'connecting', 'online', 'backoff', 'closing', 'closed']) r.set('edgefwd_uplink_state', state === 'online' ? 1 : 0, { state })
  r.inc('edgefwd_uplink_connects_total', {}, 12)
  r.inc('edgefwd_uplink_connect_failures_total', { reason: 'connect' }, 1)
  r.inc('edgefwd_uplink_connect_failures_total', { reason: 'refused_135' }, 2)
  r.inc('edgefwd_uplink_disconnects_total', {}, 4)
  r.set('edgefwd_uplink_in_flight_batches', 2)
  r.set('edgefwd_store_used_bytes', 1.2 * MiB)
  r.set('edgefwd_store_capacity_bytes', 256 * MiB)
  for (const [priority, events] of [['low', 5000], ['normal', 300], ['high', 20], ['critical', 1]] as const) r.set('edgefwd_store_events', events, { priority })
  r.set('edgefwd_store_oldest_event_age_seconds', 42)
  r.inc('edgefwd_events_acked_total', { priority: 'low' }, 10_000)
  r.inc('edgefwd_events_acked_total', { priority: 'critical' }, 234)
  r.inc('edgefwd_batches_acked_total', {}, 40)
  r.inc('edgefwd_batches_resent_total', {}, 12)
  // 100 PUBACKs in (0.025, 0.05]: p99 = 0.025 + 0.025 × 99/100 = 0.04975, printed 0.05 s.
  for (let i = 0; i < 100; i++) r.observe('edgefwd_puback_latency_seconds', 0.03)
  // Lag over two priorities, merged: 50 + 50 in (1, 2.5]: p99 = 1 + 1.5 × 99/100 = 2.485, printed 2.5 s.
  for (let i = 0; i < 50; i++) r.observe('edgefwd_delivery_lag_seconds', 1.2, { priority: 'low' })
  for (let i = 0; i < 50; i++) r.observe('edgefwd_delivery_lag_seconds', 2, { priority: 'critical' })
  r.set('edgefwd_events_evicted_total', 120, { priority: 'low' })
  r.set('edgefwd_events_dropped_total', 120, { priority: 'low', reason: 'evicted_for_space' })
  r.set('edgefwd_events_dropped_total', 3, { priority: 'normal', reason: 'rejected_full' })
  r.inc('edgefwd_frames_received_total', { transport: 'udp' }, 10_000)
  r.inc('edgefwd_frames_received_total', { transport: 'tcp' }, 500)
  r.inc('edgefwd_events_accepted_total', {}, 10_488)
  r.inc('edgefwd_frames_rejected_total', { reason: 'rate_limited' }, 2)
  r.inc('edgefwd_frames_rejected_total', { reason: 'bad_crc' }, 10)
  r.set('edgefwd_tls_cert_expiry_timestamp_seconds', Math.floor(Date.now() / 1000 + 340.5 * 86_400))
  r.set('edgefwd_config_version', 7)
  r.inc('edgefwd_ingest_source_failures_total', { transport: 'mqtt', reason: 'connect' }, 4)
  r.inc('edgefwd_ingest_source_failures_total', { transport: 'modbus', reason: 'timeout' }, 9)
  r.inc('edgefwd_config_updates_total', { result: 'applied' }, 2)
  r.inc('edgefwd_config_updates_total', { result: 'rolled_back' }, 1)
  r.set('edgefwd_process_resident_memory_bytes', 85 * MiB)
  r.set('edgefwd_process_cpu_seconds_total', 12.3)
  r.set('edgefwd_event_loop_delay_p99_seconds', 0.003)
  r.set('edgefwd_process_start_time_seconds', Date.now() / 1000 - (2 * 3600 + 3 * 60 + 10))
  return r
}

async function serve (t: Test, registry: MetricsRegistry, ready: HealthReport = READY): Promise<ObserveServer> {
  const server = await startObserveServer({
    host: '127.0.0.1', port: 0, registry, health: () => READY, ready: () => ready, logger: silentLogger(), version: '0.1.0',
  })
  t.teardown(() => server.close())
  return server
}

/** A loopback port with nothing listening: bound, then closed. */
t.test('the summary of a ready forwarder', async t => {
  const server = await serve(t, busyRegistry())
  const { code, stdout, stderr } = await run(['status', '--url', `http://${server.address}`])
  t.equal(stderr, '')
  t.equal(code, 0)
  t.equal(stdout, [
    'edgefwd 0.1.0 — ready (uplink online, store open)',
    'uplink      online; 12 connects, 3 failures (refused_135: 2, connect: 1), 4 disconnects; backoff 0 s; 2 batches in flight',
    'buffer      1.2 MiB of 256 MiB (0.5%), 5 321 events; oldest 42 s',
    '            low 5 000 · normal 300 · high 20 · critical 1',
    'delivered   10 234 events in 40 batches; 12 batches resent; PUBACK p99 0.05 s; lag p99 2.5 s',
    'lost        evicted 120 (low: 120) · expired 0 · other 3 (rejected_full: 3)',
    'ingest      10 500 frames, 10 488 events accepted; rejected 12 (bad_crc: 10, rate_limited: 2); overload drops 0; input failures 13 (modbus:timeout: 9, mqtt:connect: 4)',
    'tls         client certificate expires in 340 days',
    'config      remote version 7; 3 remote updates (applied: 2, rolled_back: 1)',
    'process     RSS 85 MiB, CPU 12.3 s, event loop p99 3 ms, up 2 h 3 min',
    '',
  ].join('\n'))
})

t.test('a fresh forwarder: zeros, no p99 yet, the in-memory fallback flagged', async t => {
  const r = new MetricsRegistry()
  r.set('edgefwd_store_memory_mode', 1)
  r.set('edgefwd_store_memory_bytes', 3 * MiB + 100 * 1024)
  r.set('edgefwd_tls_cert_expiry_timestamp_seconds', Math.floor(Date.now() / 1000 - 2.5 * 86_400))
  const { code, stdout } = await run(['status', '--url', `http://127.0.0.1:${(await serve(t, r)).port}/`])
  t.equal(code, 0)
  t.match(stdout, /^edgefwd unknown — ready \(uplink online, store open\)\n/)
  t.match(stdout, '\nuplink      unknown; 0 connects, 0 failures, 0 disconnects; backoff 0 s; 0 batches in flight\n')
  t.match(stdout, '\nbuffer      0 B of 0 B, 0 events; oldest 0 s\n            low 0 · normal 0 · high 0 · critical 0\n')
  t.match(stdout, '\n            IN MEMORY: the disk is full or failing; 3.1 MiB held in memory only\n')
  t.match(stdout, 'PUBACK p99 n/a; lag p99 n/a\n')
  t.match(stdout, '\ntls         client certificate EXPIRED 3 days ago\n')
  t.match(stdout, '\nconfig      local file only; 0 remote updates\n')
  t.match(stdout, ', up ?\n')
})

t.test('--json prints the figures as one object', async t => {
  const server = await serve(t, busyRegistry())
  const { code, stdout } = await run(['status', '--json', '--url', `http://${server.address}`])
  t.equal(code, 0)
  const status = JSON.parse(stdout)
  t.match(status, {
    url: `http://${server.address}/metrics`,
    version: '0.1.0',
    ready: true,
    checks: READY.checks,
    uplink: { state: 'online', connects: 12, connectFailures: 3, connectFailuresByReason: { connect: 1, refused_135: 2 }, disconnects: 4, backoffSeconds: 0, inFlightBatches: 2 },
    buffer: { usedBytes: 1.2 * MiB, capacityBytes: 256 * MiB, events: 5321, eventsByPriority: { low: 5000, normal: 300, high: 20, critical: 1 }, oldestEventAgeSeconds: 42, memoryMode: false },
    delivered: { events: 10_234, batches: 40, batchesResent: 12 },
    lost: { evicted: 120, evictedByPriority: { low: 120 }, expired: 0, expiredByPriority: {}, other: 3, otherByReason: { rejected_full: 3 } },
    ingest: { frames: 10_500, accepted: 10_488, rejected: 12, rejectedByReason: { bad_crc: 10, rate_limited: 2 }, overloadDrops: 0 },
    tls: { certDaysLeft: 340 },
    config: { version: 7, updates: 3, updatesByResult: { applied: 2, rolled_back: 1 } },
    process: { residentMemoryBytes: 85 * MiB, cpuSeconds: 12.3, eventLoopP99Seconds: 0.003 },
  })
  t.ok(Math.abs(status.delivered.pubackP99Seconds - 0.04975) < 1e-9, `PUBACK p99 ${status.delivered.pubackP99Seconds}`)
  t.ok(Math.abs(status.delivered.lagP99Seconds - 2.485) < 1e-9, `lag p99 ${status.delivered.lagP99Seconds}`)
  t.ok(Math.abs(status.process.uptimeSeconds - 7390) <= 2, `uptime ${status.process.uptimeSeconds}`)
})

t.test('not ready: the summary and the failing checks, exit 1', async t => {
  const server = await serve(t, busyRegistry(), NOT_READY)
  const { code, stdout, stderr } = await run(['status', '--url', `http://${server.address}`])
  t.equal(code, 1)
  t.equal(stderr, '')
  t.match(stdout, /^edgefwd 0\.1\.0 — NOT READY\nfailing     uplink: offline for 6 min\nuplink      online; /)
  t.match(stdout, '\nprocess     RSS 85 MiB')
  const json = await run(['status', '--url', `http://${server.address}`, '--json'])
  t.equal(json.code, 1)
  t.match(JSON.parse(json.stdout), { ready: false, checks: NOT_READY.checks })
})

t.test('--config FILE: the address from observe.metrics.listen', async t => {
  const server = await serve(t, busyRegistry())
  const dir = t.testdir()
  const file = join(dir, 'edgefwd.yaml')
  writeFileSync(file, `observe:\n  metrics:\n    listen: "127.0.0.1:${server.port}"\n`)
  const { code, stdout, stderr } = await run(['status', '--config', file])
  t.equal(stderr, '')
  t.equal(code, 0)
  t.match(stdout, /^edgefwd 0\.1\.0 — ready/)

  const off = join(dir, 'off.yaml')
  writeFileSync(off, 'observe:\n  metrics:\n    enabled: false\n')
  const disabled = await run(['status', '--config', off])
  t.equal(disabled.code, 1)
  t.match(disabled.stderr, `edgefwd: ${off} disables the metrics endpoint (observe.metrics.enabled: false)\nhint: `)

  t.equal((await run(['status', '--config', file, '--url', 'http://127.0.0.1:1'])).code, 2, '--url and --config together')
  t.equal((await run(['status', '--url', 'not a url'])).code, 2)
  t.equal((await run(['status', '--url', 'ftp://127.0.0.1:21'])).code, 2)
})

t.test('nothing listening: EDGEFWD_ERR_STATUS_UNREACHABLE, exit 1', async t => {
  const port = await freePort()
  const { code, stdout, stderr } = await run(['status', '--url', `http://127.0.0.1:${port}`])
  t.equal(code, 1)
  t.equal(stdout, '')
  t.match(stderr, `edgefwd: cannot read http://127.0.0.1:${port}/`)
  t.match(stderr, 'connection refused (nothing listens there)\nhint: is edgefwd running with observe.metrics.enabled?')
  const err = await statusCommand.run({ values: { url: `http://127.0.0.1:${port}` }, positionals: [] }, { env: {}, io: { stdout: { write: () => true }, stderr: { write: () => true } }, commands: [] })
    .then(() => undefined, (e: unknown) => e)
  t.ok(isEdgefwdError(err, 'EDGEFWD_ERR_STATUS_UNREACHABLE'), 'the error code')
})

t.test('something else answering: EDGEFWD_ERR_STATUS_UNREACHABLE', async t => {
  let answer = { status: 200, type: 'text/html', body: '<html>hello</html>' }
  const other = createHttpServer((_req, res) => { res.writeHead(answer.status, { 'Content-Type': answer.type }).end(answer.body) })
  await new Promise<void>(resolve => other.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { other.closeAllConnections(); other.close(() => { resolve() }) }))
  const url = `http://127.0.0.1:${(other.address() as { port: number }).port}`

  const html = await run(['status', '--url', url])
  t.equal(html.code, 1)
  t.match(html.stderr, /^edgefwd: http:\/\/127\.0\.0\.1:\d+\/metrics did not answer with Prometheus metrics \(exposition line 1: /)
  answer = { status: 200, type: 'text/plain', body: 'go_goroutines 12\n' }
  t.match((await run(['status', '--url', url])).stderr, /answered with metrics, but none of edgefwd's/)
  answer = { status: 404, type: 'text/plain', body: 'no\n' }
  t.match((await run(['status', '--url', url])).stderr, /\/metrics answered HTTP 404, not metrics/)
  answer = { status: 200, type: 'text/plain', body: 'edgefwd_build_info{version="1"} 1\n' }
  t.match((await run(['status', '--url', url])).stderr, /\/readyz answered HTTP 200 without an edgefwd readiness report/)
})

t.test('an endpoint that never answers: gives up after 3 s', async t => {
  const sockets = new Set<Socket>()
  const silent = createNetServer(socket => { sockets.add(socket) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); silent.close(() => { resolve() }) }))
  const started = Date.now()
  const { code, stderr } = await run(['status', '--url', `http://127.0.0.1:${(silent.address() as { port: number }).port}`])
  const took = Date.now() - started
  t.equal(code, 1)
  t.match(stderr, /: no answer within 3 s\nhint: /)
  t.ok(took >= 2900 && took < 6000, `gave up after ${took} ms`)
})

t.test('--help describes the exit codes', async t => {
  const { code, stdout } = await run(['status', '--help'])
  t.equal(code, 0)
  t.match(stdout, /^Usage: edgefwd status/)
  t.match(stdout, /--url URL +the metrics endpoint \(default http:\/\/127\.0\.0\.1:9464\)/)
  t.match(stdout, /Exit 0 when the forwarder is ready; 1 when it answers not ready/)
})
