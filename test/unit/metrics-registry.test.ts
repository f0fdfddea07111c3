import { spawnSync } from 'node:child_process'
import t from 'tap'
import { LABEL_VALUES, METRICS, REASON_VALUES, type MetricName, type MetricSpec } from '../../src/observe/catalog.js'
import { parseExposition, type Sample } from '../../src/observe/exposition.js'
import { MetricsRegistry } from '../../src/observe/metrics.js'
import { captureLogger } from '../helpers/logger.js'

/** Small specs whose rendering can be written out in full; names are cast, they are not in the catalog. */
const n = (name: string): MetricName => name as MetricName
const SPECS: MetricSpec[] = [
  { name: 'x_total', type: 'counter', help: 'Quoted "help", a back\\slash\nand a newline.', labels: [] },
  { name: 'y_bytes', type: 'gauge', help: 'A gauge.', labels: ['a', 'b'] },
  { name: 'h_seconds', type: 'histogram', help: 'A histogram.', labels: ['p'], buckets: [1, 2, 5] },
  { name: 'u_seconds', type: 'histogram', help: 'No labels.', labels: [], buckets: [0.5] },
]

t.test('a fresh registry: HELP and TYPE for every metric, 0 for metrics without labels', async t => {
  t.equal(await new MetricsRegistry(SPECS).render(), [
    '# HELP x_total Quoted "help", a back\\\\slash\\nand a newline.',
    '# TYPE x_total counter',
    'x_total 0',
    '# HELP y_bytes A gauge.',
    '# TYPE y_bytes gauge',
    '# HELP h_seconds A histogram.',
    '# TYPE h_seconds histogram',
    '# HELP u_seconds No labels.',
    '# TYPE u_seconds histogram',
    'u_seconds_bucket{le="0.5"} 0',
    'u_seconds_bucket{le="+Inf"} 0',
    'u_seconds_sum 0',
    'u_seconds_count 0',
    '',
  ].join('\n'))

  const full = await new MetricsRegistry().render()
  for (const spec of METRICS) {
    t.match(full, `# HELP ${spec.name} `, spec.name)
    t.match(full, `\n# TYPE ${spec.name} ${spec.type}\n`, spec.name)
  }
})

t.test('samples, label escaping, label order and special values', async t => {
  const r = new MetricsRegistry(SPECS)
  r.inc(n('x_total'))
  r.inc(n('x_total'), {}, 2.5)
  // Label order follows the catalog, not the caller's object.
  r.set(n('y_bytes'), 7, { b: 'back\\slash', a: 'say "hi"\nbye' })
  r.set(n('y_bytes'), Infinity, { a: '1', b: '2' })
  r.set(n('y_bytes'), -Infinity, { a: '1', b: '3' })
  r.set(n('y_bytes'), NaN, { a: '1', b: '4' })
  r.observe(n('h_seconds'), 1, { p: 'q' })
  r.observe(n('h_seconds'), 3, { p: 'q' })
  r.observe(n('h_seconds'), 9, { p: 'q' })
  const text = await r.render()
  t.match(text, '\nx_total 3.5\n')
  t.match(text, '\ny_bytes{a="say \\"hi\\"\\nbye",b="back\\\\slash"} 7\n')
  t.match(text, '\ny_bytes{a="1",b="2"} +Inf\ny_bytes{a="1",b="3"} -Inf\ny_bytes{a="1",b="4"} NaN\n')
  t.match(text, [
    'h_seconds_bucket{p="q",le="1"} 1',
    'h_seconds_bucket{p="q",le="2"} 1',
    'h_seconds_bucket{p="q",le="5"} 2',
    'h_seconds_bucket{p="q",le="+Inf"} 3',
    'h_seconds_sum{p="q"} 13',
    'h_seconds_count{p="q"} 3',
  ].join('\n'))
  t.equal(r.get(n('y_bytes'), { a: 'say "hi"\nbye', b: 'back\\slash' }), 7)
})

