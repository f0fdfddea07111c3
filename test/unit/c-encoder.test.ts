// The firmware C encoder (firmware-bridge/edgefwd.c) against the gateway's golden vectors: runs
// `make -C firmware-bridge test` (CRC32C/SHA-256/HMAC known answers, the field rules, frame-size
// limits, a write callback failing after every N bytes, three builds including one under ASan and
// UBSan) and checks that every vector of test/vectors with an "input" was reproduced byte for
// byte. Then builds examples/posix-send and runs it over UDP, TCP and a socat pty pair.
// gcc and make must be installed (Debian: apt-get install -y gcc make); this test fails, never
// skips, without them.
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const vectorsJson = `${repoRoot}test/vectors/vectors.json`

interface Run { code: number | null, stdout: string, stderr: string, missing: boolean }

function run (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: repoRoot, timeout: 300_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null
      resolve({
        code: e === null ? 0 : typeof e.code === 'number' ? e.code : null,
        stdout,
        stderr,
        missing: e?.code === 'ENOENT'
      })
    })
  })
}

/** What a failed run said that matters: its FAIL lines and summaries first, then the last lines. */
function report (r: Run): string {
  const lines = (r.stderr + '\n' + r.stdout).split('\n').filter((l) => l.trim() !== '')
  const key = lines.filter((l) => /^(FAIL|not ok|golden vectors|checks:|==|protoc|gen-vectors-h|make: \*\*\*)/.test(l))
  return [...key.slice(0, 40), '--- last lines:', ...lines.slice(-10)].join('\n')
}

t.test('gcc and make are installed', async t => {
  for (const tool of ['gcc', 'make']) {
    const r = await run(tool, ['--version'])
    if (r.missing) throw new Error(`${tool} is not on PATH: the C encoder cannot be tested without it (Debian: apt-get install -y gcc make)`)
    t.equal(r.code, 0, `${tool} --version`)
  }
})

t.test('make -C firmware-bridge test: every golden vector with an input reproduced byte for byte', async t => {
  if (!existsSync(vectorsJson)) throw new Error('test/vectors/vectors.json is missing: run `npm run build && node scripts/gen-vectors.mjs`')
  const doc = JSON.parse(readFileSync(vectorsJson, 'utf8')) as { vectors: Array<{ input?: unknown, expect: { ok?: boolean } }> }
  const expected = doc.vectors.filter((v) => v.input !== undefined && v.expect.ok === true).length
  t.ok(expected > 0, 'vectors.json has vectors with an input')

  const build = t.testdir()
  const r = await run('make', ['--no-print-directory', '-C', 'firmware-bridge', 'test', `BUILD=${build}`], { REQUIRE_VECTORS: '1' })
  if (r.missing) throw new Error('make is not on PATH (Debian: apt-get install -y make)')
  if (r.code !== 0) t.fail(`make -C firmware-bridge test exits ${String(r.code)}:\n${report(r)}`)
  else t.pass('make -C firmware-bridge test exits 0')

  // One line per build: asan and O2 encode everything; "small" (no HMAC, 256-byte frames) skips
  // what it cannot encode and says so.
  const reports = [...r.stdout.matchAll(/^golden vectors: (\d+)\/(\d+) reproduced byte for byte(.*)$/gm)]
  t.equal(reports.length, 3, 'three builds report on the golden vectors')
  for (const [line, done, total, rest] of reports) {
    t.equal(done, total, line)
    if (rest?.includes('not encodable in this build') !== true) t.equal(Number(total), expected, `${line} (vectors.json has ${expected})`)
  }
  t.ok(/^protoc cross-check: (\d+)\/\1 protobuf bodies identical/m.test(r.stdout), 'protobuf bodies identical to protoc --encode')
  t.ok(/^== all host tests passed$/m.test(r.stdout), 'make test reports all host tests passed')
})

t.test('make -C firmware-bridge examples examples-check: posix-send over UDP, TCP and a pty', async t => {
  const build = t.testdir()
  const r = await run('make', ['--no-print-directory', '-C', 'firmware-bridge', 'examples', 'examples-check', `BUILD=${build}`])
  if (r.code !== 0) t.fail(`exits ${String(r.code)}:\n${report(r)}`)
  else t.pass('exits 0')
  t.ok(/^examples check: all passed$/m.test(r.stdout), 'examples check: all passed')
})
