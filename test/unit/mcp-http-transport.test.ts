/**
 * startMcpHttp (src/mcp/http-transport.ts) on 127.0.0.1 port 0: the SDK client and raw fetch,
 * the bearer token, Origin/Host checks, oversized bodies, TLS with a certificate made at test
 * time, the refusal to serve beyond loopback without TLS and token (checked without listening
 * there), bad token files, and a close() that does not wait for a hung tool call.
 */
import { createHash } from 'node:crypto'
import { chmodSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { McpServer } from '@modelcontextprotocol/server'
import t from 'tap'
import type { Test } from 'tap'
import { z } from 'zod'
import { isEdgefwdError } from '../../src/errors.js'
import { startMcpHttp, type HttpCaller, type McpHttpOptions, type McpHttpRejection, type McpHttpServer } from '../../src/mcp/http-transport.js'
import { issueCertificate } from '../../src/pki/generate.js'
import { silentLogger } from '../helpers/logger.js'
import { makeCa } from '../helpers/test-pki.js'
import { waitFor } from '../helpers/wait.js'

const PROTOCOL_VERSION = '2025-11-25'
const KiB = 1024
const ANSWER_MS = 5000
const TOKEN = 'f00dfeed0123456789abcdef0123456789abcdef0123456789abcdef01234567'
const FINGERPRINT = createHash('sha256').update(TOKEN).digest('hex').slice(0, 12)
const HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' }

interface Started {
  http: McpHttpServer
  rejections: McpHttpRejection[]
  callers: HttpCaller[]
  /** Set when the `hang` tool has been entered. */
  hung: () => boolean
}

/** The server every request gets: echo, whoami (what a handler sees of its caller), hang (never answers). */
function newServer (callers: HttpCaller[], onHang: () => void): (caller: HttpCaller) => McpServer {
  return caller => {
    callers.push(caller)
    const server = new McpServer({ name: 'edgefwd-test', version: '0.0.0' })
    server.registerTool('echo', { inputSchema: z.object({ text: z.string() }) }, async ({ text }) => ({ content: [{ type: 'text', text }] }))
    server.registerTool('whoami', {}, async ctx => ({ content: [{ type: 'text', text: JSON.stringify({ caller, authInfo: ctx.http?.authInfo ?? null }) }] }))
    server.registerTool('hang', {}, async () => {
      onHang()
      return await new Promise(() => {})
    })
    return server
  }
}

async function start (t: Test, overrides: Partial<McpHttpOptions> = {}): Promise<Started> {
  const rejections: McpHttpRejection[] = []
  const callers: HttpCaller[] = []
  let hung = false
  const http = await startMcpHttp({
    listen: '127.0.0.1:0',
    maxBodyBytes: 64 * KiB,
    logger: silentLogger(),
    onReject: r => { rejections.push(r) },
    newServer: newServer(callers, () => { hung = true }),
    ...overrides,
  })
  t.teardown(() => http.close())
  return { http, rejections, callers, hung: () => hung }
}

/** The test's own directory: t.testdir() empties it on every call, so it is called once per test. */
const dirs = new WeakMap<Test, string>()
function dirOf (t: Test): string {
  let dir = dirs.get(t)
  if (dir === undefined) {
    dir = t.testdir()
    dirs.set(t, dir)
  }
  return dir
}

let tokenFiles = 0
function tokenFile (t: Test, content = `${TOKEN}\n`, mode = 0o600): string {
  const path = join(dirOf(t), `mcp-${++tokenFiles}.token`)
  writeFileSync(path, content)
  chmodSync(path, mode) // after writing: the mode given at creation is cut by the umask
  return path
}

interface Reply { status: number, headers: Headers, body: string }

async function post (url: string, body: string | object, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...HEADERS, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(ANSWER_MS),
  })
  return { status: res.status, headers: res.headers, body: await res.text() }
}