t.test('the registry copies label objects: a caller reusing its object does not rename a series', async t => {
  const r = new MetricsRegistry(SPECS)
  const labels = { a: 'one', b: 'two' }
  r.set(n('y_bytes'), 1, labels)
  labels.a = 'changed'
  t.match(await r.render(), '\ny_bytes{a="one",b="two"} 1\n')
})

t.test('get: per label set, summed over label sets when labels are omitted', async t => {
  const r = new MetricsRegistry()
  t.equal(r.get('edgefwd_events_accepted_total'), 0, 'a metric without labels starts at 0')
  t.equal(r.get('edgefwd_store_events'), undefined, 'no label set seen yet')
  t.equal(r.get('edgefwd_store_events', { priority: 'low' }), undefined)
  r.set('edgefwd_store_events', 5, { priority: 'low' })
  r.set('edgefwd_store_events', 2, { priority: 'high' })
  r.set('edgefwd_store_events', 4, { priority: 'low' })
  t.equal(r.get('edgefwd_store_events', { priority: 'low' }), 4)
  t.equal(r.get('edgefwd_store_events'), 6)
  r.inc('edgefwd_events_dropped_total', { priority: 'low', reason: 'expired_ttl' }, 3)
  r.inc('edgefwd_events_dropped_total', { reason: 'expired_ttl', priority: 'low' })
  r.inc('edgefwd_events_dropped_total', { priority: 'low', reason: 'evicted_for_space' })
  t.equal(r.get('edgefwd_events_dropped_total', { priority: 'low', reason: 'expired_ttl' }), 4)
  t.equal(r.get('edgefwd_events_dropped_total'), 5)
  t.equal(r.sum('edgefwd_events_dropped_total'), 5)
  t.equal(r.sum('edgefwd_events_evicted_total'), 0, 'sum is 0 before any label set')
  t.equal(r.sum('edgefwd_events_accepted_total'), 0)
  t.same(r.series('edgefwd_events_dropped_total'), [
    { labels: { priority: 'low', reason: 'expired_ttl' }, value: 4 },
    { labels: { priority: 'low', reason: 'evicted_for_space' }, value: 1 },
  ])
  t.same(r.series('edgefwd_frames_received_total'), [])
  t.throws(() => r.sum('edgefwd_puback_latency_seconds'), /is a histogram; sum\(\)/)
  t.throws(() => r.series('edgefwd_puback_latency_seconds'), /is a histogram; series\(\)/)
  r.set('edgefwd_process_cpu_seconds_total', 12.5)
  t.equal(r.get('edgefwd_process_cpu_seconds_total'), 12.5, 'set works on a counter copied from elsewhere')
})

t.test('histogram: cumulative buckets, sum and count; merged over label sets', async t => {
  const r = new MetricsRegistry(SPECS)
  t.equal(r.histogram(n('h_seconds')), undefined)
  for (const v of [0.5, 1.5, 1.5, 3, 10]) r.observe(n('h_seconds'), v, { p: 'a' })
  r.observe(n('h_seconds'), 4, { p: 'b' })
  r.observe(n('h_seconds'), 4, { p: 'b' })
  t.same(r.histogram(n('h_seconds'), { p: 'a' }), {
    buckets: [{ le: 1, count: 1 }, { le: 2, count: 3 }, { le: 5, count: 4 }, { le: Infinity, count: 5 }],
    sum: 16.5,
    count: 5,
  })
  t.same(r.histogram(n('h_seconds')), {
    buckets: [{ le: 1, count: 1 }, { le: 2, count: 3 }, { le: 5, count: 6 }, { le: Infinity, count: 7 }],
    sum: 24.5,
    count: 7,
  })
  t.equal(r.histogram(n('h_seconds'), { p: 'zzz' }), undefined)
  r.observe(n('u_seconds'), 0.5)
  t.same(r.histogram(n('u_seconds'))?.buckets, [{ le: 0.5, count: 1 }, { le: Infinity, count: 1 }], 'a value on a bound counts in that bucket (le is ≤)')
})

