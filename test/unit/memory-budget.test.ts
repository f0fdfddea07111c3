/**
 * The memory budget: the configuration key, the bounds derived from it, and how `run` puts its
 * V8 heap limits in force (re-executing itself, or saying why it cannot).
 */
import t from 'tap'
import { applyHeapBudget, REEXEC_MARKER, type ProcessControl } from '../../src/cli/heap-budget.js'
import { loadConfig } from '../../src/config/index.js'
import { budgetEnvironment, budgetHeapLimitBytes, budgetNodeOptions, DEFAULT_MEMORY_BUDGET, memoryBudget } from '../../src/config/memory-budget.js'
import { ConfigError, formatConfigIssue } from '../../src/errors.js'
import { levelMemory, storeOptions } from '../../src/store/index.js'
import { uplinkOptions } from '../../src/uplink/options.js'

const MiB = 1024 * 1024

async function issues (fn: () => Promise<unknown>): Promise<string[]> {
  try {
    await fn()
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(formatConfigIssue)
    throw err
  }
  return []
}

t.test('process.memory: 96 MiB by default; a size or off from a file, the environment or --set', async t => {
  t.equal((await loadConfig({ env: {} })).process.memory, 96 * MiB)
  t.equal((await loadConfig({ env: { EDGEFWD_PROCESS__MEMORY: 'off' } })).process.memory, 'off')
  t.equal((await loadConfig({ env: {}, overrides: ['process.memory=256MiB'] })).process.memory, 256 * MiB)
  t.same(await issues(() => loadConfig({ env: { EDGEFWD_PROCESS__MEMORY: '32MiB' } })),
    ['env EDGEFWD_PROCESS__MEMORY: process.memory: must be at least 64MiB, got "32MiB", or off'])
  t.same(await issues(() => loadConfig({ env: { EDGEFWD_PROCESS__MEMORY: 'lots' } })),
    ['env EDGEFWD_PROCESS__MEMORY: process.memory: expected a size such as 64MiB or 1048576, got "lots", or off'])
})

t.test('the default budget: the split documented in docs/config.md', async t => {
  const b = memoryBudget(96 * MiB)
  t.same(b, {
    totalBytes: 96 * MiB,
    v8: { oldSpaceMiB: 30, semiSpaceMiB: 1 },
    level: { writeBufferSize: 4 * MiB, cacheSize: 2 * MiB },
    ingestPendingBytes: 6 * MiB,
    uplinkInFlightBytes: 3 * MiB,
    memoryFallbackBytes: 12 * MiB
  })
  t.same(budgetNodeOptions(b), ['--max-old-space-size=30', '--max-semi-space-size=1'])
  t.equal(budgetHeapLimitBytes(b as NonNullable<typeof b>), 33 * MiB, 'old space + 3 semi-spaces, what V8 reports as heap_size_limit')
  t.equal(memoryBudget('off'), undefined)
  t.same(budgetNodeOptions(undefined), [])
  t.same(budgetEnvironment(undefined), {})
})

t.test('smaller budgets lower every bound, and never below what still works', async t => {
  const small = memoryBudget(64 * MiB)
  const big = memoryBudget(1024 * MiB)
  if (small === undefined || big === undefined) throw new Error('a budget')
  t.equal(small.v8.oldSpaceMiB, 24)
  t.equal(small.level.writeBufferSize, Math.floor(64 * MiB / 24))
  t.equal(big.level.writeBufferSize, 4 * MiB, "LevelDB's own default is the most it gets")
  t.ok(small.ingestPendingBytes < big.ingestPendingBytes && small.memoryFallbackBytes < big.memoryFallbackBytes)
})

t.test('budgetEnvironment replaces heap options already in NODE_OPTIONS and keeps the others', async t => {
  t.same(budgetEnvironment(memoryBudget(96 * MiB), { NODE_OPTIONS: '--max-old-space-size=4096 --enable-source-maps  --max-semi-space-size=16' }),
    { NODE_OPTIONS: '--enable-source-maps --max-old-space-size=30 --max-semi-space-size=1', MALLOC_ARENA_MAX: '2' })
  t.same(budgetEnvironment(memoryBudget(96 * MiB), { NODE_OPTIONS: '--require "/opt/my app/x.js"' }).NODE_OPTIONS,
    '--require "/opt/my app/x.js" --max-old-space-size=30 --max-semi-space-size=1', 'a quoted value with a space stays whole')
})

