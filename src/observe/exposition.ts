/**
 * The Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format): the value
 * and label escaping the registry writes with, a parser for what `edgefwd status` and the tests
 * read back, and `histogram_quantile` over cumulative buckets, shared by both sides so that the
 * registry and `edgefwd status` can never disagree on a p99.
 */

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** Go's strconv.FormatFloat spellings, which Prometheus expects; JavaScript says `Infinity`. */
export function formatSampleValue (value: number): string {
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

/** Label values escape backslash, double quote and newline; nothing else. */
export function escapeLabelValue (value: string): string {
  return /[\\"\n]/.test(value) ? value.replace(/[\\"\n]/g, escapeChar) : value
}

/** HELP text escapes backslash and newline only (a quote stays a quote). */
export function escapeHelp (help: string): string {
  return /[\\\n]/.test(help) ? help.replace(/[\\\n]/g, escapeChar) : help
}

function escapeChar (c: string): string {
  return c === '\n' ? '\\n' : `\\${c}`
}

/** One cumulative bucket: observations ≤ `le`. The last bucket of a histogram has `le` +Inf. */
export interface CumulativeBucket {
  le: number
  count: number
}

/**
 * The q-quantile estimated as PromQL's histogram_quantile() does: find the bucket holding the
 * rank, interpolate linearly inside it (the lowest bucket starts at 0 when its bound is
 * positive); a rank in the +Inf bucket gives the highest finite bound. Buckets ascending, the
 * last one +Inf. Undefined when there are no observations.
 *
 * One deliberate difference: empty buckets are skipped when looking for the rank, so q = 0 gives
 * the lower bound of the first bucket that holds anything instead of PromQL's 0/0.
 */
export function bucketQuantile (q: number, buckets: readonly CumulativeBucket[]): number | undefined {
  if (!(q >= 0 && q <= 1)) throw new TypeError(`quantile must be between 0 and 1, got ${q}`)
  const last = buckets[buckets.length - 1]
  if (last === undefined || last.le !== Infinity) throw new TypeError('histogram buckets must end with +Inf')
  const total = last.count
  if (total <= 0) return undefined
  let rank = q * total
  const b = buckets.findIndex(bucket => bucket.count >= rank && bucket.count > 0)
  const bucket = buckets[b] as CumulativeBucket
  // PromQL answers NaN for a histogram with no finite bucket: there is no bound to report.
  if (b === buckets.length - 1) return buckets.length === 1 ? NaN : (buckets[b - 1] as CumulativeBucket).le
  if (b === 0 && bucket.le <= 0) return bucket.le
  let start = 0
  let count = bucket.count
  const previous = buckets[b - 1]
  if (previous !== undefined) {
    start = previous.le
    count -= previous.count
    rank -= previous.count
  }
  return start + (bucket.le - start) * (rank / count)
}

const NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/y
const LABEL_NAME = /[a-zA-Z_][a-zA-Z0-9_]*/y
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/
const TIMESTAMP = /^-?\d+$/

/**
 * Parses exposition text into samples, in order. Comment, HELP and TYPE lines and blank lines are
 * skipped (so a histogram comes back as its `_bucket`, `_sum` and `_count` samples).
 * @throws Error naming the 1-based line number when a line is not a valid sample
 */
export function parseExposition (text: string): Sample[] {
  const samples: Sample[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/\r$/, '')
    if (/^\s*(?:#.*)?$/.test(line)) continue
    try {
      samples.push(parseSampleLine(line))
    } catch (err) {
      throw new Error(`exposition line ${i + 1}: ${(err as Error).message}: ${JSON.stringify(line.slice(0, 120))}`)
    }
  }
  return samples
}

function parseSampleLine (line: string): Sample {
  let pos = line.search(/\S/)
  NAME.lastIndex = pos
  const name = NAME.exec(line)?.[0]
  if (name === undefined) throw new Error('expected a metric name')
  pos += name.length
  const labels: Record<string, string> = {}
  // Blanks may separate every token, including the name from its labels.
  const brace = /^[ \t]*\{/.exec(line.slice(pos))
  if (brace !== null) pos = parseLabels(line, pos + brace[0].length, labels)
  const rest = line.slice(pos)
  if (!/^[ \t]/.test(rest)) throw new Error('expected a space and a value after the name and labels')
  const fields = rest.trim().split(/[ \t]+/)
  if (fields.length > 2) throw new Error('unexpected text after the value and timestamp')
  if (fields[1] !== undefined && !TIMESTAMP.test(fields[1])) throw new Error(`bad timestamp "${fields[1]}"`)
  return { name, labels, value: parseValue(fields[0] ?? '') }
}

/** Parses `a="x",b="y"}` from `pos` (just after `{`); returns the position after `}`. */
function parseLabels (line: string, pos: number, into: Record<string, string>): number {
  for (;;) {
    while (line[pos] === ' ' || line[pos] === '\t') pos++
    if (line[pos] === '}') return pos + 1
    LABEL_NAME.lastIndex = pos
    const labelName = LABEL_NAME.exec(line)?.[0]
    if (labelName === undefined) throw new Error('expected a label name')
    if (Object.hasOwn(into, labelName)) throw new Error(`label "${labelName}" given twice`)
    pos += labelName.length
    while (line[pos] === ' ' || line[pos] === '\t') pos++
    if (line[pos] !== '=') throw new Error(`expected ="…" after label "${labelName}"`)
    pos++
    while (line[pos] === ' ' || line[pos] === '\t') pos++
    if (line[pos] !== '"') throw new Error(`expected ="…" after label "${labelName}"`)
    pos++
    let value = ''
    for (;;) {
      const c = line[pos]
      if (c === undefined) throw new Error(`unterminated value of label "${labelName}"`)
      pos++
      if (c === '"') break
      if (c !== '\\') { value += c; continue }
      const escaped = line[pos++]
      if (escaped === 'n') value += '\n'
      else if (escaped === '\\' || escaped === '"') value += escaped
      else throw new Error(`bad escape "\\${escaped ?? ''}" in label "${labelName}"`)
    }
    into[labelName] = value
    while (line[pos] === ' ' || line[pos] === '\t') pos++
    if (line[pos] === ',') pos++
    else if (line[pos] !== '}') throw new Error('expected "," or "}" after a label')
  }
}

function parseValue (token: string): number {
  switch (token) {
    case '+Inf': case 'Inf': return Infinity
    case '-Inf': return -Infinity
    case 'NaN': return NaN
  }
  // Number() alone would take '' as 0 and '0x10' as 16.
  if (!FLOAT.test(token)) throw new Error(`bad value "${token}"`)
  return Number(token)
}
