// simulate/report.ts on hand-built results: the terminal table, summary.json, and report.html's
// content (charts present, escaping, no network references, no NaN on edge-case inputs).
import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { renderHtml, renderSummary, writeReport } from '../../simulate/report.js'
import type { LinkState, PhaseSpan, Sample, SimulationResult } from '../../simulate/report.js'

/**
 * 120 samples every 250 ms (30 s): connected, an outage from 10 s to 20 s during which the
 * buffer grows, delivered stays flat and low-priority events are evicted, then a drain.
 */
function sampleResult (over: Partial<SimulationResult> = {}): SimulationResult {
  const samples: Sample[] = []
  let sent = 0
  let delivered = 0
  let evicted = 0
  const stored: [number, number, number, number] = [0, 0, 0, 0]
  for (let i = 0; i < 120; i++) {
    const tMs = i * 250
    const outage = tMs >= 10_000 && tMs < 20_000
    const link: LinkState = outage ? 'outage' : 'connected'
    sent += 40
    if (outage) {
      stored[0] += 10; stored[1] += 10; stored[2] += 10; stored[3] += 10
      if (tMs >= 15_000) { stored[0] -= 5; evicted += 5 }
    } else {
      const backlog = stored[0] + stored[1] + stored[2] + stored[3]
      const drain = Math.min(backlog, 60)
      for (let k = 3; k >= 0 && backlog > 0; k--) {
        const take = Math.min(stored[k] ?? 0, Math.ceil(drain / 4))
        stored[k] = (stored[k] ?? 0) - take
        delivered += take
      }
      delivered += 40
    }
    samples.push({
      tMs,
      link,
      uplink: outage ? (i % 8 < 4 ? 'backoff' : 'connecting') : 'online',
      stored: [...stored],
      storedBytes: (stored[0] + stored[1] + stored[2] + stored[3]) * 64,
      capacityBytes: 64 * 1000,
      sent,
      delivered,
      evicted
    })
  }
  const phases: PhaseSpan[] = [
    { kind: 'connected', fromMs: 0, toMs: 10_000 },
    { kind: 'outage', fromMs: 10_000, toMs: 20_000 },
    { kind: 'broker-down', fromMs: 12_000, toMs: 14_000 },
    { kind: 'connected', fromMs: 20_000, toMs: 30_000 }
  ]
  return {
    scenario: { name: 'outage-10s', description: 'Ten seconds without uplink.', seed: 42, durationMs: 30_000, source: 'scenarios/outage-10s.yaml' },
    startedAt: '2025-01-02T03:04:05.000Z',
    wallMs: 34_567,
    samples,
    phases,
    priorities: [
      { priority: 'low', sent: 1200, delivered: 1000, evicted: 100, droppedAtIngest: { rate_limited: 120 }, lostBeforeGateway: 3, duplicates: 7, unexplained: 0 },
      { priority: 'normal', sent: 1200, delivered: 1197, evicted: 0, droppedAtIngest: {}, lostBeforeGateway: 3, duplicates: 2, unexplained: 0 },
      { priority: 'high', sent: 1200, delivered: 1200, evicted: 0, droppedAtIngest: {}, lostBeforeGateway: 0, duplicates: 0, unexplained: 0 },
      { priority: 'critical', sent: 1200, delivered: 1200, evicted: 0, droppedAtIngest: {}, lostBeforeGateway: 0, duplicates: 1, unexplained: 0 }
    ],
    latencyMs: { p50: 12.4, p99: 10_234.7, max: 11_002, count: 4597 },
    wire: { bytesUp: 229_850, eventsDelivered: 4597, bytesPerEvent: 50 },
    verdict: { ok: true, reasons: [] },
    ...over
  }
}

function failed (): SimulationResult {
  const r = sampleResult({ verdict: { ok: false, reasons: ['2 unexplained low events', '1 critical event not delivered'] } })
  const low = r.priorities[0]
  if (low !== undefined) low.unexplained = 2
  return r
}

