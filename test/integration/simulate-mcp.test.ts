/**
 * `edgefwd simulate --mcp`, as an agent would be pointed at it (the README's lines): an MCP
 * server on stdio attached to the simulated gateway, whose outage the agent sees through the
 * tools, and which stays up after the scenario (drained) until the agent disconnects; then the
 * summary, on standard error, and exit 0. Standard output carries nothing but MCP.
 */
import t from 'tap'
import { assertBuilt } from '../helpers/built.js'
import { waitFor } from '../helpers/wait.js'
import { spawnRawMcp } from './helpers/mcp-gateway.js'

assertBuilt()

t.test('an agent attached to a simulation sees its outage, and the gateway stays up after the scenario', async t => {
  const agent = spawnRawMcp(t, '', ['simulate', '--mcp', '--duration', '4s', '--devices', '4'])
  let id = 1
  // The first answer waits for the simulation to start its forwarder (certificates, broker, child).
  const call = async (method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> => {
    const n = id++
    agent.write({ jsonrpc: '2.0', id: n, method, params })
    return (await agent.answer(n, n === 1 ? 60_000 : 10_000)).result as Record<string, unknown>
  }
  await call('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'sim-agent', version: '1' } })
  agent.write({ jsonrpc: '2.0', method: 'notifications/initialized' })
  t.equal(((await call('tools/list')).tools as unknown[]).length, 6, 'the simulated gateway allows remediation: six tools')
  const health = await call('tools/call', { name: 'get_gateway_health', arguments: {} })
  t.equal((health.structuredContent as { gatewayId: string }).gatewayId, 'sim-gw', 'the simulated gateway answers')
  let kinds: string[] = []
  await waitFor(`the outage as an incident (so far: ${kinds.join(', ')})`, async () => {
    const r = await call('tools/call', { name: 'get_incident_context', arguments: { limit: 10 } })
    kinds = (r.structuredContent as { incidents: Array<{ kind: string }> }).incidents.map(i => i.kind)
    return kinds.includes('outage')
  }, 40_000, 1000)
  t.pass(`incidents: ${kinds.join(', ')}`)
  t.match(agent.stderr(), /mcp: serving the simulated gateway/, 'it said where the agent is attached')
  await waitFor('the scenario over', () => /the scenario is over/.test(agent.stderr()), 60_000, 200)
  const slo = await call('tools/call', { name: 'get_slo_report', arguments: {} })
  t.ok(((slo.structuredContent as { windows: Array<{ delivered: number }> }).windows[0]?.delivered ?? 0) > 0, 'after the scenario the gateway still answers, everything drained')
  const exited = new Promise<number | null>(resolve => agent.child.once('exit', code => { resolve(code) }))
  agent.child.stdin.end()
  t.equal(await exited, 0, 'the agent gone, the simulation ends: exit 0')
  t.match(agent.stderr(), /verdict: OK/, 'the summary, on standard error')
  t.same(agent.stray, [], 'nothing but MCP on standard output')
})
