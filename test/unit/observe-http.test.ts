import { request, Agent } from 'node:http'
import { createServer } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { isEdgefwdError } from '../../src/errors.js'
import { startObserveServer, type HealthReport, type ObserveServer } from '../../src/observe/http-server.js'
import { MetricsRegistry } from '../../src/observe/metrics.js'
import { captureLogger, silentLogger } from '../helpers/logger.js'
import { waitFor } from '../helpers/wait.js'

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string }

/** One HTTP request on loopback, bounded by a 5 s timeout. */
async function call (server: ObserveServer, method: string, path: string, agent?: Agent): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, method, path, agent: agent ?? false, timeout: 5000 }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
      res.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new Error(`${method} ${path}: no answer within 5 s`)) })
    req.on('error', reject)
    req.end()
  })
}

const okReport: HealthReport = { ok: true, checks: { store: { ok: true, detail: 'open' } } }
const failReport: HealthReport = { ok: false, checks: { store: { ok: true, detail: 'open' }, uplink: { ok: false, detail: 'offline for 6 min' } } }

async function start (t: Test, overrides: Partial<Parameters<typeof startObserveServer>[0]> = {}): Promise<ObserveServer> {
  const server = await startObserveServer({
    host: '127.0.0.1',
    port: 0,
    registry: new MetricsRegistry(),
    health: () => okReport,
    ready: () => okReport,
    logger: silentLogger(),
    ...overrides,
  })
  t.teardown(() => server.close())
  return server
}

t.test('port 0: address and port report the bound port', async t => {
  const server = await start(t)
  t.ok(server.port > 0)
  t.equal(server.address, `127.0.0.1:${server.port}`)
})

t.test('GET and HEAD /metrics: the registry in the text format', async t => {
  const registry = new MetricsRegistry()
  registry.inc('edgefwd_events_accepted_total', {}, 42)
  const server = await start(t, { registry, version: '9.9.9' })
  const got = await call(server, 'GET', '/metrics')
  t.equal(got.status, 200)
  t.equal(got.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
  t.equal(got.headers.server, 'edgefwd/9.9.9')
  t.equal(got.body, await registry.render())
  t.match(got.body, '\nedgefwd_events_accepted_total 42\n')
  t.equal(Number(got.headers['content-length']), Buffer.byteLength(got.body))

  const head = await call(server, 'HEAD', '/metrics')
  t.equal(head.status, 200)
  t.equal(head.body, '')
  t.equal(head.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
  t.equal(head.headers['content-length'], got.headers['content-length'])
  t.equal((await call(server, 'GET', '/metrics?x=1')).status, 200, 'a query string is ignored')
})

t.test('/healthz and /readyz: 200 when ok, 503 when not, JSON either way', async t => {
  let ready = failReport
  const server = await start(t, { health: () => okReport, ready: () => ready })
  const health = await call(server, 'GET', '/healthz')
  t.equal(health.status, 200)
  t.equal(health.headers['content-type'], 'application/json')
  t.same(JSON.parse(health.body), { status: 'ok', checks: { store: { ok: true, detail: 'open' } } })

  const notReady = await call(server, 'GET', '/readyz')
  t.equal(notReady.status, 503)
  t.same(JSON.parse(notReady.body), { status: 'fail', checks: failReport.checks })
  t.equal((await call(server, 'HEAD', '/readyz')).status, 503)

  ready = okReport
  const nowReady = await call(server, 'GET', '/readyz')
  t.equal(nowReady.status, 200)
  t.equal(JSON.parse(nowReady.body).status, 'ok')
})

t.test('other paths 404, other methods 405 with Allow', async t => {
  const server = await start(t)
  for (const path of ['/', '/metric', '/metrics/x', '/favicon.ico']) t.equal((await call(server, 'GET', path)).status, 404, path)
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    const got = await call(server, method, '/metrics')
    t.equal(got.status, 405, method)
    t.equal(got.headers.allow, 'GET, HEAD')
  }
})

t.test('a render failure: 500, one logged error, and the server keeps serving', async t => {
  const { logger, records } = captureLogger()
  const registry = new MetricsRegistry()
  let fail = true
  const server = await start(t, { registry, logger })
  // A registry that fails to render: simulated by a render() that throws once.
  const render = registry.render.bind(registry)
  registry.render = async () => {
    if (fail) throw new Error('disk on fire')
    return await render()
  }
  const broken = await call(server, 'GET', '/metrics')
  t.equal(broken.status, 500)
  t.notMatch(broken.body, 'disk on fire', 'the error stays in the log, not in the answer')
  const errors = records().filter(r => r.level === 50)
  t.equal(errors.length, 1)
  t.match(errors[0], { err: { message: 'disk on fire' }, path: '/metrics' })

  fail = false
  t.equal((await call(server, 'GET', '/metrics')).status, 200)
  t.equal((await call(server, 'GET', '/healthz')).status, 200)

  const health = await start(t, { logger, health: () => { throw new Error('check crashed') } })
  t.equal((await call(health, 'GET', '/healthz')).status, 500, 'a throwing health check is a 500 too')
})

t.test('EADDRINUSE: EDGEFWD_ERR_METRICS_LISTEN naming the address and the cause', async t => {
  const blocker = createServer()
  await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => blocker.close(() => { resolve() })))
  const port = (blocker.address() as { port: number }).port
  const err = await start(t, { port }).then(() => undefined, (e: unknown) => e)
  t.ok(isEdgefwdError(err, 'EDGEFWD_ERR_METRICS_LISTEN'), 'the error code')
  t.match(err, { message: `the metrics endpoint cannot listen on 127.0.0.1:${port}: EADDRINUSE`, hint: /another port/, cause: { code: 'EADDRINUSE' } })


  const elsewhere = await start(t, { host: '192.0.2.1' }).then(() => undefined, (e: unknown) => e)
  t.match(elsewhere, { code: 'EDGEFWD_ERR_METRICS_LISTEN', message: /cannot listen on 192\.0\.2\.1:0: EADDRNOTAVAIL/, hint: /not an address of this machine/ })
  const v6 = await start(t, { host: '2001:db8::1' }).then(() => undefined, (e: unknown) => e)
  t.match(v6, { code: 'EDGEFWD_ERR_METRICS_LISTEN', message: /cannot listen on \[2001:db8::1\]:0: E/ }, 'an IPv6 address is bracketed')
})