t.test('summary: one row per priority, a total row, latency, wire and verdict', async (t) => {
  const text = renderSummary(sampleResult())
  const lines = text.split('\n')
  for (const l of lines) t.ok(l.length <= 100, `line under 100 columns: ${JSON.stringify(l)}`)
  t.match(text, /priority\s+sent\s+delivered\s+evicted\s+dropped\s+lost before\s+duplicates\s+unexplained/)
  t.match(text, /\(reported\)\s+at ingest\s+gateway\s+removed/)
  t.match(text, /^low\s+1200\s+1000\s+100\s+120 \(rate_limited 120\)\s+3\s+7\s+0$/m)
  t.match(text, /^normal\s+1200\s+1197\s+0\s+0\s+3\s+2\s+0$/m)
  t.match(text, /^critical\s+1200\s+1200\s+0\s+0\s+0\s+1\s+0$/m)
  t.match(text, /^total\s+4800\s+4597\s+100\s+120 \(rate_limited 120\)\s+6\s+10\s+0$/m)
  t.match(text, /^latency p50 12 ms, p99 10235 ms \(4597 events\)$/m)
  t.match(text, /^wire: 50\.0 bytes\/event \(229850 bytes for 4597 events\)$/m)
  t.match(text, /^verdict: OK — no unexplained loss, every critical event delivered$/m)
  t.notMatch(text, /\u001b/, 'no colour escapes')

  // Numbers are right-aligned: every row's columns end at the same offsets as the header's.
  const header = lines.find((l) => l.startsWith('priority')) ?? ''
  const row = lines.find((l) => l.startsWith('high')) ?? ''
  t.equal(row.indexOf('1200') + 4, header.indexOf('sent') + 4, 'sent right-aligned under its header')
})

t.test('summary: a failed verdict lists its reasons; many ingest reasons move to footnotes', async (t) => {
  const r = failed()
  const low = r.priorities[0]
  if (low !== undefined) low.droppedAtIngest = { rate_limited: 120, malformed: 30, oversize_frame: 4, unknown_device: 9, crc_mismatch: 2 }
  const text = renderSummary(r)
  t.match(text, /^verdict: FAILED — 2 unexplained low events; 1 critical event not delivered$/m)
  t.match(text, /^low\s+1200\s+1000\s+100\s+165\*\s+3\s+7\s+2$/m)
  t.match(text, /^\* dropped at ingest, low: rate_limited 120, malformed 30/m)
  for (const l of text.split('\n')) t.ok(l.length <= 100, `line under 100 columns: ${JSON.stringify(l)}`)
})

t.test('summary and html: a line per group of mqtt and modbus devices, none without them', async (t) => {
  t.notMatch(renderSummary(sampleResult()), /sources:/, 'a scenario without source devices shows no such line')
  const r = sampleResult({
    sources: [
      { transport: 'mqtt', devices: 'tasmota-1', count: 1, priority: 'normal', sent: 200, delivered: 195, evicted: 5, droppedAtIngest: 0, lostBeforeGateway: 0, duplicates: 2, unexplained: 0 },
      { transport: 'modbus', devices: 'meter-{n}', count: 3, priority: 'high', sent: 240, delivered: 240, evicted: 0, droppedAtIngest: 0, lostBeforeGateway: 0, duplicates: 0, unexplained: 0 }
    ]
  })
  const text = renderSummary(r)
  t.match(text, /^sources: mqtt tasmota-1 \(normal\): 200 messages, 195 delivered, 5 evicted, 2 duplicates$/m)
  t.match(text, /^ {9}modbus meter-\{n\} ×3 \(high\): 240 polls, 240 delivered$/m, 'aligned under the first, zero columns left out')
  t.ok(text.indexOf('sources:') > text.indexOf('total ') && text.indexOf('sources:') < text.indexOf('latency'), 'after the table, before latency')
  const html = renderHtml(r)
  t.match(html, /<p>sources: mqtt tasmota-1 \(normal\): 200 messages, 195 delivered, 5 evicted, 2 duplicates<br>modbus meter-\{n\} ×3 \(high\): 240 polls, 240 delivered<\/p>/)
  t.notMatch(renderHtml(sampleResult()), /sources:/)
})

t.test('summary: control characters in a scenario name do not reach the terminal', async (t) => {
  const r = sampleResult()
  r.scenario.name = 'evil\u001b[31mred'
  t.notMatch(renderSummary(r), /\u001b/)
})