t.test('the budget caps the configured bounds; a smaller configured bound is kept', async t => {
  const config = await loadConfig({ env: {}, overrides: ['process.memory=64MiB', 'uplink.url=mqtts://127.0.0.1:8883', 'uplink.batch.maxBytes=1MiB', 'store.memoryFallback.maxBytes=4MiB'] })
  const budget = memoryBudget(config.process.memory)
  t.equal(storeOptions(config.store, budget).memoryFallback?.maxBytes, 4 * MiB, 'configured 4 MiB is below the 8 MiB share')
  t.equal(storeOptions({ ...config.store, memoryFallback: { ...config.store.memoryFallback, maxBytes: 64 * MiB } }, budget).memoryFallback?.maxBytes, 8 * MiB)
  const deps = { credentials: () => { throw new Error('unused') }, nextBatchSeq: () => 1 }
  t.equal(uplinkOptions(config, deps).batch.maxBytes, 2 * MiB / 8, 'window 8 × maxBytes within the 2 MiB uplink share')
  const off = await loadConfig({ env: {}, overrides: ['process.memory=off', 'uplink.url=mqtts://127.0.0.1:8883', 'uplink.batch.maxBytes=1MiB'] })
  t.equal(uplinkOptions(off, deps).batch.maxBytes, MiB, 'no budget: as configured (the store-capacity cap aside)')
  t.same(levelMemory(budget), { writeBufferSize: Math.floor(64 * MiB / 24), cacheSize: Math.floor(64 * MiB / 48) })
  t.equal(levelMemory(undefined), undefined)
})

function fakeProcess (heapLimitBytes: number, env: Record<string, string> = {}, withExecve = true): ProcessControl & { calls: Array<{ file: string, args: string[], env: Record<string, string> }> } {
  const calls: Array<{ file: string, args: string[], env: Record<string, string> }> = []
  const proc: ProcessControl & { calls: typeof calls } = {
    env, heapLimitBytes: () => heapLimitBytes, execPath: '/usr/bin/node', restartArgs: ['/usr/bin/node', '/x/main.js', 'run', '-c', 'f.yaml'], calls
  }
  if (withExecve) {
    proc.execve = (file, args, env) => {
      calls.push({ file, args, env })
      throw new Error('execve called')
    }
  }
  return proc
}

t.test('run: the heap limit in force is left alone; another one is replaced by re-executing in place', async t => {
  const budget = memoryBudget(96 * MiB)
  t.same(applyHeapBudget(budget, fakeProcess(33 * MiB)), { kind: 'in-force', heapLimitBytes: 33 * MiB })
  t.same(applyHeapBudget(undefined, fakeProcess(4096 * MiB)), { kind: 'off' })

  const proc = fakeProcess(4144 * MiB, { PATH: '/bin', NODE_OPTIONS: '--enable-source-maps' })
  // The fake execve returns by throwing, as the real one does only when it fails: run then runs on.
  t.match(applyHeapBudget(budget, proc), { kind: 'not-applied', why: 're-executing failed: execve called' })
  t.same(proc.calls, [{
    file: '/usr/bin/node',
    args: ['/usr/bin/node', '/x/main.js', 'run', '-c', 'f.yaml'],
    env: { PATH: '/bin', NODE_OPTIONS: '--enable-source-maps --max-old-space-size=30 --max-semi-space-size=1', MALLOC_ARENA_MAX: '2', [REEXEC_MARKER]: '1' }
  }])
})

t.test('run: where Node cannot re-execute, or the options did not take, it says so and runs on', async t => {
  const budget = memoryBudget(96 * MiB)
  const old = applyHeapBudget(budget, fakeProcess(4144 * MiB, {}, false))
  t.match(old, { kind: 'not-applied', heapLimitBytes: 4144 * MiB, wantedBytes: 33 * MiB, nodeOptions: '--max-old-space-size=30 --max-semi-space-size=1', why: /process\.execve needs Node 22\.15/ })
  const again = fakeProcess(4144 * MiB, { [REEXEC_MARKER]: '1' })
  t.match(applyHeapBudget(budget, again), { kind: 'not-applied', why: /override NODE_OPTIONS/ })
  t.same(again.calls, [], 'no second re-execution: no loop')
})

t.test('the systemd unit starts Node with the default budget\'s heap limits', async t => {
  const { readFileSync } = await import('node:fs')
  const unit = readFileSync(new URL('../../packaging/edgefwd.service', import.meta.url), 'utf8')
  const env = /^Environment="NODE_OPTIONS=([^"]*)" MALLOC_ARENA_MAX=2$/m.exec(unit)
  t.equal(env?.[1], budgetNodeOptions(memoryBudget(DEFAULT_MEMORY_BUDGET)).join(' '), 'change both together')
})