/** A request with node:http(s), for what fetch will not do: set Host, stream a chunked body, trust a test CA. */
async function raw (url: string, options: { method?: string, headers?: Record<string, string>, chunks?: Buffer[], ca?: string }): Promise<Reply> {
  const target = new URL(url)
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest
  return await new Promise((resolve, reject) => {
    const req = request(target, { method: options.method ?? 'POST', headers: { ...HEADERS, ...options.headers }, ca: options.ca, timeout: ANSWER_MS, agent: false }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => {
        const headers = new Headers()
        for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') headers.set(name, value)
        resolve({ status: res.statusCode ?? 0, headers, body })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new Error(`${url}: no answer within ${ANSWER_MS} ms`)) })
    req.on('error', reject)
    const chunks = [...(options.chunks ?? [])]
    const pump = (): void => {
      while (chunks.length > 0) {
        if (!req.write(chunks.shift())) {
          req.once('drain', pump)
          return
        }
      }
      req.end()
    }
    pump()
  })
}

function initialize (id: number | string = 1): object {
  return { jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'test-agent', version: '1.0.0' } } }
}

function call (id: number, name: string, args: object = {}): object {
  return { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }
}

async function bounded<T> (what: string, promise: Promise<T>, ms = ANSWER_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what}: no answer within ${ms} ms`)) }, ms) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

function reasons (rejections: readonly McpHttpRejection[]): string[] {
  return rejections.map(r => r.reason)
}

t.test('the SDK client: initialize, tools/list, tools/call', async t => {
  const { http, rejections } = await start(t)
  t.match(http.address, /^127\.0\.0\.1:\d+$/)
  t.equal(http.url, `http://${http.address}/mcp`)
  const client = new Client({ name: 'test-agent', version: '1.0.0' })
  t.teardown(() => client.close())
  await bounded('connect', client.connect(new StreamableHTTPClientTransport(new URL(http.url))))
  t.equal(client.getServerVersion()?.name, 'edgefwd-test')
  const tools = await bounded('tools/list', client.listTools())
  t.strictSame(tools.tools.map(tool => tool.name).sort(), ['echo', 'hang', 'whoami'])
  t.strictSame(await bounded('tools/call', client.callTool({ name: 'echo', arguments: { text: 'over http' } })), { content: [{ type: 'text', text: 'over http' }] })
  t.strictSame(rejections, [], 'nothing refused (the client\'s GET for an SSE stream gets a 405, which is no refusal)')
})

t.test('raw fetch: initialize and tools/call answered as plain JSON; malformed JSON is a 400 parse error', async t => {
  const { http, callers } = await start(t)
  const init = await post(http.url, initialize())
  t.equal(init.status, 200)
  t.match(init.headers.get('content-type'), /^application\/json/)
  t.equal(init.headers.get('mcp-session-id'), null, 'stateless: no session')
  t.match(JSON.parse(init.body), { jsonrpc: '2.0', id: 1, result: { protocolVersion: PROTOCOL_VERSION, serverInfo: { name: 'edgefwd-test' } } })

  const echo = await post(http.url, call(2, 'echo', { text: 'hi' }), { 'MCP-Protocol-Version': PROTOCOL_VERSION })
  t.equal(echo.status, 200)
  t.strictSame(JSON.parse(echo.body), { result: { content: [{ type: 'text', text: 'hi' }] }, jsonrpc: '2.0', id: 2 })

  const notification = await post(http.url, { jsonrpc: '2.0', method: 'notifications/initialized' })
  t.equal(notification.status, 202, 'a notification: accepted, no body')

  const bad = await post(http.url, '{"jsonrpc": "2.0", "id": 3,')
  t.equal(bad.status, 400)
  t.match(JSON.parse(bad.body), { jsonrpc: '2.0', id: null, error: { code: -32700, message: /^Parse error/ } })

  t.equal(callers.length, 4, 'one server per request')
  t.match(callers[0], { remote: /^127\.0\.0\.1:\d+$/, token: undefined })
})