t.test('quantile: histogram_quantile by hand', async t => {
  const r = new MetricsRegistry(SPECS)
  t.equal(r.quantile(n('h_seconds'), 0.5), undefined, 'nothing observed')
  t.equal(r.quantile(n('u_seconds'), 0.5), undefined, 'no observations in the always-present series')
  // p=a, cumulative 1, 3, 4, 5 over le 1, 2, 5, +Inf.
  for (const v of [0.5, 1.5, 1.5, 3, 10]) r.observe(n('h_seconds'), v, { p: 'a' })
  const a = { p: 'a' }
  t.equal(r.quantile(n('h_seconds'), 0.1, a), 0.5, 'rank 0.5 in [0, 1] holding 1: 0 + 1 × 0.5/1')
  t.equal(r.quantile(n('h_seconds'), 0.5, a), 1.75, 'rank 2.5 in (1, 2] holding 2 after 1: 1 + 1 × 1.5/2')
  t.equal(r.quantile(n('h_seconds'), 0.7, a), 3.5, 'rank 3.5 in (2, 5] holding 1 after 3: 2 + 3 × 0.5/1')
  t.equal(r.quantile(n('h_seconds'), 0.99, a), 5, 'rank 4.95 in the +Inf bucket: the highest finite bound')
  t.equal(r.quantile(n('h_seconds'), 1, a), 5)
  t.equal(r.quantile(n('h_seconds'), 0, a), 0, 'q 0: the lower bound of the first non-empty bucket')
  // p=b adds two at 4: merged cumulative 1, 3, 6, 7.
  r.observe(n('h_seconds'), 4, { p: 'b' })
  r.observe(n('h_seconds'), 4, { p: 'b' })
  t.equal(r.quantile(n('h_seconds'), 0.5), 2.5, 'merged: rank 3.5 in (2, 5] holding 3 after 3: 2 + 3 × 0.5/3')
  t.equal(r.quantile(n('h_seconds'), 0.5, { p: 'b' }), 3.5, 'rank 1 in (2, 5] holding 2: 2 + 3 × 1/2')
  t.throws(() => r.quantile(n('h_seconds'), 1.5), TypeError)
  t.throws(() => r.quantile(n('h_seconds'), NaN), TypeError)
})

