/**
 * `edgefwd simulate --mcp`, as an agent would be pointed at it (the README's lines): an MCP
 * server on stdio attached to the simulated gateway, whose outage and evictions the agent sees
 * through the tools; the summary goes to standard error, and the simulation ends with a verdict
 * once the agent disconnects.
 */
import { spawn } from 'node:child_process'
import { Client } from '@modelcontextprotocol/client'
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio'
import t from 'tap'
import { assertBuilt } from '../helpers/built.js'
import { waitFor } from '../helpers/wait.js'
import { CLI } from './helpers/mcp-gateway.js'

assertBuilt()

t.test('an agent attached to a simulation sees its outage and evictions; the run ends when it leaves', async t => {
  const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, 'simulate', '--mcp', '--duration', '6s'], stderr: 'pipe' })
  let stderr = ''
  transport.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const client = new Client({ name: 'sim-agent', version: '1' })
  await client.connect(transport)
  t.teardown(async () => { await client.close().catch(() => {}) })

  t.equal((await client.listTools()).tools.length, 6, 'the simulated gateway allows remediation: six tools')
  const health = await client.callTool({ name: 'get_gateway_health', arguments: {} }) as { structuredContent: { gatewayId: string } }
  t.equal(health.structuredContent.gatewayId, 'sim-gw', 'the simulated gateway answers')
  let kinds: string[] = []
  await waitFor(`the outage and the evictions as incidents (so far: ${kinds.join(', ')})`, async () => {
    const r = await client.callTool({ name: 'get_incident_context', arguments: { limit: 10 } }) as { structuredContent: { incidents: Array<{ kind: string }> } }
    kinds = r.structuredContent.incidents.map(i => i.kind)
    return kinds.includes('outage') && kinds.includes('data_loss')
  }, 40_000, 1000)
  t.pass(`incidents: ${kinds.join(', ')}`)
  t.match(stderr, /mcp: serving the simulated gateway/, 'it said where the agent is attached')
  await waitFor('the scenario over', () => /the scenario is over/.test(stderr), 60_000, 200)
  const after = await client.callTool({ name: 'get_slo_report', arguments: {} }) as { structuredContent: { windows: Array<{ delivered: number, unexplained: number }> } }
  t.ok((after.structuredContent.windows[0]?.delivered ?? 0) > 0, 'after the scenario the gateway still answers, everything drained')
})

t.test('without an agent on its input, simulate --mcp still runs to its verdict', async t => {
  const child = spawn(process.execPath, [CLI, 'simulate', '--mcp', '--duration', '2s'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr.on('data', (c: Buffer) => { err += c.toString() })
  const code = await new Promise<number | null>(resolve => {
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 90_000)
    child.once('exit', c => { clearTimeout(timer); resolve(c) })
  })
  t.equal(code, 0, 'exit 0')
  t.equal(out, '', 'nothing but MCP on standard output')
  t.match(err, /verdict: OK/)
})
