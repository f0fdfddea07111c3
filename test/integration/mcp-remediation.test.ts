/**
 * Remediation through `edgefwd mcp` (the SDK's client over stdio) on a gateway whose
 * configuration allows reload_tls and reconnect_uplink: a dry run changes nothing and gives a
 * token; the confirmed call does what it says (the uplink reconnects, the new certificate is
 * loaded); a replayed, altered or misused token, an action outside the allowlist and the rate
 * limit are refused with a clear error; the audit log holds all of it, without the tokens.
 */
import { X509Certificate } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { Client } from '@modelcontextprotocol/client'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio'
import { spawn } from 'node:child_process'
import t from 'tap'
import { ControlClient, ControlError } from '../../src/mcp/control-client.js'
import { assertBuilt } from '../helpers/built.js'
import { makeClient } from '../helpers/test-pki.js'
import { waitFor } from '../helpers/wait.js'
import { CLI, startMcpGateway } from './helpers/mcp-gateway.js'

assertBuilt()

interface ToolAnswer { content: Array<{ type: string, text: string }>, structuredContent?: Record<string, unknown>, isError?: boolean }

t.test('allowlisted remediations: dry run, confirmed call, refusals, audit', async t => {
  const g = await startMcpGateway(t, { id: 'gw-fix', mcp: ['reload_tls', 'reconnect_uplink'] })
  const client = new Client({ name: 'fixer', version: '2.0.0' })
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--socket', g.socket], stderr: 'ignore' }))
  t.teardown(async () => { await client.close() })
  const call = async (name: string, args: Record<string, unknown> = {}): Promise<ToolAnswer> => await client.callTool({ name, arguments: args }) as ToolAnswer
  const text = (a: ToolAnswer): string => a.content[0]?.text ?? ''

  t.same((await client.listTools()).tools.map(x => x.name).sort(),
    ['execute_remediation', 'get_buffer_report', 'get_gateway_health', 'get_incident_context', 'get_slo_report', 'list_remediation_actions'], 'with mcp.remediation the write tools are listed')
  const actions = (await call('list_remediation_actions')).structuredContent as { actions: Array<{ name: string }> }
  t.same(actions.actions.map(a => a.name), ['reload_tls', 'reconnect_uplink'], 'exactly the allowlist')

  // reconnect_uplink: the dry run changes nothing; the confirmed call reconnects.
  const connects = (): number => g.gateway.stats()?.uplink.connects ?? 0
  const before = connects()
  const dry = await call('execute_remediation', { action: 'reconnect_uplink', dryRun: true })
  const token = (dry.structuredContent as { token: string, changed: boolean }).token
  t.equal((dry.structuredContent as { changed: boolean }).changed, false, 'a dry run says it changed nothing')
  t.match(text(dry), /would drop the connection/, 'and what it would do')
  await new Promise(resolve => setTimeout(resolve, 500))
  t.equal(connects(), before, 'and it did not: no reconnection')
  const done = await call('execute_remediation', { action: 'reconnect_uplink', token })
  t.equal(done.isError, undefined, `the confirmed call: ${text(done)}`)
  await waitFor('reconnected', () => connects() === before + 1 && g.gateway.stats()?.uplink.state === 'online', 10_000)
  t.pass('the uplink reconnected')

  const replay = await call('execute_remediation', { action: 'reconnect_uplink', token })
  t.equal(replay.isError, true, 'a replayed token is refused')
  t.match(text(replay), /EDGEFWD_ERR_REMEDIATION_REFUSED: .*already used/)
  const forged = await call('execute_remediation', { action: 'reconnect_uplink', token: `${token.slice(0, -2)}AA` })
  t.match(text(forged), /not issued by this gateway/, 'an altered token is refused')
  const made = `${Buffer.from(JSON.stringify({ a: 'reconnect_uplink', g: '[]', n: 'x', e: Date.now() + 60_000 })).toString('base64url')}.${'A'.repeat(43)}`
  t.match(text(await call('execute_remediation', { action: 'reconnect_uplink', token: made })), /not issued by this gateway/, 'a token made up by the caller is refused')
  const again = (await call('execute_remediation', { action: 'reconnect_uplink', dryRun: true })).structuredContent as { token: string, wouldDo: string }
  t.match(again.wouldDo, /allows it again in \d+ s/, 'a dry run within the rate limit says so')
  t.match(text(await call('execute_remediation', { action: 'reconnect_uplink', token: again.token })), /minInterval.*allowed again in/, 'the rate limit refuses a second run within minInterval')
  t.equal(connects(), before + 1, 'none of the refused calls reconnected')
  const other = (await call('execute_remediation', { action: 'reload_tls', dryRun: true })).structuredContent as { token: string }
  t.match(text(await call('execute_remediation', { action: 'reconnect_uplink', token: other.token })), /is for reload_tls, not reconnect_uplink/, 'a token of another action is refused')
  t.match(text(await call('execute_remediation', { action: 'reconnect_uplink' })), /needs the token of a dry run/, 'no token: refused')

  // Outside the allowlist: the tool's schema refuses it, and the gateway would too.
  const compact = await call('execute_remediation', { action: 'compact_store', dryRun: true })
  t.equal(compact.isError, true, 'compact_store is not offered')
  const direct = new ControlClient(g.socket, () => 'test')
  const refusal = await direct.call('dry_run', { action: 'compact_store' }).then(() => undefined, (err: unknown) => err)
  t.ok(refusal instanceof ControlError && refusal.code === 'EDGEFWD_ERR_REMEDIATION_REFUSED' && /not an allowed remediation/.test(refusal.message),
    'the gateway refuses it on its socket as well')

  // reload_tls: a new client certificate on disk; the confirmed call loads it.
  const fresh = makeClient(g.ca, { commonName: 'gw-fix' })
  writeFileSync(g.tls.cert, fresh.certPem)
  writeFileSync(g.tls.key, fresh.keyPem, { mode: 0o600 })
  const serial = new X509Certificate(fresh.certPem).serialNumber
  const reloadDry = await call('execute_remediation', { action: 'reload_tls', dryRun: true })
  t.match(text(reloadDry), /would read .* again/, 'the reload dry run says which files it reads')
  const reload = await call('execute_remediation', { action: 'reload_tls', token: (reloadDry.structuredContent as { token: string }).token })
  t.equal(reload.isError, undefined, `reloaded: ${text(reload)}`)
  t.ok(text(reload).toUpperCase().includes(serial.toUpperCase()), 'the answer names the new certificate\'s serial: it is the one in use')

  // The audit log: every call, with its outcome; the tokens are not in it.
  await waitFor('audited', () => g.auditLines().filter(l => l.tool === 'execute_remediation').length >= 12, 5000)
  const lines = g.auditLines().filter(l => l.tool === 'execute_remediation')
  const outcomes = lines.map(l => l.outcome)
  t.ok(outcomes.filter(o => o === 'dry_run').length >= 4, 'dry runs audited as dry_run')
  t.equal(outcomes.filter(o => o === 'ok').length, 2, 'the two confirmed calls audited as ok')
  t.ok(outcomes.filter(o => o === 'refused').length >= 6, 'the refusals audited as refused, with why')
  t.ok(lines.some(l => l.outcome === 'refused' && /already used/.test(String(l.detail))), 'the replay among them')
  t.ok(lines.some(l => l.outcome === 'invalid' && JSON.stringify(l.arguments).includes('compact_store')), 'the action outside the allowlist too')
  const log = JSON.stringify(g.auditLines())
  t.notOk(log.includes(token), 'no token is written whole to the audit log')
  t.ok(lines.every(l => l.caller === 'test' || String(l.caller).includes('fixer 2.0.0')), 'each names its caller: the agent, or this test on the socket directly')

  // The same gateway over Streamable HTTP on loopback: the caller is the HTTP peer.
  const http = spawn(process.execPath, [CLI, 'mcp', '--socket', g.socket, '--http', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] })
  t.teardown(() => { if (http.exitCode === null) http.kill('SIGKILL') })
  let err = ''
  http.stderr.on('data', (c: Buffer) => { err += c.toString() })
  await waitFor('the HTTP endpoint', () => /Streamable HTTP on (\S+)/.test(err), 10_000)
  const url = /Streamable HTTP on (\S+)/.exec(err)?.[1] ?? ''
  const web = new Client({ name: 'web-agent', version: '1' })
  await web.connect(new StreamableHTTPClientTransport(new URL(url)))
  const viaHttp = await web.callTool({ name: 'get_gateway_health', arguments: {} }) as ToolAnswer
  t.equal((viaHttp.structuredContent as { gatewayId: string }).gatewayId, 'gw-fix', 'the health over HTTP')
  await web.close()
  await waitFor('audited', () => g.auditLines().some(l => String(l.caller).startsWith('http 127.0.0.1')), 5000)
  t.pass('audited with the HTTP peer as its caller')
  const exited = new Promise(resolve => http.once('exit', resolve))
  http.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM stops it, exit 0')
})