t.test('misuse throws TypeError with a clear message', async t => {
  const r = new MetricsRegistry()
  const cases: Array<[() => unknown, RegExp]> = [
    [() => r.inc(n('edgefwd_nope_total')), /unknown metric "edgefwd_nope_total"/],
    [() => r.inc('edgefwd_store_used_bytes'), /edgefwd_store_used_bytes is a gauge; inc\(\) takes a counter/],
    [() => r.set('edgefwd_puback_latency_seconds', 1), /is a histogram; set\(\) takes a gauge or counter/],
    [() => r.observe('edgefwd_events_accepted_total', 1), /is a counter; observe\(\) takes a histogram/],
    [() => r.get('edgefwd_puback_latency_seconds'), /is a histogram; get\(\)/],
    [() => r.histogram('edgefwd_store_used_bytes'), /is a gauge; histogram\(\)/],
    [() => r.quantile('edgefwd_store_used_bytes', 0.5), /is a gauge; histogram\(\)/],
    [() => r.inc('edgefwd_frames_received_total'), /edgefwd_frames_received_total takes labels \{transport\} \(string values\), got none/],
    [() => r.inc('edgefwd_frames_received_total', {}), /got \{\}/],
    [() => r.inc('edgefwd_frames_received_total', { transport: 'udp', extra: 'x' }), /got \{transport, extra\}/],
    [() => r.inc('edgefwd_frames_received_total', { transprot: 'udp' }), /got \{transprot\}/],
    [() => r.inc('edgefwd_frames_received_total', { transport: 5 as unknown as string }), /takes labels/],
    [() => r.inc('edgefwd_events_dropped_total', { priority: 'low' }), /takes labels \{priority, reason\}/],
    [() => r.inc('edgefwd_events_accepted_total', { transport: 'udp' }), /takes no labels, got \{transport\}/],
    [() => r.get('edgefwd_store_events', { priority: 'low', reason: 'x' }), /takes labels \{priority\}/],
    [() => r.inc('edgefwd_events_accepted_total', {}, -1), /grows by a finite number ≥ 0, not -1/],
    [() => r.inc('edgefwd_events_accepted_total', {}, NaN), /not NaN/],
    [() => r.set('edgefwd_process_cpu_seconds_total', -1), /cannot set counter to -1/],
    [() => r.observe('edgefwd_puback_latency_seconds', NaN), /cannot observe NaN/],
  ]
  for (const [fn, message] of cases) t.throws(fn, { name: 'TypeError', message }, String(message))
  t.throws(() => new MetricsRegistry([SPECS[0] as MetricSpec, SPECS[0] as MetricSpec]), TypeError, 'a name listed twice')
  t.throws(() => new MetricsRegistry([{ name: 'h', type: 'histogram', help: 'h', labels: [], buckets: [2, 1] }]), /ascending/)
  t.throws(() => new MetricsRegistry([{ name: 'h', type: 'histogram', help: 'h', labels: [] }]), /ascending/)
  t.equal(r.get('edgefwd_frames_received_total'), undefined, 'failed calls created no series')
})

t.test('collect hooks: awaited in order before rendering; a throwing hook is logged and skipped', async t => {
  const { logger, records } = captureLogger()
  const r = new MetricsRegistry(undefined, { logger })
  const order: string[] = []
  r.onCollect(async () => {
    await new Promise(resolve => setTimeout(resolve, 5)) // a hook that takes a while: the next must wait for it
    order.push('first')
    r.set('edgefwd_store_used_bytes', 1234)
  })
  r.onCollect(() => { order.push('broken'); throw new Error('source gone') })
  const off = r.onCollect(() => { order.push('third'); r.set('edgefwd_store_capacity_bytes', 99) })
  const text = await r.render()
  t.same(order, ['first', 'broken', 'third'])
  t.match(text, '\nedgefwd_store_used_bytes 1234\n')
  t.match(text, '\nedgefwd_store_capacity_bytes 99\n')
  const warnings = records().filter(rec => rec.level === 40)
  t.equal(warnings.length, 1)
  t.match(warnings[0], { msg: /collect hook failed/, err: { message: 'source gone' } })

  order.length = 0
  await r.collect()
  t.same(order, ['first', 'broken', 'third'], 'collect() runs the same hooks without rendering')
  t.equal(records().filter(rec => rec.level === 40).length, 2)

  off()
  off()
  order.length = 0
  await r.render()
  t.same(order, ['first', 'broken'], 'an unregistered hook no longer runs; unregistering twice is harmless')

  const quiet = new MetricsRegistry()
  quiet.onCollect(async () => { throw new Error('no logger') })
  t.match(await quiet.render(), '# TYPE edgefwd_build_info gauge', 'without a logger a failing hook is still skipped')
})

/** Every catalog metric with samples, label values chosen to need escaping where labels are open. */
function filledRegistry (): MetricsRegistry {
  const r = new MetricsRegistry()
  for (const spec of METRICS) {
    const name = spec.name as MetricName
    const reasons = (REASON_VALUES as Record<string, readonly string[]>)[spec.name] ?? ['connect', 'refused_"135"\\\n']
    const values = (label: string): readonly string[] =>
      label === 'reason' ? reasons : label === 'version' ? ['0.1.0 "dev"\\\n'] : LABEL_VALUES[label] ?? ['x']
    const labelSets = spec.labels.length === 0
      ? [{}]
      : (values(spec.labels[0] as string)).map(v => Object.fromEntries(spec.labels.map((l, i) => [l, i === 0 ? v : values(l)[0] as string])))
    labelSets.forEach((labels, i) => {
      if (spec.type === 'counter') r.inc(name, labels, i + 1)
      else if (spec.type === 'gauge') r.set(name, i === 0 ? 1 : -0.25 * i, labels)
      else for (const v of [0.003, 0.2, 7, 1e6].slice(0, i + 1)) r.observe(name, v, labels)
    })
  }
  return r
}

