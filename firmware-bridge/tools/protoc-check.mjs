#!/usr/bin/env node
// Cross-checks the C encoder's protobuf bodies against Google's protoc: the host test prints each
// known-answer case as "name<TAB>message<TAB>hex<TAB>text format" (host-test --dump-protobuf);
// protoc --encode turns the text format into bytes, which must be the same. protoc keeps map
// entries in the order the text gives them and writes both key and value, as PROTOCOL.md 3.1 asks.
//
//   node tools/protoc-check.mjs PATH/TO/host-test
//
// Without protoc on PATH this says so and exits 0: the same cases are also checked inside the C
// tests against bytes protoc produced when they were written.
import { execFileSync, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const hostTest = process.argv[2]
if (hostTest === undefined) {
  console.error('usage: protoc-check.mjs HOST_TEST_BINARY')
  process.exit(2)
}
const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

const probe = spawnSync('protoc', ['--version'])
if (probe.error !== undefined) {
  console.log('protoc not found: protoc cross-check skipped (install protobuf-compiler)')
  process.exit(0)
}

const dump = execFileSync(hostTest, ['--dump-protobuf'], { encoding: 'utf8' })
let failed = 0
let n = 0
for (const line of dump.split('\n')) {
  if (line === '') continue
  const [name, message, hex, text] = line.split('\t')
  const run = spawnSync('protoc', [`--encode=edgefwd.v1.${message}`, '-I', 'proto', 'proto/edgefwd/v1/edgefwd.proto'], {
    cwd: repoRoot,
    input: text
  })
  if (run.status !== 0) {
    console.error(`protoc-check: ${name}: protoc failed: ${run.stderr.toString()}`)
    failed++
    continue
  }
  const want = run.stdout.toString('hex')
  n++
  if (want !== hex) {
    console.error(`protoc-check: ${name}: bytes differ\n  C:      ${hex}\n  protoc: ${want}`)
    failed++
  }
}
if (failed > 0 || n === 0) {
  console.error(`protoc-check: ${failed} of ${n} cases differ from protoc`)
  process.exit(1)
}
console.log(`protoc cross-check: ${n}/${n} protobuf bodies identical to protoc --encode (${probe.stdout.toString().trim()})`)
