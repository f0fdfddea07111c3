/**
 * Fault: SIGKILL during sync appends (and concurrent drain). A forked child appends from several
 * appenders and reports each resolved append; the parent kills it at a random moment, reopens the
 * store, and checks that every acknowledged event is there (or was leased for delivery), that the
 * meta totals equal a full scan, and that the store takes new work. Repeated 24 times.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { decodeBatch } from '../../src/proto/codec.js'
import { LevelBackend, openLevelStore } from '../../src/store/index.js'
import { PRIORITY_COUNT } from '../../src/types.js'
import { decodeMeta } from '../../src/store/meta.js'
import { silentLogger } from '../helpers/logger.js'
import { assertBuilt } from '../helpers/built.js'

const child = fileURLToPath(new URL('./fixtures/append-child.mjs', import.meta.url))
const ROUNDS = 24

async function runAndKill (path: string, firstSeq: number, killAfterMs: number): Promise<{ stored: Set<number>, leased: Set<number>, lines: number }> {
  const proc = spawn(process.execPath, [child, path, '4', String(firstSeq)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const stored = new Set<number>()
  const leased = new Set<number>()
  let buf = ''
  let lines = 0
  let ready = false
  const readyOnce = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('child did not start within 10 s')), 10_000)
    proc.stdout.on('data', (d: Buffer) => {
      buf += d.toString()
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        lines++
        if (line === 'ready') { ready = true; clearTimeout(timer); resolve(); continue }
        const [kind, list] = line.split(' ')
        const target = kind === 'stored' ? stored : kind === 'leased' ? leased : undefined
        for (const s of (list ?? '').split(',')) if (target !== undefined && s !== '') target.add(Number(s))
      }
    })
    proc.once('exit', () => { if (!ready) reject(new Error('child exited before ready')) })
  })
  await readyOnce
  await new Promise(resolve => setTimeout(resolve, killAfterMs))
  const exited = once(proc, 'exit')
  proc.kill('SIGKILL')
  await exited
  return { stored, leased, lines }
}

t.test('SIGKILL at random points never loses an acknowledged append', async t => {
  assertBuilt()
  const path = `${t.testdir()}/store`
  let firstSeq = 0
  let totalStored = 0
  for (let round = 0; round < ROUNDS; round++) {
    const { stored, leased } = await runAndKill(path, firstSeq, 20 + Math.floor(Math.random() * 180))
    totalStored += stored.size
    firstSeq += 10_000_000

    // Reopen: every acknowledged event is present, unless it was leased (and maybe acked) before the kill.
    const store = await openLevelStore(path, { capacityBytes: 512 * 1024 * 1024 }, silentLogger())
    const present = new Set<string>()
    for (let l = await store.lease(5000, 1 << 30); l !== null; l = await store.lease(5000, 1 << 30)) {
      for (const e of decodeBatch(l.batch)) present.add(`${e.deviceId}:${e.deviceSeq}`)
    }
    const childSeqs = new Set([...present].filter(k => k.startsWith('dev-')).map(k => Number(k.split(':')[1])))
    const missing = [...stored].filter(s => !childSeqs.has(s) && !leased.has(s))
    t.same(missing, [], `round ${round}: no acknowledged event lost (${stored.size} acknowledged)`)
    const stats = store.stats()
    t.equal(stats.events, present.size, `round ${round}: meta event count equals what is there`)
    const fresh = await store.append([{ deviceId: 'after', deviceSeq: round, gatewayTimeMs: 1, priority: 1, stream: 's' }])
    t.equal(fresh.accepted, 1, 'the store takes new work')
    await store.close()

    // The meta record on disk equals a full scan of the keys, count and bytes per priority.
    const raw = new LevelBackend({ path, logger: silentLogger() })
    const content = await raw.open()
    const scanned = Array.from({ length: PRIORITY_COUNT }, () => ({ count: 0, bytes: 0 }))
    for await (const e of raw.allEvents()) { const s = scanned[e.priority]!; s.count++; s.bytes += e.bytes }
    await raw.close()
    t.same(decodeMeta(content.meta)?.live, scanned, `round ${round}: meta totals match a full scan`)
  }
  t.ok(totalStored > ROUNDS * 10, `the children acknowledged ${totalStored} events in all`)
})