t.test('a token file: 401 without or with a wrong token, served with the right one; handlers see a fingerprint, not the token', async t => {
  const { http, rejections, callers } = await start(t, { tokenFile: tokenFile(t) })
  const none = await post(http.url, initialize())
  t.equal(none.status, 401)
  t.match(none.headers.get('www-authenticate'), /^Bearer/)
  t.match(JSON.parse(none.body), { jsonrpc: '2.0', id: null, error: { code: -32000, message: /Bearer/ } })

  const wrong = await post(http.url, initialize(), { Authorization: `Bearer ${TOKEN.slice(0, -1)}0` })
  t.equal(wrong.status, 401)
  t.match(wrong.headers.get('www-authenticate'), /^Bearer .*error="invalid_token"/)
  t.equal((await post(http.url, initialize(), { Authorization: `Basic ${TOKEN}` })).status, 401, 'not a Bearer header')
  t.equal(callers.length, 0, 'no server made for a refused request')

  const right = await post(http.url, initialize(), { Authorization: `Bearer ${TOKEN}` })
  t.equal(right.status, 200)
  const whoami = await post(http.url, call(2, 'whoami'), { Authorization: `bearer ${TOKEN}` })
  t.equal(whoami.status, 200)
  const seen = JSON.parse((JSON.parse(whoami.body) as { result: { content: Array<{ text: string }> } }).result.content[0]?.text ?? '') as { caller: HttpCaller, authInfo: Record<string, unknown> }
  t.match(seen.caller, { remote: /^127\.0\.0\.1:\d+$/, token: FINGERPRINT })
  t.match(seen.authInfo, { token: FINGERPRINT, clientId: `token:${FINGERPRINT}`, scopes: [], extra: { remote: seen.caller.remote } })
  t.notMatch(whoami.body, TOKEN, 'the token never reaches a handler')

  const client = new Client({ name: 'test-agent', version: '1.0.0' })
  t.teardown(() => client.close())
  await bounded('connect', client.connect(new StreamableHTTPClientTransport(new URL(http.url), { requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } } })))
  t.strictSame(await bounded('tools/call', client.callTool({ name: 'echo', arguments: { text: 'with a token' } })), { content: [{ type: 'text', text: 'with a token' }] })

  t.strictSame(reasons(rejections), ['unauthorized', 'unauthorized', 'unauthorized'])
  t.notMatch(JSON.stringify(rejections), TOKEN, 'nor does it reach the audit')
})

t.test('DNS rebinding: a foreign Origin or Host is 403; localhost origins pass', async t => {
  const { http, rejections } = await start(t)
  const evil = await post(http.url, initialize(), { Origin: 'http://evil.example' })
  t.equal(evil.status, 403)
  t.match(JSON.parse(evil.body), { jsonrpc: '2.0', id: null, error: { code: -32000, message: /Origin http:\/\/evil\.example/ } })
  t.equal((await post(http.url, initialize(), { Origin: 'null' })).status, 403, 'an opaque origin')
  for (const origin of ['http://localhost:3000', 'http://127.0.0.1', 'https://[::1]:8443']) {
    t.equal((await post(http.url, initialize(), { Origin: origin })).status, 200, origin)
  }
  const port = http.address.split(':')[1] ?? ''
  t.equal((await raw(http.url, { headers: { Host: `evil.example:${port}` }, chunks: [Buffer.from(JSON.stringify(initialize()))] })).status, 403, 'a rebound Host')
  t.equal((await raw(http.url, { headers: { Host: '127.0.0.1:1' }, chunks: [Buffer.from(JSON.stringify(initialize()))] })).status, 403, 'another port')
  t.equal((await raw(http.url, { headers: { Host: `localhost:${port}` }, chunks: [Buffer.from(JSON.stringify(initialize()))] })).status, 200, 'localhost:port')
  t.strictSame(reasons(rejections), ['forbidden_origin', 'forbidden_origin', 'forbidden_host', 'forbidden_host'])
})