t.test('IPv6: the address is bracketed', async t => {
  const server = await start(t, { host: '::1' }).catch((err: unknown) => err)
  if (isEdgefwdError(server)) {
    t.comment(`no IPv6 loopback here (${server.message}); skipped`)
    return
  }
  t.equal((server as ObserveServer).address, `[::1]:${(server as ObserveServer).port}`)
})

t.test('close() returns promptly with a keep-alive client connected', async t => {
  const server = await startObserveServer({
    host: '127.0.0.1', port: 0, registry: new MetricsRegistry(), health: () => okReport, ready: () => okReport, logger: silentLogger(),
  })
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => { agent.destroy() })
  t.equal((await call(server, 'GET', '/metrics', agent)).status, 200)
  t.equal((await call(server, 'GET', '/healthz', agent)).status, 200)
  const idle = Object.values(agent.freeSockets).flat().length
  t.equal(idle, 1, 'the client holds an idle keep-alive connection')
  const started = Date.now()
  await server.close()
  t.ok(Date.now() - started < 1000, `closed in ${Date.now() - started} ms`)
  await server.close()
  t.pass('close() twice is harmless')
})

t.test('close() cuts a request still in progress after the grace period', async t => {
  let release: () => void = () => {}
  const registry = new MetricsRegistry()
  // A collect hook that never finishes on its own: the scrape hangs until released.
  let collecting = false
  registry.onCollect(async () => await new Promise<void>(resolve => { collecting = true; release = resolve }))
  const server = await startObserveServer({
    host: '127.0.0.1', port: 0, registry, health: () => okReport, ready: () => okReport, logger: silentLogger(),
  })
  t.teardown(() => { release(); return server.close() })
  const pending = call(server, 'GET', '/metrics').then(() => 'answered', () => 'cut')
  await waitFor('the scrape to reach the collect hook', () => collecting, 5000)
  const started = Date.now()
  await server.close()
  const took = Date.now() - started
  t.ok(took >= 1500 && took < 3500, `closed after ${took} ms (grace ~2 s)`)
  t.equal(await pending, 'cut')
})
