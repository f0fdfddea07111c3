#!/usr/bin/env node
/**
 * The coverage floor: fails when a directory's line or branch coverage falls under its floor in
 * coverage-floor.json. Run after `npm test` (CI: .ci/run), which leaves tap's raw coverage in
 * .tap/coverage; this asks tap for its json-summary report of that (.tap/report/coverage-summary.json,
 * per source file) and adds the files up per directory.
 *
 * What the report counts: the test processes and the processes they spawn with the environment
 * inherited (dist/bin/edgefwd.js and the simulation's forwarder child), each merged into the same
 * src/ .ts file through dist/'s source maps; dist/ .js files themselves are not in it.
 *
 *   node scripts/coverage-floor.mjs                 # tap report json-summary, then check
 *   node scripts/coverage-floor.mjs --summary FILE  # check an existing coverage-summary.json
 *
 * Exit 0 when every directory is at or above its floors, 1 when one is under (or has no file in
 * the report), 2 when there is no report to read.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { isAbsolute, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const floorsFile = join(root, 'coverage-floor.json')
const METRICS = ['lines', 'branches']

function fail (code, message) {
  console.error(`coverage-floor: ${message}`)
  process.exit(code)
}

const args = process.argv.slice(2)
let summaryFile = join(root, '.tap', 'report', 'coverage-summary.json')
if (args[0] === '--summary' && args[1] !== undefined) {
  summaryFile = args[1]
} else if (args.length > 0) {
  fail(2, `unknown arguments ${args.join(' ')}; usage: coverage-floor.mjs [--summary coverage-summary.json]`)
} else {
  if (!existsSync(join(root, '.tap', 'coverage'))) fail(2, 'no .tap/coverage: run npm test (with coverage) first')
  const tap = spawnSync('npx', ['tap', 'report', 'json-summary'], { cwd: root, encoding: 'utf8' })
  if (tap.status !== 0 || !existsSync(summaryFile)) fail(2, `tap report json-summary failed (${tap.status ?? tap.signal}): ${tap.stderr}${tap.stdout}`)
}

/** { "src/cli": { "lines": 80, "branches": 70 }, ... } plus a "//" comment key. */
const floors = Object.entries(JSON.parse(readFileSync(floorsFile, 'utf8'))).filter(([dir]) => dir !== '//')
/** { "/abs/path/file.ts": { lines: { total, covered, pct }, branches: {...}, ... }, total: {...} } */
const summary = JSON.parse(readFileSync(summaryFile, 'utf8'))

const sums = new Map(floors.map(([dir]) => [dir, { files: 0, lines: { total: 0, covered: 0 }, branches: { total: 0, covered: 0 } }]))
for (const [file, counts] of Object.entries(summary)) {
  if (file === 'total') continue
  const rel = (isAbsolute(file) ? relative(root, file) : file).split(sep).join('/')
  // The deepest floor directory holding the file, so a floor for src/store/x would not count in src/store.
  const dir = floors.map(([d]) => d).filter(d => rel.startsWith(`${d}/`)).sort((a, b) => b.length - a.length)[0]
  if (dir === undefined) continue
  const sum = sums.get(dir)
  sum.files++
  for (const metric of METRICS) {
    sum[metric].total += counts[metric].total
    sum[metric].covered += counts[metric].covered
  }
}

const pct = ({ total, covered }) => total === 0 ? 100 : Math.floor(covered / total * 10_000) / 100
const problems = []
const rows = []
for (const [dir, floor] of floors) {
  const sum = sums.get(dir)
  if (sum.files === 0) {
    problems.push(`${dir}: no file of it is in the coverage report (was the suite run with coverage, from ${root}?)`)
    continue
  }
  const cells = []
  for (const metric of METRICS) {
    const value = pct(sum[metric])
    cells.push(`${metric} ${value.toFixed(2).padStart(6)}% (floor ${floor[metric]})`)
    if (value < floor[metric]) {
      problems.push(`${dir}: ${metric} coverage ${value.toFixed(2)}% is under its floor of ${floor[metric]}% ` +
        `(${sum[metric].covered} of ${sum[metric].total} covered, ${sum.files} files); add tests, or lower the floor in coverage-floor.json with a reason`)
    }
  }
  rows.push(`${dir.padEnd(14)} ${cells.join('  ')}`)
}
console.log(rows.join('\n'))
if (problems.length > 0) {
  for (const p of problems) console.error(`coverage-floor: ${p}`)
  process.exit(1)
}
console.log(`coverage-floor: ok, ${floors.length} directories at or above their floors`)
