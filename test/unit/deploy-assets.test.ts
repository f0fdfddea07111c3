/**
 * The operator assets in deploy/ against the metric catalog (src/observe/catalog.ts) and
 * docs/operations.md: the Prometheus rules pass `promtool check rules` and their unit tests pass
 * `promtool test rules`; every metric the rules, their tests and the Grafana dashboard name is in
 * the catalog; every catalog metric is documented; every runbook link lands on a heading.
 *
 * promtool comes with Debian's `prometheus` package (.ci/run installs it). Without it the
 * promtool checks fail rather than skip: an unchecked rules file is how alerts silently break.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { METRICS } from '../../src/observe/catalog.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const RULES = join(root, 'deploy/prometheus/edgefwd-rules.yml')
const RULES_TEST = join(root, 'deploy/prometheus/edgefwd-rules.test.yml')
const DASHBOARD = join(root, 'deploy/grafana/edgefwd.json')
const OPERATIONS = join(root, 'docs/operations.md')
const PROMTOOL_TIMEOUT_MS = 60_000
const INSTALL_HINT = 'promtool not found: install Debian\'s `prometheus` package (apt-get install --no-install-recommends prometheus), which provides /usr/bin/promtool'

// ── promtool ──

interface ToolRun { status: number | null, output: string, missing: boolean, error?: string }

function promtool (args: string[]): ToolRun {
  const r = spawnSync('promtool', args, { cwd: root, encoding: 'utf8', timeout: PROMTOOL_TIMEOUT_MS })
  const code = (r.error as NodeJS.ErrnoException | undefined)?.code
  return {
    status: r.status,
    output: `${r.stdout ?? ''}${r.stderr ?? ''}`,
    missing: code === 'ENOENT',
    ...(r.error === undefined ? {} : { error: r.error.message }),
  }
}

t.test('promtool check rules deploy/prometheus/edgefwd-rules.yml', async t => {
  const r = promtool(['check', 'rules', RULES])
  if (r.missing) return t.fail(INSTALL_HINT)
  t.equal(r.error, undefined, 'promtool ran (no spawn error or timeout)')
  t.equal(r.status, 0, `exit 0; output:\n${r.output}`)
  t.match(r.output, /SUCCESS: \d+ rules found/)
})

t.test('promtool test rules deploy/prometheus/edgefwd-rules.test.yml', async t => {
  const r = promtool(['test', 'rules', RULES_TEST])
  if (r.missing) return t.fail(INSTALL_HINT)
  t.equal(r.error, undefined, 'promtool ran (no spawn error or timeout)')
  t.equal(r.status, 0, `exit 0; output:\n${r.output}`)
  t.match(r.output, /SUCCESS/, 'promtool reports SUCCESS')
  t.notMatch(r.output, /FAILED/)
})

// ── metric names ──

const CATALOG = new Map<string, string>(METRICS.map(m => [m.name, m.type]))
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count']

/** Words in PromQL that are not metric names: operators, modifiers, keywords. */
const PROMQL_WORDS = new Set([
  'and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right',
  'inf', 'nan', 'atan2', 'start', 'end',
])

/**
 * The metric names a PromQL expression (or a Grafana target's) selects: strings, label matchers,
 * range and subquery brackets, grouping clauses and Grafana variables are removed first; then a
 * word followed by `(` is a function or aggregation, and a keyword is not a name.
 */
export function metricNamesIn (expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
  const names: string[] = []
  for (const m of stripped.matchAll(/(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0]
    const after = stripped.slice((m.index ?? 0) + word.length)
    if (/^\s*\(/.test(after)) continue
    if (PROMQL_WORDS.has(word.toLowerCase())) continue
    names.push(word)
  }
  return names
}

/** Why `name` is not an exported metric, or undefined when it is one. */
function unknownMetric (name: string, recorded: ReadonlySet<string>): string | undefined {
  if (name === 'up' || recorded.has(name) || CATALOG.has(name)) return undefined
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (!name.endsWith(suffix)) continue
    const base = name.slice(0, -suffix.length)
    const type = CATALOG.get(base)
    if (type === 'histogram') return undefined
    if (type !== undefined) return `${name}: ${base} is a ${type}, not a histogram`
  }
  return `${name}: not in src/observe/catalog.ts`
}

interface RuleFile { groups: Array<{ name: string, rules: Array<Record<string, unknown>> }> }
interface RuleTestFile { tests: Array<{ input_series?: Array<{ series: string }>, promql_expr_test?: Array<{ expr: string }> }> }

function readRules (path: string): RuleFile {
  return parseYaml(readFileSync(path, 'utf8')) as RuleFile
}

/** Every `expr` string anywhere in a JSON value (panels, nested rows, targets). */
function exprFields (value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) {
    for (const v of value) exprFields(v, out)
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'expr' && typeof v === 'string') out.push(v)
      else exprFields(v, out)
    }
  }
  return out
}

