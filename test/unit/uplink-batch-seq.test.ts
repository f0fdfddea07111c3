import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { BatchSequence } from '../../src/uplink/batch-seq.js'

t.test('batch sequences increase and are never reused across restarts, even after a crash mid-block', async t => {
  const path = join(t.testdir(), 'batch-seq.json')
  const a = BatchSequence.open(path, 100)
  t.same([a.next(), a.next(), a.next()], [1, 2, 3])
  t.same(JSON.parse(readFileSync(path, 'utf8')), { reservedTo: 100 }, 'one block reserved on disk')
  // "Crash": a new process opens the same file without the first closing anything.
  const b = BatchSequence.open(path, 100)
  t.equal(b.next(), 101, 'the unused rest of the block is skipped, never reused')
  for (let i = 0; i < 150; i++) b.next()
  t.same(JSON.parse(readFileSync(path, 'utf8')), { reservedTo: 300 })
  t.equal(BatchSequence.open(path, 100).next(), 301)
})

t.test('a damaged file is refused rather than guessed', async t => {
  const path = join(t.testdir(), 'batch-seq.json')
  writeFileSync(path, '{"reservedTo": "x"}')
  t.throws(() => BatchSequence.open(path), { code: 'EDGEFWD_ERR_UPLINK_BATCH_SEQ', message: /refusing to guess/ })
})
