/**
 * Fault: the disk fills up. On a small tmpfs (mounted by the test; CI runs as root), appends hit
 * ENOSPC; the store switches to its bounded in-memory queue, says so in stats, refuses (and counts)
 * what does not fit the memory bound, and moves everything back to disk when space returns.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { decodeBatch } from '../../src/proto/codec.js'
import { openLevelStore } from '../../src/store/index.js'
import type { EventStore } from '../../src/store/index.js'
import type { EventRecord } from '../../src/types.js'
import { captureLogger, silentLogger } from '../helpers/logger.js'
import { waitFor } from '../helpers/wait.js'

const MB = 1024 * 1024

function events (from: number, n: number): EventRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    deviceId: 'dev', deviceSeq: from + i, gatewayTimeMs: 1, priority: 1, stream: 's', value: { kind: 'raw', raw: new Uint8Array(1000).fill(i & 0xff) }
  }))
}

t.test('disk full: in-memory fallback, counted refusals past its bound, back to disk when space returns', async t => {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs and must run as root (CI does)')
  // Mounted outside tap's fixture dir, which tap removes and would find busy.
  const mnt = mkdtempSync(join(tmpdir(), 'edgefwd-enospc-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt])
  const opened: EventStore[] = []
  t.teardown(async () => {
    for (const s of opened) await s.close().catch(() => {})
    execFileSync('umount', [mnt])
    rmdirSync(mnt)
  })

  // Leave about 1 MiB free: the store's first groups fit, then the disk fills.
  writeFileSync(`${mnt}/filler`, Buffer.alloc(2 * MB))
  const { logger, records } = captureLogger()
  const store = await openLevelStore(`${mnt}/store`, {
    capacityBytes: 64 * MB, groupCommit: { windowMs: 1, maxEvents: 100 }, memoryFallback: { maxBytes: 300 * 1000, retryIntervalMs: 50 }
  }, logger)
  opened.push(store)

  const accepted: number[] = []
  const refused: number[] = []
  let memoryMode = false
  let next = 0
  for (let round = 0; round < 40 && refused.length === 0; round++) {
    const batch = events(next, 50)
    next += 50
    const r = await store.append(batch)
    const rejected = new Set(r.rejected.map(x => x.index))
    batch.forEach((e, i) => (rejected.has(i) ? refused : accepted).push(e.deviceSeq))
    if (!r.durable) memoryMode = true
    for (const x of r.rejected) t.equal(x.reason, 'memory_queue_full')
  }
  t.ok(memoryMode, 'appends came back durable=false once the disk was full')
  t.equal(store.stats().mode, 'memory', 'stats report the in-memory mode')
  t.equal(store.durableNow(), false, 'durableNow says an append would not reach the disk (an MQTT source then waits)')
  t.ok(store.stats().memoryBytes <= 300 * 1000 + 1100, 'the memory queue stays within its bound')
  t.ok(refused.length > 0, 'events beyond the memory bound are refused')
  t.ok(records().some(r => r.code === 'EDGEFWD_ERR_STORE_DISK_FULL'), 'the switch is logged with its code')
  const full = store.stats().drops.find(d => d.reason === 'memory_queue_full')
  t.equal(full?.count, refused.length, 'every refusal is counted')

  // Space returns: the store moves its memory queue to disk by itself.
  unlinkSync(`${mnt}/filler`)
  await waitFor('the store back in disk mode', () => store.stats().mode === 'disk', 5000)
  t.equal(store.durableNow(), true, 'and durableNow again')
  const r = await store.append(events(next, 10))
  t.ok(r.durable, 'appends are durable again')
  accepted.push(...Array.from({ length: 10 }, (_, i) => next + i))
  await store.close()

  // Everything accepted is on disk, and the refusals travel upstream in the eviction report.
  const again = await openLevelStore(`${mnt}/store`, { capacityBytes: 64 * MB }, silentLogger())
  opened.push(again)
  const seen: number[] = []
  let reported = 0
  for (let l = await again.lease(1000, 1 << 30); l !== null; l = await again.lease(1000, 1 << 30)) {
    seen.push(...decodeBatch(l.batch).map(e => e.deviceSeq))
    reported += l.report?.counts.filter(c => c.reason === 'memory_queue_full').reduce((n, c) => n + c.count, 0) ?? 0
    await again.ack(l.id)
  }
  t.same(seen.sort((a, b) => a - b), accepted.sort((a, b) => a - b), 'no accepted event lost')
  t.equal(reported, refused.length, 'the refusals are in the report')
  await again.close()
})