export interface MetricCheck {
  /** `file: problem` for each name that is not an exported metric. */
  problems: string[]
  /** Every metric name seen, for the checker's own sanity. */
  seen: Set<string>
}

/** Checks the metric names of the rules file, the rules test file and the dashboard at the given paths. */
export function checkMetricNames (paths: { rules: string, rulesTest: string, dashboard: string }): MetricCheck {
  const problems: string[] = []
  const seen = new Set<string>()
  const rules = readRules(paths.rules)
  const recorded = new Set(rules.groups.flatMap(g => g.rules.map(r => r.record)).filter((r): r is string => typeof r === 'string'))
  const check = (file: string, names: string[]): void => {
    for (const name of names) {
      seen.add(name)
      const problem = unknownMetric(name, recorded)
      if (problem !== undefined) problems.push(`${file}: ${problem}`)
    }
  }
  for (const group of rules.groups) {
    for (const rule of group.rules) check(paths.rules, metricNamesIn(String(rule.expr)))
  }
  const tests = parseYaml(readFileSync(paths.rulesTest, 'utf8')) as RuleTestFile
  for (const test of tests.tests) {
    for (const input of test.input_series ?? []) check(paths.rulesTest, [input.series.replace(/\{.*$/s, '').trim()])
    for (const promql of test.promql_expr_test ?? []) check(paths.rulesTest, metricNamesIn(promql.expr))
  }
  const dashboard = JSON.parse(readFileSync(paths.dashboard, 'utf8')) as unknown
  for (const expr of exprFields(dashboard)) check(paths.dashboard, metricNamesIn(expr))
  return { problems, seen }
}

t.test('the PromQL name extractor', async t => {
  t.same(metricNamesIn('histogram_quantile(0.99, sum by (job, instance, le) (rate(edgefwd_delivery_lag_seconds_bucket{job="edgefwd", priority=~"a|b"}[5m])))'),
    ['edgefwd_delivery_lag_seconds_bucket'])
  t.same(metricNamesIn('max by (job) (max_over_time(up{job="edgefwd"}[1d])) unless on (job, instance) up offset 1h30m'), ['up', 'up'])
  t.same(metricNamesIn('a_metric / ignoring(x) group_left(y) b:recorded > 0.5e3 and bool c'), ['a_metric', 'b:recorded', 'c'])
  t.same(metricNamesIn('sum(rate(x_total{instance=~"$instance"}[$__rate_interval])) or vector(0)'), ['x_total'])
  t.same(metricNamesIn('sum without (state) (s{state="online"}) == 0'), ['s'])
})

t.test('every metric named in the rules, their tests and the dashboard is in the catalog', async t => {
  const { problems, seen } = checkMetricNames({ rules: RULES, rulesTest: RULES_TEST, dashboard: DASHBOARD })
  t.same(problems, [], 'no unknown metric names')
  t.ok(seen.has('edgefwd_store_used_bytes') && seen.has('edgefwd_delivery_lag_seconds_bucket') && seen.has('up'),
    'the checker sees names in rules, histogram series and the dashboard')
  t.ok(seen.size >= 40, `many names seen (${seen.size})`)
})

t.test('the checker catches a bogus metric (mutation check on a copy)', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefwd-deploy-assets-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> }
  const panel = dashboard.panels.find(p => (p.targets?.length ?? 0) > 0)
  if (panel?.targets === undefined) throw new Error('no panel with targets in the dashboard')
  panel.targets.push({ expr: 'sum(rate(edgefwd_bogus_frames_total{instance=~"$instance"}[$__rate_interval]))' })
  panel.targets.push({ expr: 'edgefwd_store_bytes_count' })
  const copy = join(dir, 'edgefwd.json')
  writeFileSync(copy, JSON.stringify(dashboard))
  const { problems } = checkMetricNames({ rules: RULES, rulesTest: RULES_TEST, dashboard: copy })
  t.equal(problems.length, 2, problems.join('\n'))
  t.ok(problems.some(p => p.includes('edgefwd_bogus_frames_total: not in src/observe/catalog.ts')), 'unknown name caught')
  t.ok(problems.some(p => p.includes('edgefwd_store_bytes_count: edgefwd_store_bytes is a gauge, not a histogram')),
    'a histogram suffix on a non-histogram caught')

  const rulesCopy = join(dir, 'rules.yml')
  writeFileSync(rulesCopy, readFileSync(RULES, 'utf8').replace('edgefwd_store_memory_mode{job="edgefwd"} == 1', 'edgefwd_store_memory_mod{job="edgefwd"} == 1'))
  const rules = checkMetricNames({ rules: rulesCopy, rulesTest: RULES_TEST, dashboard: DASHBOARD })
  t.same(rules.problems, [`${rulesCopy}: edgefwd_store_memory_mod: not in src/observe/catalog.ts`], 'a misspelt name in the rules caught')
})

