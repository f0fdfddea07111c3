/**
 * `edgefwd simulate --mcp`, as an agent would be pointed at it (the README's lines): an MCP
 * server on stdio attached to the simulated gateway, whose outage the agent sees through the
 * tools, and which stays up after the scenario (drained) until the agent disconnects; standard
 * output carries nothing but MCP (the client would fail on anything else).
 */
import { Client } from '@modelcontextprotocol/client'
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio'
import t from 'tap'
import { assertBuilt } from '../helpers/built.js'
import { waitFor } from '../helpers/wait.js'
import { CLI } from './helpers/mcp-gateway.js'

assertBuilt()

t.test('an agent attached to a simulation sees its outage, and the gateway stays up after the scenario', async t => {
  const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, 'simulate', '--mcp', '--duration', '4s', '--devices', '4'], stderr: 'pipe' })
  let stderr = ''
  transport.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const client = new Client({ name: 'sim-agent', version: '1' })
  await client.connect(transport)
  t.teardown(async () => { await client.close().catch(() => {}) })

  t.equal((await client.listTools()).tools.length, 6, 'the simulated gateway allows remediation: six tools')
  const health = await client.callTool({ name: 'get_gateway_health', arguments: {} }) as { structuredContent: { gatewayId: string } }
  t.equal(health.structuredContent.gatewayId, 'sim-gw', 'the simulated gateway answers')
  let kinds: string[] = []
  await waitFor(`the outage as an incident (so far: ${kinds.join(', ')})`, async () => {
    const r = await client.callTool({ name: 'get_incident_context', arguments: { limit: 10 } }) as { structuredContent: { incidents: Array<{ kind: string }> } }
    kinds = r.structuredContent.incidents.map(i => i.kind)
    return kinds.includes('outage')
  }, 40_000, 1000)
  t.pass(`incidents: ${kinds.join(', ')}`)
  t.match(stderr, /mcp: serving the simulated gateway/, 'it said where the agent is attached')
  await waitFor('the scenario over', () => /the scenario is over/.test(stderr), 60_000, 200)
  const after = await client.callTool({ name: 'get_slo_report', arguments: {} }) as { structuredContent: { windows: Array<{ delivered: number, unexplained: number }> } }
  t.ok((after.structuredContent.windows[0]?.delivered ?? 0) > 0, 'after the scenario the gateway still answers, everything drained')
})
