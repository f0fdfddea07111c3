/**
 * LineTransport (src/mcp/stdio-transport.ts) under a real McpServer, through in-memory streams:
 * the MCP handshake and tools, then every kind of bad line, each answered with its JSON-RPC error
 * while the session goes on; an oversized line dropped without being buffered; close, EPIPE and
 * a client that stops reading.
 */
import { PassThrough, Writable } from 'node:stream'
import { McpServer } from '@modelcontextprotocol/server'
import t from 'tap'
import type { Test } from 'tap'
import { z } from 'zod'
import { LineTransport, type LineRejection } from '../../src/mcp/stdio-transport.js'
import { waitFor } from '../helpers/wait.js'

const PROTOCOL_VERSION = '2025-11-25'
const KiB = 1024

interface Answer {
  jsonrpc: string
  id: string | number | null
  result?: Record<string, unknown>
  error?: { code: number, message: string, data?: unknown }
}

interface Harness {
  transport: LineTransport
  input: PassThrough
  output: PassThrough
  /** Every line written to the output, parsed. */
  answers: Answer[]
  rejections: LineRejection[]
  closes: () => number
  /** Writes one line (an object is serialized) to the input. */
  send: (line: unknown) => void
  /** The answer with this id, waited for (bounded). */
  answer: (id: string | number | null, skip?: number) => Promise<Answer>
}

function echoServer (): McpServer {
  const server = new McpServer({ name: 'edgefwd-test', version: '0.0.0' })
  server.registerTool('echo', {
    description: 'Returns its text.',
    inputSchema: z.object({ text: z.string() }),
  }, async ({ text }) => ({ content: [{ type: 'text', text }] }))
  return server
}

async function harness (t: Test, maxMessageBytes = 64 * KiB): Promise<Harness> {
  const input = new PassThrough()
  const output = new PassThrough()
  const answers: Answer[] = []
  const rejections: LineRejection[] = []
  let text = ''
  output.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8')
    let nl: number
    while ((nl = text.indexOf('\n')) !== -1) {
      answers.push(JSON.parse(text.slice(0, nl)) as Answer)
      text = text.slice(nl + 1)
    }
  })
  const transport = new LineTransport(input, output, { maxMessageBytes, onReject: r => { rejections.push(r) } })
  const server = echoServer()
  let closes = 0
  await server.connect(transport)
  const onclose = transport.onclose
  transport.onclose = () => {
    closes++
    onclose?.()
  }
  t.teardown(() => server.close())
  return {
    transport,
    input,
    output,
    answers,
    rejections,
    closes: () => closes,
    send: line => { input.write(`${typeof line === 'string' ? line : JSON.stringify(line)}\n`) },
    answer: async (id, skip = 0) => {
      const matching = (): Answer[] => answers.filter(a => a.id === id)
      await waitFor(`the answer with id ${String(id)}`, () => matching().length > skip, 5000, 5)
      return matching()[skip] as Answer
    },
  }
}

async function initialize (h: Harness): Promise<Answer> {
  h.send({ jsonrpc: '2.0', id: 'init', method: 'initialize', params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'test-agent', version: '1.0.0' } } })
  const init = await h.answer('init')
  h.send({ jsonrpc: '2.0', method: 'notifications/initialized' })
  return init
}

async function ping (h: Harness, id: string | number): Promise<void> {
  h.send({ jsonrpc: '2.0', id, method: 'ping' })
  const got = await h.answer(id)
  if (got.result === undefined) throw new Error(`ping ${id}: ${JSON.stringify(got)}`)
}

/** A ping of exactly `bytes` bytes (newline excluded). */
function pingOfSize (id: number, bytes: number): string {
  const bare = JSON.stringify({ jsonrpc: '2.0', id, method: 'ping', params: { pad: '' } })
  return JSON.stringify({ jsonrpc: '2.0', id, method: 'ping', params: { pad: 'p'.repeat(bytes - bare.length) } })
}

function count (rejections: readonly LineRejection[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const r of rejections) counts[r.reason] = (counts[r.reason] ?? 0) + 1
  return counts
}

