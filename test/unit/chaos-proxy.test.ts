// simulate/chaos-proxy.ts against a loopback TCP echo server: each mode as its module comment
// documents it, throttling, and close() leaving no TCP handles. Only 127.0.0.1, listen(0), and a
// timer on every wait.
import { connect, createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import t, { type Test } from 'tap'
import { startChaosProxy } from '../../simulate/chaos-proxy.js'
import type { ChaosProxy } from '../../simulate/chaos-proxy.js'
import { waitFor } from '../helpers/wait.js'

const HOST = '127.0.0.1'

interface EchoServer {
  port: number
  /** Server-side sockets, in accept order. */
  sockets: Socket[]
  received: () => number
}

async function startEcho (t: Test): Promise<EchoServer> {
  const sockets: Socket[] = []
  let received = 0
  const server = createServer((s) => {
    sockets.push(s)
    s.on('error', () => {})
    s.on('data', (chunk: Buffer) => { received += chunk.length; s.write(chunk) })
  })
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  return { port: (server.address() as AddressInfo).port, sockets, received: () => received }
}

async function startProxy (t: Test, port: number): Promise<ChaosProxy> {
  const proxy = await startChaosProxy({ target: { host: HOST, port } })
  t.teardown(() => proxy.close())
  return proxy
}

/** A connected client that records what it receives and whether it saw end/close. */
interface Client { socket: Socket, data: () => Buffer, ended: () => boolean, closed: () => boolean }

async function connectClient (t: Test, port: number): Promise<Client> {
  const socket = connect({ host: HOST, port })
  socket.on('error', () => {})
  const chunks: Buffer[] = []
  let ended = false
  let closed = false
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.on('end', () => { ended = true })
  socket.on('close', () => { closed = true })
  t.teardown(() => { socket.destroy() })
  await within(2000, 'connect', new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('close', () => reject(new Error('closed before connect')))
  }))
  return { socket, data: () => Buffer.concat(chunks), ended: () => ended, closed: () => closed }
}

function within<T> (ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms) })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

// The sleeps left are the point of their test: a span in which nothing may pass.
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function tcpHandles (): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TCPServerWrap').length
}

t.test('pass forwards both ways and counts bytes', async t => {
  const echo = await startEcho(t)
  const proxy = await startProxy(t, echo.port)
  t.equal(proxy.url('mqtts'), `mqtts://127.0.0.1:${proxy.port}`)
  t.equal(proxy.mode(), 'pass')
  const c = await connectClient(t, proxy.port)
  c.socket.write('ping')
  await waitFor('echo of ping', () => c.data().toString() === 'ping', 2000)
  await waitFor('server socket', () => echo.sockets.length === 1, 2000)
  echo.sockets[0]!.write('hello')
  await waitFor('server write', () => c.data().toString() === 'pinghello', 2000)
  t.same(proxy.stats(), { connections: 1, open: 1, bytesUp: 4, bytesDown: 9 })
})

t.test('blackhole: sockets stay open, nothing passes either way, held bytes arrive after pass', async t => {
  const echo = await startEcho(t)
  const proxy = await startProxy(t, echo.port)
  const c = await connectClient(t, proxy.port)
  c.socket.write('a')
  await waitFor('echo before blackhole', () => c.data().toString() === 'a', 2000)
  const server = echo.sockets[0]!
  let serverEnded = false
  server.on('end', () => { serverEnded = true })
  server.on('close', () => { serverEnded = true })

  proxy.setMode('blackhole')
  t.equal(proxy.mode(), 'blackhole')
  const receivedBefore = echo.received()
  server.write('down-while-dark;')
  c.socket.write('up-while-dark;')
  // A new connection is accepted but gets nothing through.
  const late = await connectClient(t, proxy.port)
  late.socket.write('late')
  await sleep(500)
  t.equal(echo.received(), receivedBefore, 'no byte reached the target')
  t.equal(c.data().toString(), 'a', 'no byte reached the client')
  t.equal(late.data().length, 0, 'the new connection got nothing back')
  t.notOk(c.ended() || c.closed(), 'client socket still open')
  t.notOk(late.ended() || late.closed(), 'new client socket still open')
  t.notOk(serverEnded, 'target-side socket still open')
  t.equal(proxy.stats().open, 2)

  proxy.setMode('pass')
  await waitFor('held bytes after pass', () => c.data().toString() === 'adown-while-dark;up-while-dark;', 2000)
  await waitFor('new connection after pass', () => late.data().toString() === 'late', 2000)
  t.pass('bytes written during the blackhole arrive, in order, after pass')
})

t.test('blackhole holds a large write without losing it', async t => {
  const echo = await startEcho(t)
  const proxy = await startProxy(t, echo.port)
  const c = await connectClient(t, proxy.port)
  proxy.setMode('blackhole')
  const big = Buffer.alloc(256 * 1024, 7)
  c.socket.write(big)
  await sleep(100)
  t.equal(echo.received(), 0)
  proxy.setMode('pass')
  await waitFor('echo of 256 KiB', () => c.data().length === big.length, 5000)
  t.ok(c.data().equals(big))
})

