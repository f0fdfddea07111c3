import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startControlServer } from '../../src/agent/control-server.js'
import { MAX_LINE_BYTES } from '../../src/agent/protocol.js'
import { EdgefwdError, isEdgefwdError } from '../../src/errors.js'
import { ControlClient, ControlError } from '../../src/mcp/control-client.js'
import { silentLogger } from '../helpers/logger.js'
import { waitFor } from '../helpers/wait.js'

function shortDir (t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'efctl-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

async function code (p: Promise<unknown>): Promise<string | undefined> {
  return await p.then(() => undefined, (err: unknown) => (isEdgefwdError(err) ? err.code : String(err)))
}

/** One raw exchange: the lines written, every line answered until the server closes or 2 s pass. */
async function raw (path: string, text: string): Promise<string[]> {
  const socket = connect(path)
  let got = ''
  socket.on('data', c => { got += c.toString() })
  socket.write(text)
  await new Promise<void>(resolve => { socket.once('close', () => { resolve() }); setTimeout(() => { socket.destroy(); resolve() }, 2000) })
  return got.split('\n').filter(l => l !== '')
}

t.test('answers one line with one line, mode 0660; errors are answers, not disconnects', async t => {
  const path = join(shortDir(t), 'agent.sock')
  const server = await startControlServer(path, async r => {
    if (r.op === 'boom') throw new EdgefwdError('EDGEFWD_ERR_REMEDIATION_REFUSED', 'no')
    if (r.op === 'crash') throw new Error('bug')
    return { echo: r.args, caller: r.caller }
  }, silentLogger())
  t.teardown(async () => { await server.close() })
  t.equal(statSync(path).mode & 0o777, 0o660, 'mode 0660')
  const client = new ControlClient(path, () => 'me')
  t.same(await client.call('hello', {}), { echo: {}, caller: 'me' })
  const err = await client.call('boom' as 'hello', {}).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof ControlError && err.code === 'EDGEFWD_ERR_REMEDIATION_REFUSED', 'an EdgefwdError comes back with its code')
  const bug = await client.call('crash' as 'hello', {}).then(() => undefined, (e: unknown) => e)
  t.ok(bug instanceof ControlError && bug.code === 'internal' && bug.message === 'bug', 'any other error as internal')
  const lines = await raw(path, 'not json\n{"id":"x"}\n{"id":7,"op":"hello"}\n')
  t.equal(lines.length, 3, 'each line answered, in order')
  t.match(lines[0], /"ok":false.*not a control request/)
  t.match(lines[1], /"ok":false/)
  t.match(lines[2], /"id":7,"ok":true/)
  const long = await raw(path, `{"id":1,"op":"${'x'.repeat(MAX_LINE_BYTES + 10)}"}\n`)
  t.match(long[0], /longer than 65536 bytes/, 'an oversized line: one error, then the connection ends')
  t.same(await client.call('hello', {}), { echo: {}, caller: 'me' }, 'still serving')
})

t.test('the socket path: a live edgefwd there is an error, a stale socket is replaced, anything else is left alone', async t => {
  const dir = shortDir(t)
  const path = join(dir, 'agent.sock')
  const first = await startControlServer(path, async () => ({}), silentLogger())
  t.equal(await code(startControlServer(path, async () => ({}), silentLogger())), 'EDGEFWD_ERR_AGENT_SOCKET', 'a live one answering there')
  await first.close()

  // A process that died without removing its socket.
  const stale = join(dir, 'stale.sock')
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)})`])
  await waitFor('the child listening', () => { try { return statSync(stale).isSocket() } catch { return false } }, 10_000)
  child.kill('SIGKILL')
  await new Promise(resolve => child.once('exit', resolve))
  const replaced = await startControlServer(stale, async () => ({ ok: 1 }), silentLogger())
  t.same(await new ControlClient(stale, () => 'x').call('hello', {}), { ok: 1 }, 'the stale socket was replaced')
  await replaced.close()

  const file = join(dir, 'precious.txt')
  writeFileSync(file, 'keep me')
  t.equal(await code(startControlServer(file, async () => ({}), silentLogger())), 'EDGEFWD_ERR_AGENT_SOCKET', 'a regular file is not replaced')
  t.equal(statSync(file).size, 7, 'and is still there')
  t.equal(await code(startControlServer(join(dir, 'missing', 'agent.sock'), async () => ({}), silentLogger())), 'EDGEFWD_ERR_AGENT_SOCKET', 'no such directory')
  t.equal(await code(startControlServer(join(dir, 'x'.repeat(120)), async () => ({}), silentLogger())), 'EDGEFWD_ERR_AGENT_SOCKET', 'a path too long for a unix socket')
})

t.test('the client: nothing listening, or no answer in time, is EDGEFWD_ERR_AGENT_UNREACHABLE', async t => {
  const dir = shortDir(t)
  t.equal(await code(new ControlClient(join(dir, 'none.sock'), () => 'x').call('hello', {})), 'EDGEFWD_ERR_AGENT_UNREACHABLE')
  const path = join(dir, 'slow.sock')
  const server = await startControlServer(path, async () => await new Promise(() => {}), silentLogger())
  t.teardown(async () => { await server.close() })
  t.equal(await code(new ControlClient(path, () => 'x', 300).call('hello', {})), 'EDGEFWD_ERR_AGENT_UNREACHABLE', 'no answer within the timeout')
})