t.test('initialize, tools/list and tools/call through the line transport', async t => {
  const h = await harness(t)
  const init = await initialize(h)
  t.match(init, { jsonrpc: '2.0', id: 'init', result: { protocolVersion: PROTOCOL_VERSION, serverInfo: { name: 'edgefwd-test' }, capabilities: { tools: {} } } })

  h.send({ jsonrpc: '2.0', id: 2, method: 'tools/list' })
  const list = await h.answer(2)
  t.match(list.result, { tools: [{ name: 'echo', inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } }] })

  h.send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { text: 'héllo\nwörld' } } })
  t.strictSame((await h.answer(3)).result, { content: [{ type: 'text', text: 'héllo\nwörld' }] }, 'UTF-8 and an escaped newline survive')
  t.strictSame(h.rejections, [])
})

t.test('a line that is not JSON: -32700 with id null, and the next request is answered', async t => {
  const h = await harness(t)
  await initialize(h)
  h.send('this is not json')
  const err = await h.answer(null)
  t.equal(err.error?.code, -32700)
  t.match(err.error?.message, /^Parse error: /)
  await ping(h, 10)

  h.input.write(Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a])) // "{", invalid UTF-8, "}"
  const utf8 = await h.answer(null, 1)
  t.strictSame(utf8.error, { code: -32700, message: 'Parse error: the line is not valid UTF-8' })
  await ping(h, 11)
  t.strictSame(count(h.rejections), { parse_error: 2 })
})

t.test('JSON that is not one JSON-RPC 2.0 message: -32600, with the id when it has one', async t => {
  const h = await harness(t)
  await initialize(h)
  h.send('[1,2]')
  const batch = await h.answer(null)
  t.equal(batch.error?.code, -32600)
  t.match(batch.error?.message, /^Invalid Request: a batch/)

  h.send('{"id":5}')
  const noVersion = await h.answer(5)
  t.equal(noVersion.error?.code, -32600)
  t.match(noVersion.error?.message, /"jsonrpc" member must be "2\.0"/)

  h.send({ jsonrpc: '2.0', id: 'm', method: 7 })
  t.match(await h.answer('m'), { error: { code: -32600, message: /"method" member must be a string/ } })
  h.send('"just a string"')
  t.match(await h.answer(null, 1), { error: { code: -32600, message: /is an object, not string/ } })
  h.send({ jsonrpc: '1.0', id: { nested: true }, method: 'ping' })
  t.match(await h.answer(null, 2), { error: { code: -32600 } }, 'an id that is not a string or number is answered with null')
  await ping(h, 12)
  t.strictSame(count(h.rejections), { invalid_request: 5 })
})

t.test('blank lines are ignored, a trailing \\r is tolerated', async t => {
  const h = await harness(t)
  await initialize(h)
  const before = h.answers.length
  h.input.write('\n   \n\t\r\n')
  h.input.write(`${JSON.stringify({ jsonrpc: '2.0', id: 'crlf', method: 'ping' })}\r\n`)
  t.ok((await h.answer('crlf')).result)
  t.equal(h.answers.length, before + 1, 'nothing answered for the blank lines')
  t.strictSame(h.rejections, [])
})

t.test('a 2 MB line with a 64 KiB limit: one "too large", never buffered, and the session goes on', async t => {
  const limit = 64 * KiB
  const h = await harness(t, limit)
  await initialize(h)
  const huge = Buffer.alloc(2 * 1024 * KiB, 'x'.charCodeAt(0))
  // Fed in uneven chunks, the last one carrying the newline and the next request.
  const sizes = [1, 1000, 16 * KiB, 70 * KiB, 333]
  let at = 0
  for (let i = 0; at < huge.length; i++) {
    const size = sizes[i % sizes.length] as number
    h.input.write(huge.subarray(at, at + size))
    at += size
  }
  h.input.write(`\n${JSON.stringify({ jsonrpc: '2.0', id: 'after', method: 'ping' })}\n`)
  const tooLarge = await h.answer(null)
  t.strictSame(tooLarge, {
    jsonrpc: '2.0',
    id: null,
    error: { code: -32600, message: `request too large: more than ${limit} bytes in one line (the limit is ${limit} bytes)` },
  })
  t.ok((await h.answer('after')).result, 'the request after the long line is answered')
  t.ok(h.transport.bufferedHighWater <= limit, `held at most the limit (${h.transport.bufferedHighWater} bytes)`)
  t.strictSame(count(h.rejections), { too_large: 1 })
  t.equal(h.answers.filter(a => a.error !== undefined).length, 1, 'exactly one error for the long line')

  // The limit itself: exactly `limit` bytes pass, one more does not (in one chunk, newline included).
  h.input.write(`${pingOfSize(20, limit)}\n`)
  t.ok((await h.answer(20)).result, 'a line of exactly the limit is served')
  h.input.write(`${pingOfSize(21, limit + 1)}\n`)
  t.match(await h.answer(null, 1), { error: { code: -32600, message: /^request too large/ } })
  t.equal(h.answers.filter(a => a.id === 21).length, 0, 'the oversized request itself is not served')
  await ping(h, 22)
  t.equal(h.transport.bufferedHighWater, limit)
  t.strictSame(count(h.rejections), { too_large: 2 })
})