t.test('reset: both sides see the connection closed, new connections too, until another mode', async t => {
  const echo = await startEcho(t)
  const proxy = await startProxy(t, echo.port)
  const c = await connectClient(t, proxy.port)
  c.socket.write('x')
  await waitFor('echo', () => c.data().length === 1, 2000)
  const server = echo.sockets[0]!
  let serverClosed = false
  server.on('close', () => { serverClosed = true })

  proxy.setMode('reset')
  await waitFor('client close', () => c.closed(), 2000)
  await waitFor('target-side close', () => serverClosed, 2000)
  t.equal(proxy.stats().open, 0)

  const again = connect({ host: HOST, port: proxy.port })
  again.on('error', () => {})
  t.teardown(() => { again.destroy() })
  await within(2000, 'new connection closed', new Promise((resolve) => again.once('close', resolve)))
  t.equal(echo.sockets.length, 1, 'the target was not dialled')

  proxy.setMode('pass')
  const d = await connectClient(t, proxy.port)
  d.socket.write('back')
  await waitFor('echo after reset', () => d.data().toString() === 'back', 2000)
})

t.test('refuse: a new connection is closed, an open one keeps forwarding', async t => {
  const echo = await startEcho(t)
  const proxy = await startProxy(t, echo.port)
  const c = await connectClient(t, proxy.port)
  proxy.setMode('refuse')
  const refused = connect({ host: HOST, port: proxy.port })
  refused.on('error', () => {})
  t.teardown(() => { refused.destroy() })
  let got = 0
  refused.on('data', (b: Buffer) => { got += b.length })
  await within(2000, 'refused connection closed', new Promise((resolve) => refused.once('close', resolve)))
  t.equal(got, 0)
  t.equal(proxy.stats().connections, 2)
  c.socket.write('still')
  await waitFor('open pair still forwards', () => c.data().toString() === 'still', 2000)
  t.equal(echo.sockets.length, 1, 'the target saw only the first connection')
})

t.test('throttle: 200 KB at 100 KB/s takes at least 1.5 s each way', async t => {
  const echo = await startEcho(t)
  const proxy = await startProxy(t, echo.port)
  const c = await connectClient(t, proxy.port)
  proxy.throttle(100_000)
  const size = 200_000
  const start = Date.now()
  c.socket.write(Buffer.alloc(size, 1))
  await waitFor('target received 200 KB', () => echo.received() === size, 6000)
  const upMs = Date.now() - start
  t.ok(upMs >= 1500, `upload took ${upMs} ms`)
  await waitFor('echo of 200 KB', () => c.data().length === size, 6000)
  t.ok(Date.now() - start >= 1500, 'download throttled too')

  proxy.throttle(undefined)
  c.socket.write(Buffer.alloc(size, 2))
  await waitFor('unthrottled echo', () => c.data().length === 2 * size, 3000)
  t.throws(() => proxy.throttle(0), RangeError)
})

t.test('delay: each direction waits the delay, and removing it takes effect at once', async t => {
  const echo = await startEcho(t)
  const proxy = await startProxy(t, echo.port)
  const c = await connectClient(t, proxy.port)
  proxy.delay(300)
  const start = Date.now()
  c.socket.write(Buffer.from('ping'))
  await waitFor('target received', () => echo.received() === 4, 3000)
  const upMs = Date.now() - start
  t.ok(upMs >= 280, `upstream after ${upMs} ms`)
  await waitFor('echo', () => c.data().length === 4, 3000)
  const roundMs = Date.now() - start
  t.ok(roundMs >= 580, `round trip ${roundMs} ms (two delays)`)

  proxy.delay(undefined)
  const again = Date.now()
  c.socket.write(Buffer.from('pong'))
  await waitFor('undelayed echo', () => c.data().length === 8, 3000)
  t.ok(Date.now() - again < 250, 'no delay once removed')
  t.throws(() => proxy.delay(-1), RangeError)
})

/** The TCP handle count once it has stopped changing (sockets of earlier tests close asynchronously). */
async function settledTcpHandles (): Promise<number> {
  let last = tcpHandles()
  for (let i = 0; i < 40; i++) {
    await sleep(50)
    const now = tcpHandles()
    if (now === last) return now
    last = now
  }
  return last
}

t.test('close() destroys every socket and leaves no TCP handle', async t => {
  const echo = await startEcho(t)
  const baseline = await settledTcpHandles()
  const proxy = await startChaosProxy({ target: { host: HOST, port: echo.port } })
  const c = await connectClient(t, proxy.port)
  proxy.throttle(10_000)
  c.socket.write(Buffer.alloc(50_000))
  await waitFor('the throttled transfer under way', () => proxy.stats().bytesUp > 0, 2000)
  await within(2000, 'close()', proxy.close())
  await waitFor('client sees close', () => c.closed(), 2000)
  // The target-side socket closes once it sees the proxy's FIN.
  await waitFor('target side closes', () => echo.sockets.every((s) => s.closed || s.readableEnded), 2000)
  for (const s of echo.sockets) s.destroy()
  await waitFor('the destroyed target sockets to release their handles', () => tcpHandles() <= baseline, 2000)
  t.equal(tcpHandles(), baseline, 'no TCP handle left by the proxy or its client')
  const refused = connect({ host: HOST, port: proxy.port })
  const err = await within(2000, 'connect after close', new Promise<NodeJS.ErrnoException>((resolve) => refused.once('error', resolve)))
  t.equal(err.code, 'ECONNREFUSED')
  await proxy.close()
  t.pass('close() twice is harmless')
})