t.test('parseExposition reads back everything render writes', async t => {
  const r = filledRegistry()
  const samples = parseExposition(await r.render())
  const expected: Sample[] = []
  for (const spec of METRICS) {
    const name = spec.name as MetricName
    const seen = samples.filter(s => s.name === spec.name || s.name.startsWith(`${spec.name}_`))
    t.ok(seen.length > 0, `${spec.name} has samples`)
    for (const s of seen) {
      if (spec.type !== 'histogram') {
        expected.push({ name: s.name, labels: s.labels, value: r.get(name, s.labels) as number })
        continue
      }
      const { le, ...labels } = s.labels
      const h = r.histogram(name, labels)
      if (h === undefined) { t.fail(`no histogram for ${JSON.stringify(labels)}`); continue }
      const value = s.name.endsWith('_bucket') ? h.buckets.find(b => String(b.le) === (le === '+Inf' ? 'Infinity' : le))?.count
        : s.name.endsWith('_sum') ? h.sum : h.count
      expected.push({ name: s.name, labels: s.labels, value: value as number })
    }
  }
  t.same(samples, expected)
  t.ok(samples.some(s => s.labels.version === '0.1.0 "dev"\\\n'), 'escaped label values come back unescaped')
})

t.test('parseExposition: the format details it accepts', async t => {
  t.same(parseExposition([
    '# HELP a_total Help with "quotes".',
    '# TYPE a_total counter',
    '# any other comment',
    '',
    'a_total 1 1700000000000',
    'b{x="1",y="a\\\\b\\"c\\nd",} +Inf',
    '  c:d { x = "v" }\t-Inf',
    'e NaN\r',
    'f 1.5e-3',
    'g -.5',
  ].join('\n')), [
    { name: 'a_total', labels: {}, value: 1 },
    { name: 'b', labels: { x: '1', y: 'a\\b"c\nd' }, value: Infinity },
    { name: 'c:d', labels: { x: 'v' }, value: -Infinity },
    { name: 'e', labels: {}, value: NaN },
    { name: 'f', labels: {}, value: 0.0015 },
    { name: 'g', labels: {}, value: -0.5 },
  ])
})

t.test('parseExposition: a malformed line throws naming its line number', async t => {
  const bad = [
    'x',
    'x ',
    'x abc',
    'x 0x10',
    'x 1 2 3',
    'x 1 later',
    '1x 1',
    'x{a=b} 1',
    'x{a="b" 1',
    'x{a="b"',
    'x{a="\\q"} 1',
    'x{a="1",a="2"} 1',
    'x{="1"} 1',
    'x{a="1"}1',
  ]
  for (const line of bad) {
    t.throws(() => parseExposition(`# TYPE x gauge\nok 1\n${line}\nok 2\n`), { name: 'Error', message: /^exposition line 3: / }, line)
  }
})

t.test('promtool check metrics accepts the full catalog with samples of every type', async t => {
  const text = await filledRegistry().render()
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 })
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    t.fail('promtool is not installed: install Debian\'s prometheus package (apt-get install --no-install-recommends prometheus)')
    return
  }
  t.equal(result.error, undefined, 'promtool ran (and finished within 20 s)')
  t.equal(`${result.stdout}${result.stderr}`, '', 'promtool has no complaints')
  t.equal(result.status, 0, 'promtool exit status')
})