t.test('tools/call of an unknown tool and with a wrong argument type: what the SDK answers, and the server goes on', async t => {
  const h = await harness(t)
  await initialize(h)
  // An unknown tool is a protocol-level error: JSON-RPC -32602 (Invalid params).
  h.send({ jsonrpc: '2.0', id: 30, method: 'tools/call', params: { name: 'nope', arguments: {} } })
  const unknown = await h.answer(30)
  t.strictSame(unknown, { jsonrpc: '2.0', id: 30, error: { code: -32602, message: 'Tool nope not found' } })

  // A wrong argument type is a tool-level error: a result with isError, so the model can read it and retry.
  h.send({ jsonrpc: '2.0', id: 31, method: 'tools/call', params: { name: 'echo', arguments: { text: 5 } } })
  const wrongType = await h.answer(31)
  t.equal(wrongType.error, undefined, 'not a JSON-RPC error')
  t.equal(wrongType.result?.isError, true)
  t.match(wrongType.result?.content, [{ type: 'text', text: /^Input validation error: Invalid arguments for tool echo: text: .*expected string, received number/ }])

  h.send({ jsonrpc: '2.0', id: 32, method: 'tools/call', params: { name: 'echo', arguments: { text: 'still here' } } })
  t.strictSame((await h.answer(32)).result, { content: [{ type: 'text', text: 'still here' }] })
  t.strictSame(h.rejections, [], 'the transport itself rejected nothing: both are valid JSON-RPC')
})

t.test('the end of the input closes the transport once; send() after close rejects', async t => {
  const h = await harness(t)
  await initialize(h)
  h.input.end()
  await waitFor('the transport closed', () => h.closes() === 1, 5000, 5)
  await h.transport.close()
  t.equal(h.closes(), 1, 'onclose once, however often close() is called')
  await t.rejects(h.transport.send({ jsonrpc: '2.0', id: 1, result: {} }), /closed/)
})

t.test('requests read before the input ended are still answered, then the transport closes', async t => {
  const h = await harness(t)
  await initialize(h)
  h.send({ jsonrpc: '2.0', id: 'last', method: 'tools/call', params: { name: 'echo', arguments: { text: 'bye' } } })
  h.input.end()
  const last = await h.answer('last')
  t.same((last.result as { content: unknown[] }).content, [{ type: 'text', text: 'bye' }], 'answered after the input ended')
  await waitFor('the transport closed', () => h.closes() === 1, 5000, 5)
})

t.test('an output error (EPIPE) closes the transport without throwing', async t => {
  const h = await harness(t)
  await initialize(h)
  const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })
  h.output.destroy(epipe)
  await waitFor('the transport closed', () => h.closes() === 1, 5000, 5)
  h.output.emit('error', epipe) // a late one, after close: swallowed, not an uncaught exception
  t.equal(h.closes(), 1)
})

t.test('backpressure: send() waits for drain, and the wait is bounded', async t => {
  const input = new PassThrough()
  const held: Array<() => void> = []
  const output = new Writable({
    highWaterMark: 16,
    write (_chunk, _encoding, callback) { held.push(() => { callback() }) },
  })
  const transport = new LineTransport(input, output, { maxMessageBytes: KiB, drainTimeoutMs: 200 })
  await transport.start()
  t.teardown(() => transport.close())

  let resolved = false
  const first = transport.send({ jsonrpc: '2.0', id: 1, result: { pad: 'x'.repeat(100) } }).then(() => { resolved = true })
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(resolved, false, 'not resolved while the output is full')
  for (const release of held.splice(0)) release()
  await first
  t.equal(resolved, true, 'resolved on drain')

  const stuck = transport.send({ jsonrpc: '2.0', id: 2, result: { pad: 'x'.repeat(100) } })
  await t.rejects(stuck, /did not drain within 200 ms/)
})

t.test('maxMessageBytes must be a positive integer', async t => {
  t.throws(() => new LineTransport(new PassThrough(), new PassThrough(), { maxMessageBytes: 0 }), RangeError)
})
