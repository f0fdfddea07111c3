/**
 * `edgefwd mcp` against a running gateway (startGateway, as `edgefwd run`) through an outage that
 * fills a small store until it evicts, and a burst of bad frames: the SDK's client over stdio
 * lists the tools and calls each read tool; its figures must equal `/metrics` at the same moment
 * and, once the link is back and everything delivered, the heartbeat. Then, on the same gateway, a raw JSON-RPC
 * exchange over stdio, written here, with malformed and oversized messages, an unknown tool and
 * wrong argument types: each gets a JSON-RPC error (or the spec's tool error), the server keeps
 * answering, and every call is in the gateway's audit log and its metrics.
 */
import { Client } from '@modelcontextprotocol/client'
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio'
import t from 'tap'
import { assertBuilt } from '../helpers/built.js'
import { waitFor } from '../helpers/wait.js'
import { CLI, spawnRawMcp, startMcpGateway } from './helpers/mcp-gateway.js'

assertBuilt()

interface ToolAnswer { content: Array<{ type: string, text: string }>, structuredContent?: Record<string, unknown>, isError?: boolean }

t.test('edgefwd mcp on a running gateway', async t => {
  const g = await startMcpGateway(t, { id: 'gw-mcp' })

  await t.test('the read tools over the SDK client agree with /metrics and the heartbeat, through an outage with evictions', async t => {
    const client = new Client({ name: 'edgefwd-test-agent', version: '1.0.0' })
    const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--socket', g.socket], stderr: 'ignore' })
    await client.connect(transport)
    t.teardown(async () => { await client.close() })
    const call = async (name: string, args: Record<string, unknown> = {}): Promise<ToolAnswer> => await client.callTool({ name, arguments: args }) as ToolAnswer

    const tools = (await client.listTools()).tools.map(x => x.name).sort()
    t.same(tools, ['get_buffer_report', 'get_gateway_health', 'get_incident_context', 'get_slo_report'], 'read-only by default: the remediation tools are not listed')

    // Online: 100 normal events delivered; then the link down, 1500 low events into a 64 KiB store.
    await g.send('dev-n', 1, 100, 1)
    await waitFor('100 delivered', () => (g.gateway.stats()?.uplink.eventsAcked ?? 0) >= 100, 10_000)
    g.proxy.setMode('reset')
    await waitFor('offline', () => g.gateway.stats()?.uplink.state !== 'online', 5000)
    for (let i = 0; i < 6; i++) await g.send('dev-low', 1 + i * 250, 250, 0)
    await g.sendGarbage(40)
    await waitFor('1500 accepted, evictions', () => (g.gateway.stats()?.ingest.events ?? 0) >= 1600 && (g.gateway.stats()?.store.drops.length ?? 0) > 0, 10_000)

    // The incidents are read from samples every 5 s: wait until they show the outage, the loss and the bad frames.
    let incidents: ToolAnswer = await call('get_incident_context', { limit: 10 })
    await waitFor('incidents sampled', async () => {
      incidents = await call('get_incident_context', { limit: 10 })
      const kinds = ((incidents.structuredContent?.incidents ?? []) as Array<{ kind: string }>).map(i => i.kind)
      return kinds.includes('outage') && kinds.includes('data_loss') && kinds.includes('rejected_input')
    }, 20_000, 500)

    // Nothing moves now (no traffic, link down): every figure must equal the scrape.
    const m = await g.scrape()
    const buffer = await call('get_buffer_report')
    const b = buffer.structuredContent as { events: number, usedBytes: number, capacityBytes: number, priorities: Array<{ priority: string, events: number, bytes: number }>, drops: Array<{ priority: string, reason: string, events: number }>, dropsSinceStart: Record<string, number>, timeUntilFullS?: number }
    t.equal(b.events, g.sum(m, 'edgefwd_store_events'), 'buffered events = edgefwd_store_events')
    t.equal(b.usedBytes, g.value(m, 'edgefwd_store_used_bytes'), 'used bytes = edgefwd_store_used_bytes')
    t.equal(b.capacityBytes, 65536, 'capacity')
    for (const p of b.priorities) {
      t.equal(p.events, g.value(m, 'edgefwd_store_events', { priority: p.priority }), `${p.priority}: events = the metric`)
      t.equal(p.bytes, g.value(m, 'edgefwd_store_bytes', { priority: p.priority }), `${p.priority}: bytes = the metric`)
    }
    const evicted = g.value(m, 'edgefwd_events_evicted_total', { priority: 'low' })
    t.ok(evicted > 0, `the outage evicted low events (${evicted})`)
    t.equal(b.drops.find(d => d.priority === 'low' && d.reason === 'evicted_for_space')?.events, evicted, 'evictions = edgefwd_events_evicted_total')
    t.equal(b.dropsSinceStart.evicted_for_space, evicted, 'all of them since this start')
    t.equal(b.timeUntilFullS, 0, 'full: evicting')
    t.match(buffer.content[0]?.text, /evicted_for_space/, 'the text names the reason')

    const health = await call('get_gateway_health')
    const h = health.structuredContent as { ready: boolean, problems: Array<{ component: string, runbook: string, text: string }> }
    const readyz = await fetch(`http://${g.gateway.endpoint ?? ''}/readyz`)
    t.equal(h.ready, readyz.status === 200, 'ready = /readyz')
    t.ok(h.problems.some(p => p.component === 'uplink' && p.runbook === 'docs/operations.md#gateway-offline'), 'the outage is a problem with its runbook')
    t.ok(h.problems.some(p => p.component === 'store' && p.runbook === 'docs/operations.md#buffer-filling'), 'the evictions are one')
    t.ok(h.problems.some(p => p.component === 'ingest' && p.runbook === 'docs/operations.md#malformed-input'), 'the bad frames are one')

    type Incident = { kind: string, endMs?: number, impact: { eventsLost: number, framesRejected: number }, codes: string[], devices?: { untrusted: boolean, values: string[] } }
    const list = incidents.structuredContent?.incidents as Incident[]
    const outage = list.find(i => i.kind === 'outage')
    t.equal(outage?.endMs, undefined, 'the outage goes on')
    t.ok(outage?.codes.includes('EDGEFWD_ERR_UPLINK_CONNECT') === true || outage?.codes.includes('connect') === true, `the outage names what failed: ${outage?.codes.join(', ') ?? ''}`)
    const lossNow = (await call('get_incident_context', { limit: 10 })).structuredContent?.incidents as Incident[]
    t.equal(lossNow.find(i => i.kind === 'data_loss')?.impact.eventsLost, evicted, 'the loss incident counts the evictions')
    const bad = list.find(i => i.kind === 'rejected_input')
    t.equal(bad?.impact.framesRejected, g.sum(m, 'edgefwd_frames_rejected_total'), 'the rejected-input incident counts the rejected frames')

    // The link back: everything buffered is delivered; then the SLO report must equal the heartbeat.
    g.proxy.setMode('pass')
    await waitFor('drained', () => { const s = g.gateway.stats(); return s?.uplink.state === 'online' && s.store.events === 0 && s.uplink.inFlight === 0 }, 20_000)
    const before = g.heartbeats.length
    await waitFor('a heartbeat after the drain', () => g.heartbeats.length > before + 1, 10_000)
    const slo = (await call('get_slo_report')).structuredContent as { windows: Array<{ window: string, accepted: number, delivered: number, lost: number, unexplained: number, deliveryRatio: number }> }
    const beat = g.heartbeats[g.heartbeats.length - 1]
    const hour = slo.windows.find(w => w.window === '1h')
    t.equal(hour?.accepted, beat?.eventsReceived, 'accepted = the heartbeat\'s eventsReceived')
    t.equal(hour?.delivered, beat?.eventsDelivered, 'delivered = the heartbeat\'s eventsDelivered')
    t.equal(hour?.lost, beat?.eventsDropped, 'lost = the heartbeat\'s eventsDropped')
    t.equal(hour?.unexplained, 0, 'nothing unexplained')
    t.equal(hour?.deliveryRatio, beat?.deliverySuccessRatio, 'the delivery ratio = the heartbeat\'s SLI')
    const after = await g.scrape()
    t.equal(hour?.delivered, g.sum(after, 'edgefwd_events_acked_total'), 'delivered = edgefwd_events_acked_total')
    let ended: Incident | undefined
    await waitFor('the outage ended', async () => {
      ended = ((await call('get_incident_context')).structuredContent?.incidents as Incident[]).find(i => i.kind === 'outage')
      return (ended?.endMs ?? 0) > 0
    }, 10_000, 500)
    t.ok((ended?.endMs ?? 0) > 0, 'once online again, the outage has its end')

    // Every call was audited and counted.
    const calls = g.auditLines()
    t.ok(calls.length >= 8, `${calls.length} audit lines`)
    t.ok(calls.every(c => typeof c.time === 'string' && typeof c.caller === 'string' && String(c.caller).includes('edgefwd-test-agent')), 'each names its caller and the agent\'s client name')
    const counted = await g.scrape()
    t.equal(g.value(counted, 'edgefwd_mcp_calls_total', { tool: 'get_buffer_report', outcome: 'ok' }), calls.filter(c => c.tool === 'get_buffer_report').length, 'the metric counts what the audit log holds')
  })

  await t.test('raw JSON-RPC over stdio: bad input gets JSON-RPC errors, the server keeps answering, every call is audited', async t => {
    const before = g.auditLines().length
    const mcp = spawnRawMcp(t, g.socket)
    mcp.write({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw-test', version: '0' } } })
    const init = await mcp.answer(1)
    t.equal((init.result as { protocolVersion: string }).protocolVersion, '2025-11-25', 'initialize: the current protocol revision')
    mcp.write({ jsonrpc: '2.0', method: 'notifications/initialized' })
    mcp.write({ jsonrpc: '2.0', id: 2, method: 'tools/list' })
    t.same(((await mcp.answer(2)).result as { tools: Array<{ name: string }> }).tools.map(x => x.name).sort(), ['get_buffer_report', 'get_gateway_health', 'get_incident_context', 'get_slo_report'])
    let id = 3
    for (const name of ['get_gateway_health', 'get_buffer_report', 'get_incident_context', 'get_slo_report']) {
      mcp.write({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } })
      const r = (await mcp.answer(id++)).result as ToolAnswer
      t.equal(r.isError, undefined, `${name} answers`)
      t.ok(r.content[0]?.text !== undefined && r.structuredContent !== undefined, `${name}: a text and a JSON form`)
      t.ok(JSON.stringify(r).length < 8000, `${name}: small (${JSON.stringify(r).length} chars)`)
    }

    mcp.write('{"jsonrpc": "2.0", "id": 40, "method": "tools/li')
    t.equal(((await mcp.answer(null)).error as { code: number }).code, -32700, 'malformed JSON: a parse error')
    mcp.write({ jsonrpc: '1.0', id: 41, method: 'tools/list' })
    t.equal(((await mcp.answer(41)).error as { code: number }).code, -32600, 'not JSON-RPC 2.0: an invalid request')
    mcp.write(`{"jsonrpc":"2.0","id":42,"method":"tools/list","params":{"pad":"${'x'.repeat(100_000)}"}}`)
    const big = await mcp.answer(null)
    t.equal((big.error as { code: number }).code, -32600, 'a 100 kB request: refused')
    t.match((big.error as { message: string }).message, /too large/)
    mcp.write({ jsonrpc: '2.0', id: 43, method: 'tools/call', params: { name: 'drop_database', arguments: {} } })
    const unknown = await mcp.answer(43)
    t.equal((unknown.error as { code: number }).code, -32602, 'an unknown tool: a JSON-RPC error')
    mcp.write({ jsonrpc: '2.0', id: 44, method: 'tools/call', params: { name: 'get_incident_context', arguments: { limit: 'all' } } })
    const wrong = (await mcp.answer(44)).result as ToolAnswer
    t.equal(wrong.isError, true, 'wrong argument type: a tool error the agent can correct (the MCP 2025-11-25 rule for input validation)')
    t.match(wrong.content[0]?.text, /limit/, 'naming the argument')
    mcp.write({ jsonrpc: '2.0', id: 45, method: 'no/such/method' })
    t.equal(((await mcp.answer(45)).error as { code: number }).code, -32601, 'an unknown method: method not found')

    mcp.write({ jsonrpc: '2.0', id: 46, method: 'tools/call', params: { name: 'get_buffer_report', arguments: {} } })
    t.equal(((await mcp.answer(46)).result as ToolAnswer).isError, undefined, 'still answering after all of it')
    t.equal(mcp.child.exitCode, null, 'still running')

    await waitFor('audited', () => g.auditLines().length >= before + 9, 5000)
    const lines = g.auditLines().slice(before)
    const outcome = (tool: string): unknown[] => lines.filter(l => l.tool === tool).map(l => l.outcome)
    t.same(outcome('drop_database'), ['invalid'], 'the unknown tool is audited under its name')
    t.ok(outcome('get_incident_context').includes('invalid'), 'the wrong argument type too')
    t.equal(outcome('jsonrpc').length, 3, 'the three malformed messages too')
    t.ok(lines.every(l => String(l.caller).startsWith('stdio pid ')), 'the caller: stdio, pid and user')
    const m = await g.scrape()
    t.equal(g.value(m, 'edgefwd_mcp_calls_total', { tool: 'unknown', outcome: 'invalid' }), 1, 'counted: an unknown tool')
    t.equal(g.value(m, 'edgefwd_mcp_calls_total', { tool: 'jsonrpc', outcome: 'invalid' }), 3, 'counted: malformed messages')
  })
})