t.test('other paths 404; GET and DELETE 405 (stateless)', async t => {
  const { http, rejections } = await start(t)
  const other = await post(http.url.replace('/mcp', '/other'), initialize())
  t.equal(other.status, 404)
  t.match(JSON.parse(other.body), { error: { code: -32000, message: /\/mcp/ } })
  for (const method of ['GET', 'DELETE']) {
    const got = await raw(http.url, { method })
    t.equal(got.status, 405, method)
    t.equal(got.headers.get('allow'), 'POST')
  }
  t.strictSame(reasons(rejections), ['not_found'], '405 is not a refusal to audit')
})

t.test('a body over maxBodyBytes: 413 without reading it all, and the server still answers', async t => {
  const limit = 64 * KiB
  const { http, rejections } = await start(t, { maxBodyBytes: limit })
  const declared = await post(http.url, `{"pad":"${'x'.repeat(limit)}"}`)
  t.equal(declared.status, 413, 'refused from its Content-Length')
  t.strictSame(JSON.parse(declared.body), { jsonrpc: '2.0', id: null, error: { code: -32600, message: `request too large: more than ${limit} bytes (the limit of this endpoint)` } })

  const streamed = await raw(http.url, { chunks: Array.from({ length: 64 }, () => Buffer.alloc(16 * KiB, 'y')) })
  t.equal(streamed.status, 413, 'a 1 MiB chunked body, refused once past the limit')
  t.equal(streamed.headers.get('connection'), 'close')
  t.match(JSON.parse(streamed.body), { error: { code: -32600, message: /^request too large/ } })

  const justUnder = `{"jsonrpc":"2.0","id":9,"method":"ping","params":{"pad":"${'p'.repeat(limit - 100)}"}}`
  t.equal((await post(http.url, justUnder)).status, 200, 'a body under the limit is served')
  t.equal((await post(http.url, { jsonrpc: '2.0', id: 10, method: 'ping' })).status, 200)
  t.strictSame(reasons(rejections), ['too_large', 'too_large'])
})

t.test('TLS on loopback, with the token: served over https to a client that trusts the test CA', async t => {
  const ca = makeCa()
  const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
  const dir = dirOf(t)
  const cert = join(dir, 'server.crt')
  const key = join(dir, 'server.key')
  writeFileSync(cert, server.certPem)
  writeFileSync(key, server.keyPem)
  chmodSync(key, 0o600)
  const { http, rejections } = await start(t, { tls: { cert, key }, tokenFile: tokenFile(t) })
  t.equal(http.url, `https://${http.address}/mcp`)

  const auth = { Authorization: `Bearer ${TOKEN}` }
  const init = await raw(http.url, { ca: ca.certPem, headers: auth, chunks: [Buffer.from(JSON.stringify(initialize()))] })
  t.equal(init.status, 200)
  t.match(JSON.parse(init.body), { result: { protocolVersion: PROTOCOL_VERSION } })
  const echo = await raw(http.url, { ca: ca.certPem, headers: auth, chunks: [Buffer.from(JSON.stringify(call(2, 'echo', { text: 'over tls' })))] })
  t.strictSame(JSON.parse(echo.body), { result: { content: [{ type: 'text', text: 'over tls' }] }, jsonrpc: '2.0', id: 2 })
  t.equal((await raw(http.url, { ca: ca.certPem, chunks: [Buffer.from(JSON.stringify(initialize()))] })).status, 401, 'TLS does not replace the token')
  await t.rejects(raw(http.url, { chunks: [Buffer.from(JSON.stringify(initialize()))] }), /self.signed|unable to verify|certificate/i, 'a client that does not trust the CA refuses the server')
  t.strictSame(reasons(rejections), ['unauthorized'])

  chmodSync(key, 0o644)
  const open = await start(t, { tls: { cert, key } }).then(() => undefined, (e: unknown) => e)
  t.match(open, { code: 'EDGEFWD_ERR_MCP_HTTP', message: /TLS key file .* is open to group or others \(mode 0644\)/, hint: /chmod 600/ })
  chmodSync(key, 0o600)
  const garbage = join(dir, 'garbage.crt')
  writeFileSync(garbage, 'not a certificate\n')
  const bad = await start(t, { tls: { cert: garbage, key } }).then(() => undefined, (e: unknown) => e)
  t.match(bad, { code: 'EDGEFWD_ERR_MCP_HTTP', message: /TLS certificate or key .* cannot be used/ })
})