t.test('writeReport: creates the directory, summary.json round-trips', async (t) => {
  const dir = t.testdir()
  const r = sampleResult()
  const out = await writeReport(`${dir}/nested/run-1`, r)
  t.match(out.json, /nested\/run-1\/summary\.json$/)
  t.match(out.html, /nested\/run-1\/report\.html$/)
  t.same(JSON.parse(readFileSync(out.json, 'utf8')), r)
  t.equal(readFileSync(out.html, 'utf8'), renderHtml(r))
})

function assertClean (t: Test, html: string): void {
  t.notMatch(html, /NaN/, 'no NaN')
  t.notMatch(html, /Infinity/, 'no Infinity')
  t.notMatch(html, /undefined/, 'no undefined')
  const withoutSvgNs = html.split('http://www.w3.org/2000/svg').join('')
  t.notMatch(withoutSvgNs, /https?:\/\//, 'no network reference besides the SVG namespace')
  t.notMatch(withoutSvgNs, /\bsrc=|<link\b|@import|url\(/, 'no external resources')
  t.notMatch(html, /<script/i, 'no script')
}

function charts (html: string): string[] {
  return [...html.matchAll(/<svg\b[^>]*data-chart="([a-z]+)"/g)].map((m) => m[1] ?? '')
}
function chartBody (html: string, kind: string): string {
  const start = html.indexOf(`data-chart="${kind}"`)
  return html.slice(start, html.indexOf('</svg>', start))
}

t.test('html: four charts, buffer paths, eviction bars, summary table, clean', async (t) => {
  const html = renderHtml(sampleResult())
  assertClean(t, html)
  t.same(charts(html), ['timeline', 'buffer', 'delivery', 'evictions'])
  for (const kind of ['timeline', 'buffer', 'delivery', 'evictions']) {
    t.match(chartBody(html, kind), /<title id="chart-[a-z]+-title">[^<]+<\/title>/, `${kind} has a title`)
    t.match(chartBody(html, kind), /seconds since start/, `${kind} has the shared x axis`)
  }
  const buffer = chartBody(html, 'buffer')
  t.same([...buffer.matchAll(/<path data-priority="([a-z]+)" d="M[^"]+Z"/g)].map((m) => m[1]), ['low', 'normal', 'high', 'critical'])
  t.match(buffer, /<polyline data-series="fill" points="[^"]+"[^>]*stroke-dasharray/)
  t.match(buffer, /% of capacity/)
  const delivery = chartBody(html, 'delivery')
  t.match(delivery, /<polyline data-series="sent" points="[\d., ]+"/)
  t.match(delivery, /<polyline data-series="delivered" points="[\d., ]+"/)
  const bars = [...chartBody(html, 'evictions').matchAll(/<rect data-bar="(\d+)"/g)].map((m) => Number(m[1]))
  t.ok(bars.length > 0, 'eviction bars drawn')
  t.equal(bars.reduce((a, b) => a + b, 0), 100, 'bars add up to the evictions sampled')
  const timeline = chartBody(html, 'timeline')
  t.match(timeline, /data-band="link" data-state="outage"/)
  t.match(timeline, /data-band="phase" data-state="broker-down"/)
  t.match(timeline, /data-band="uplink" data-state="backoff"/)
  t.match(timeline, /<g class="legend">.*outage/)
  // The outage band spans 10 s..20 s on the shared axis: x = 70 + t/30 s * 960.
  t.match(timeline, /data-state="outage" x="390" y="[\d.]+" width="320"/)

  t.match(html, /<h1>edgefwd simulation: outage-10s<\/h1>/)
  t.match(html, /class="verdict ok"/)
  t.match(html, /<tr class="total"><th scope="row">total<\/th><td>4800<\/td><td>4597<\/td><td>100<\/td><td>120 \(rate_limited 120\)<\/td>/)
  t.match(html, /latency p50 12 ms, p99 10235 ms \(4597 events\), max 11002 ms/)
})

t.test('html: a failed verdict is red and lists reasons; unexplained cells are marked', async (t) => {
  const html = renderHtml(failed())
  t.match(html, /class="verdict failed">FAILED<ul><li>2 unexplained low events<\/li><li>1 critical event not delivered<\/li>/)
  t.match(html, /<td class="bad">2<\/td>/)
})

t.test('html: user text is escaped everywhere', async (t) => {
  const r = sampleResult()
  r.scenario.name = 'a <b>"name"</b> & co'
  r.scenario.description = 'look <script>alert(1)</script> here'
  r.scenario.source = 'kind: x\n# <script>bad()</script>\n'
  r.phases.push({ kind: '<img onerror=x>', fromMs: 1000, toMs: 2000 })
  r.verdict = { ok: false, reasons: ['<script>reason</script>'] }
  const html = renderHtml(r)
  t.notMatch(html, /<script/i)
  t.notMatch(html, /<img/i)
  t.match(html, /look &lt;script&gt;alert\(1\)&lt;\/script&gt; here/)
  t.match(html, /a &lt;b&gt;&quot;name&quot;&lt;\/b&gt; &amp; co/)
  t.match(html, /data-state="&lt;img onerror=x&gt;"/)
  assertClean(t, html)
})

t.test('html: edge cases render without NaN', async (t) => {
  const empty = sampleResult({ samples: [], phases: [] })
  empty.scenario.durationMs = 0
  const one = sampleResult({ samples: [sampleResult().samples[50] as Sample] })
  const zeros = sampleResult({
    samples: Array.from({ length: 10 }, (_, i): Sample => ({ tMs: i * 250, link: 'connected', uplink: 'online', stored: [0, 0, 0, 0], storedBytes: 0, capacityBytes: 0, sent: 0, delivered: 0, evicted: 0 })),
    latencyMs: { p50: 0, p99: 0, max: 0, count: 0 },
    wire: { bytesUp: 0, eventsDelivered: 0, bytesPerEvent: 0 }
  })
  const sameTime = sampleResult({
    samples: Array.from({ length: 5 }, (): Sample => ({ tMs: 0, link: 'outage', uplink: 'backoff', stored: [1, 2, 3, 4], storedBytes: 10, capacityBytes: 100, sent: 5, delivered: 1, evicted: 1 }))
  })
  sameTime.scenario.durationMs = 0
  const nonFinite = sampleResult({ wire: { bytesUp: 0, eventsDelivered: 0, bytesPerEvent: Number.NaN } })
  for (const [name, r] of Object.entries({ empty, one, zeros, sameTime, nonFinite })) {
    const html = renderHtml(r)
    t.same(charts(html), ['timeline', 'buffer', 'delivery', 'evictions'], `${name}: four charts`)
    assertClean(t, html)
    t.notMatch(renderSummary(r), /NaN|Infinity|undefined/, `${name}: summary clean`)
  }
  t.match(renderHtml(empty), /no samples recorded/)
  t.match(renderHtml(zeros), /no evictions/)
  t.match(renderSummary(nonFinite), /wire: n\/a bytes\/event/)
})

t.test('html: a long run is downsampled to at most ~600 points per series', async (t) => {
  const base = sampleResult()
  const samples: Sample[] = []
  // 4 hours at 250 ms = 57,600 samples, with a flapping uplink that changes every sample.
  for (let i = 0; i < 57_600; i++) {
    samples.push({
      tMs: i * 250,
      link: Math.floor(i / 5000) % 2 === 1 ? 'outage' : 'connected',
      uplink: i % 2 === 0 ? 'online' : 'backoff',
      stored: [i % 100, 1, 2, 3],
      storedBytes: 100,
      capacityBytes: 1000,
      sent: i * 10,
      delivered: i * 9,
      evicted: Math.floor(i / 3)
    })
  }
  base.samples = samples
  base.scenario.durationMs = 57_600 * 250
  const html = renderHtml(base)
  assertClean(t, html)
  const buffer = chartBody(html, 'buffer')
  for (const m of buffer.matchAll(/<path data-priority="[a-z]+" d="([^"]+)"/g)) {
    t.ok((m[1] ?? '').split(/[ML]/).length - 1 <= 2 * 600, 'area path points bounded')
  }
  for (const m of chartBody(html, 'delivery').matchAll(/points="([^"]+)"/g)) {
    t.ok((m[1] ?? '').split(' ').length <= 600, 'rate polyline points bounded')
  }
  t.ok([...chartBody(html, 'evictions').matchAll(/data-bar=/g)].length <= 300, 'bars bounded')
  t.ok([...chartBody(html, 'timeline').matchAll(/data-band="uplink"/g)].length <= 600, 'uplink bands bounded')
  t.ok(html.length < 2_000_000, `report stays small (${html.length} bytes)`)
})
