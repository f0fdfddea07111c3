import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

// The compiled bin as users run it; `npm test` builds first ("npm run build && tap").
const bin = fileURLToPath(new URL('../../dist/bin/edgefwd.js', import.meta.url))

interface Run { code: number | null, stdout: string, stderr: string }

async function runBin (args: string[]): Promise<Run> {
  // The developer's own EDGEFWD_* variables must not leak into the expectations.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('EDGEFWD_')))
  const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', resolve)
  })
  return { code, stdout, stderr }
}

t.test('the built bin checks a configuration file', async t => {
  if (!existsSync(bin)) {
    t.fail(`${bin} is missing: run \`npm run build\` first (\`npm test\` does it)`)
    return
  }
  t.ok(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n'), 'the bin starts with a shebang')

  const dir = t.testdir({
    'good.yaml': 'gateway:\n  id: gw-bin\nstore:\n  capacity: 64MiB\nuplink: { url: "mqtts://broker.example:8883" }\ntls: { ca: ca.pem, cert: gw.pem, key: gw-key.pem }\n',
    'bad.yaml': 'store:\n  capacity: 1KiB\n  durability: fast\n',
  })
  t.same(await runBin(['config', 'check', join(dir, 'good.yaml')]), { code: 0, stdout: 'ok\n', stderr: '' })
  t.same(await runBin(['config', 'check', join(dir, 'bad.yaml'), '--set', 'store.capacty=1']), {
    code: 1,
    stdout: '',
    stderr: [
      `${join(dir, 'bad.yaml')}:2: store.capacity: must be at least 64KiB, got "1KiB"`,
      `${join(dir, 'bad.yaml')}:3: store.durability: expected one of "sync", "relaxed", got "fast"`,
      '--set: store.capacty: unknown key (did you mean "store.capacity"?)',
      '',
    ].join('\n'),
  })

  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  t.same(await runBin(['--version']), { code: 0, stdout: `${pkg.version}\n`, stderr: '' }, 'the version is found from dist/ too')
  t.same(await runBin(['nope']), { code: 2, stdout: '', stderr: 'edgefwd: unknown command "nope" (see edgefwd --help)\n' })
})