// ── docs/operations.md ──

const operations = readFileSync(OPERATIONS, 'utf8')

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats. */
function headingAnchors (markdown: string): Set<string> {
  const anchors = new Set<string>()
  const counts = new Map<string, number>()
  let fenced = false
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced
    const m = fenced ? null : /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line)
    if (m === null) continue
    const base = (m[1] ?? '').toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
    const n = counts.get(base) ?? 0
    counts.set(base, n + 1)
    anchors.add(n === 0 ? base : `${base}-${n}`)
  }
  return anchors
}

t.test('every catalog metric is documented in docs/operations.md', async t => {
  for (const m of METRICS) {
    t.ok(operations.includes(`| \`${m.name}\` | ${m.type} |`), `${m.name} has a row (name, type) in a metrics table`)
  }
})

t.test('every alert has a severity, a summary, a description and a runbook that lands on a heading', async t => {
  const anchors = headingAnchors(operations)
  t.ok(anchors.has('gateway-offline') && anchors.has('remote-configuration'), 'the anchor builder finds headings')
  const rules = readRules(RULES)
  const alerts = rules.groups.flatMap(g => g.rules).filter(r => typeof r.alert === 'string')
  t.ok(alerts.length >= 10, `${alerts.length} alerts`)
  for (const rule of alerts) {
    const name = String(rule.alert)
    const labels = (rule.labels ?? {}) as Record<string, string>
    const annotations = (rule.annotations ?? {}) as Record<string, string>
    t.match(labels.severity, /^(critical|warning|info)$/, `${name}: severity`)
    t.ok(annotations.summary !== undefined && annotations.description !== undefined, `${name}: summary and description`)
    const runbooks = Object.entries(annotations).filter(([k]) => k.includes('runbook'))
    t.equal(runbooks.length, 1, `${name}: one runbook annotation`)
    for (const [, url] of runbooks) {
      const m = /^(.*)#([^#]+)$/.exec(url)
      t.ok(m !== null && (m[1] ?? '').endsWith('docs/operations.md'), `${name}: ${url} points into docs/operations.md`)
      t.ok(anchors.has(m?.[2] ?? ''), `${name}: #${m?.[2] ?? ''} is a heading of docs/operations.md`)
    }
    t.ok(operations.includes(`\`${name}\``), `${name} is described in docs/operations.md`)
  }
})

t.test('the required alerts exist', async t => {
  const alerts = new Set(readRules(RULES).groups.flatMap(g => g.rules).map(r => r.alert))
  for (const name of ['EdgefwdGatewayDown', 'EdgefwdUplinkNotOnline', 'EdgefwdBufferFilling', 'EdgefwdCriticalEventsEvicted',
    'EdgefwdHighEventsEvicted', 'EdgefwdDeliveryLagHigh', 'EdgefwdCertExpiringSoon', 'EdgefwdCertExpiryCritical',
    'EdgefwdAuthRefused', 'EdgefwdDiskFullMode']) {
    t.ok(alerts.has(name), name)
  }
})

// ── the dashboard ──

t.test('the dashboard is JSON with a datasource and a multi-select instance variable', async t => {
  interface Variable { name: string, type: string, multi?: boolean, query?: unknown, definition?: string }
  const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { schemaVersion: number, templating: { list: Variable[] }, panels: unknown[] }
  t.ok(d.schemaVersion >= 36, `schemaVersion ${d.schemaVersion}`)
  const variables = new Map(d.templating.list.map(v => [v.name, v]))
  t.equal(variables.get('datasource')?.type, 'datasource')
  const instance = variables.get('instance')
  t.ok(instance !== undefined, 'has the instance variable')
  t.equal(instance?.multi, true, 'instance is multi-select')
  t.match(JSON.stringify(instance?.query), /label_values\(edgefwd_build_info\b.*, *instance\)/, 'instance values come from edgefwd_build_info')
  const exprs = exprFields(d)
  t.ok(exprs.length > 30, `${exprs.length} queries`)
  t.ok(exprs.every(e => e.includes('$instance')), 'every query is filtered by $instance')
  t.ok(JSON.stringify(d.panels).includes('${datasource}'), 'panels use the ${datasource} variable')
})
