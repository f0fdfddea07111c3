// The .proto text is embedded in src/proto/schema.generated.ts (the bundled executable cannot
// read proto/ at run time). These tests fail when that file is out of step with proto/.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { protoFiles } from '../../src/proto/schema.generated.js'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const regenerate = 'run `npm run gen:proto` (node scripts/gen-proto.mjs) and commit src/proto/schema.generated.ts'

t.test('every .proto under proto/edgefwd/v1 is embedded, and nothing else', async t => {
  const onDisk = readdirSync(`${repoRoot}proto/edgefwd/v1`).filter((f) => f.endsWith('.proto')).map((f) => `edgefwd/v1/${f}`).sort()
  t.same(Object.keys(protoFiles).sort(), onDisk, regenerate)
})

t.test('the embedded text equals the file, byte for byte', async t => {
  for (const [path, text] of Object.entries(protoFiles)) {
    t.ok(text === readFileSync(`${repoRoot}proto/${path}`, 'utf8'), `${path}: ${regenerate}`)
  }
})

t.test('gen-proto --check agrees (header and layout too)', async t => {
  const run = spawnSync(process.execPath, ['scripts/gen-proto.mjs', '--check'], { cwd: repoRoot, encoding: 'utf8' })
  t.equal(run.status, 0, run.stderr === '' ? regenerate : run.stderr.trim())
})