t.test('beyond loopback: refused before listening unless both TLS and a token file are set', async t => {
  // 0.0.0.0 is only ever checked here, never listened on. The file paths do not exist: the
  // missing half is reported before any file is read.
  const cases: Array<{ options: Partial<McpHttpOptions>, missing: RegExp }> = [
    { options: {}, missing: /missing: mcp\.http\.tls and mcp\.http\.tokenFile/ },
    { options: { tokenFile: '/nonexistent/token' }, missing: /missing: mcp\.http\.tls\)/ },
    { options: { tls: { cert: '/nonexistent/c', key: '/nonexistent/k' } }, missing: /missing: mcp\.http\.tokenFile\)/ },
  ]
  for (const { options, missing } of cases) {
    const err = await start(t, { listen: '0.0.0.0:0', ...options }).then(() => undefined, (e: unknown) => e)
    t.ok(isEdgefwdError(err, 'EDGEFWD_ERR_MCP_HTTP'), 'the error code')
    t.match(err, { message: /0\.0\.0\.0:0 is not a loopback address/, hint: /127\.0\.0\.1/ })
    t.match(err, { message: missing })
  }
  const v6 = await start(t, { listen: '[::]:0' }).then(() => undefined, (e: unknown) => e)
  t.match(v6, { code: 'EDGEFWD_ERR_MCP_HTTP', message: /not a loopback address/ })
})

t.test('bad listen addresses and token files: EDGEFWD_ERR_MCP_HTTP with the reason', async t => {
  for (const listen of ['127.0.0.1', '127.0.0.1:70000', '::1:7465', 'host:port', '[127.0.0.1]:7465']) {
    const err = await start(t, { listen }).then(() => undefined, (e: unknown) => e)
    t.match(err, { code: 'EDGEFWD_ERR_MCP_HTTP', message: /is not ADDRESS:PORT/ }, listen)
  }
  const missing = await start(t, { tokenFile: join(dirOf(t), 'absent') }).then(() => undefined, (e: unknown) => e)
  t.match(missing, { code: 'EDGEFWD_ERR_MCP_HTTP', message: /token file .* cannot be read: no such file or directory/ })
  const empty = await start(t, { tokenFile: tokenFile(t, '  \n') }).then(() => undefined, (e: unknown) => e)
  t.match(empty, { code: 'EDGEFWD_ERR_MCP_HTTP', message: /token file .* is empty/ })
  const open = await start(t, { tokenFile: tokenFile(t, TOKEN, 0o640) }).then(() => undefined, (e: unknown) => e)
  t.match(open, { code: 'EDGEFWD_ERR_MCP_HTTP', message: /token file .* is open to group or others \(mode 0640\)/, hint: /chmod 600/ })
  const twoWords = await start(t, { tokenFile: tokenFile(t, 'two words') }).then(() => undefined, (e: unknown) => e)
  t.match(twoWords, { code: 'EDGEFWD_ERR_MCP_HTTP', message: /does not hold one token/ })

  const { http } = await start(t)
  const inUse = await start(t, { listen: http.address }).then(() => undefined, (e: unknown) => e)
  t.match(inUse, { code: 'EDGEFWD_ERR_MCP_HTTP', message: `the MCP endpoint cannot listen on ${http.address}: EADDRINUSE`, hint: /another port/, cause: { code: 'EADDRINUSE' } })
})

t.test('close() does not wait for a hung tool call: done within the grace period', async t => {
  const started = await start(t)
  const pending = post(started.http.url, call(1, 'hang')).then(() => 'answered', (e: unknown) => e)
  await waitFor('the hang tool entered', started.hung, ANSWER_MS, 5)
  const t0 = Date.now()
  await bounded('close', started.http.close(), 4000)
  const took = Date.now() - t0
  t.ok(took < 3000, `closed in ${took} ms`)
  t.not(await pending, 'answered', 'the hung request was cut, not answered')
})
