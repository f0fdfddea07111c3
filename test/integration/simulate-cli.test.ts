/**
 * `edgefwd simulate` as a user runs it: a short scenario with --json and --report (exit 0, the
 * result parses, the report files exist, plain progress lines on a non-terminal), --list, and the
 * usage errors (an unknown scenario names the ones that exist; a bad duration).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { commands } from '../../bin/commands.js'
import { main } from '../../src/cli/program.js'

function collector (): { write: (s: string) => boolean, text: () => string } {
  let text = ''
  return { write: (s: string) => { text += s; return true }, text: () => text }
}

async function simulate (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  const stdout = collector()
  const stderr = collector()
  const code = await main(['simulate', ...args], {}, { stdout, stderr }, commands)
  return { code, stdout: stdout.text(), stderr: stderr.text() }
}

t.test('a short run: --json result, report files, progress lines, exit 0', async t => {
  const dir = t.testdir()
  const r = await simulate(['--scenario', 'babbling-device', '--duration', '3s', '--seed', '5', '--json', '--report', join(dir, 'out')])
  t.equal(r.code, 0, r.stderr)
  const [json, reportLine] = r.stdout.trim().split('\n')
  const result = JSON.parse(json as string) as { verdict: { ok: boolean }, scenario: { name: string, seed: number }, samples?: unknown }
  t.equal(result.verdict.ok, true)
  t.same([result.scenario.name, result.scenario.seed], ['babbling-device', 5])
  t.equal(result.samples, undefined, 'samples are left to summary.json')
  t.equal(reportLine, `report: ${join(dir, 'out', 'report.html')}`)
  t.ok(existsSync(join(dir, 'out', 'report.html')))
  const summary = JSON.parse(readFileSync(join(dir, 'out', 'summary.json'), 'utf8')) as { samples: unknown[] }
  t.ok(summary.samples.length > 5, 'summary.json has the samples')
  t.match(r.stderr, /edgefwd simulate: scenario babbling-device \(3 s, seed 5\)/)
  t.match(r.stderr, /\n +0 s sending +link connected/, 'a plain progress line (not a terminal)')
})

t.test('--list names every scenario', async t => {
  const r = await simulate(['--list'])
  t.equal(r.code, 0)
  for (const name of ['default', 'long-outage', 'flaky-cellular', 'broker-restart', 'power-cut', 'babbling-device']) t.match(r.stdout, new RegExp(`^${name} `, 'm'))
})

t.test('an unknown scenario or a file that does not validate: exit 78 like an invalid configuration; a bad duration: a usage error', async t => {
  const unknown = await simulate(['--scenario', 'no-such-thing'])
  t.equal(unknown.code, 78)
  t.match(unknown.stderr, /no-such-thing/)
  t.match(unknown.stderr, /default/, 'the scenarios that exist are named')
  const file = join(t.testdir(), 'bad.yaml')
  writeFileSync(file, 'name: bad\nduration: 10s\nstore: { capacity: 1MiB }\ndevices: [{ id: d, transport: udp, acks: true, rate: 1, priorities: { low: 1 } }]\n')
  const bad = await simulate(['--scenario', file])
  t.equal(bad.code, 78)
  t.match(bad.stderr, /bad\.yaml.*acks/s, 'names the file and the field')
  const duration = await simulate(['--duration', 'soon'])
  t.equal(duration.code, 2)
  t.match(duration.stderr, /--duration/)
})
