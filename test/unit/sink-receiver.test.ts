/**
 * The receiving side's handling of one message, whatever its source (receiver.ts), and its
 * destinations (destination.ts): a batch is written and durable before receive() resolves (the
 * source acknowledges after), a redelivery is dropped, a malformed message is counted and
 * acknowledged, and a destination that fails leaves the message unacknowledged and unverified.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { EventEmitter } from 'node:events'
import t from 'tap'
import { concatBatch, encodeEnvelope, encodeEvent } from '../../src/proto/codec.js'
import { jsonLinesToFile, jsonLinesToStream } from '../../src/sink/destination.js'
import { BatchReceiver } from '../../src/sink/receiver.js'
import { SequenceVerifier } from '../../src/sink/verify.js'
import { recordingDestination } from '../helpers/recording-destination.js'

function message (batchSeq: number, seqs: number[]): Uint8Array {
  const events = seqs.map(s => encodeEvent({ deviceId: 'dev-1', deviceSeq: s, gatewayTimeMs: 1_700_000_000_000, priority: 1, stream: 'env', value: { kind: 'number', number: s } }, s))
  return encodeEnvelope({
    schemaVersion: 1, gatewayId: 'gw-1', batchSeq, compression: 'none', firstStoreSeq: seqs[0] ?? 0, lastStoreSeq: seqs.at(-1) ?? 0,
    eventCount: seqs.length, payload: concatBatch(events), createdMs: 0
  })
}


t.test('a batch is written, then verified; a redelivery is dropped; a malformed message is counted and skipped', async t => {
  const destination = recordingDestination()
  const verifier = new SequenceVerifier({ expectedFirstSeq: 1 })
  const logged: string[] = []
  const receiver = new BatchReceiver({ destination, verifier, log: line => { logged.push(line) } })
  await receiver.receive(message(1, [1, 2, 3]), 'edgefwd/gw-1/events')
  await receiver.receive(message(1, [1, 2, 3]), 'edgefwd/gw-1/events')
  await receiver.receive(Buffer.from('not a batch'), 'edgefwd/gw-1/events')
  await receiver.receive(message(2, [4]), 'edgefwd/gw-1/events')
  t.same(destination.batches.map(b => [b.gatewayId, b.batchSeq, b.events.map(e => e.deviceSeq)]), [['gw-1', 1, [1, 2, 3]], ['gw-1', 2, [4]]])
  t.match(receiver.stats(), { batchesWritten: 2, eventsWritten: 4, duplicateBatches: 1, malformed: 1 })
  t.match(verifier.summary(), { delivered: 4, duplicates: 0, unexplainedMissing: 0 })
  t.match(logged, [/malformed message on edgefwd\/gw-1\/events \(11 bytes\), acknowledged and skipped/])
})

t.test('a destination that fails: receive() rejects, and the batch is neither counted, verified nor remembered as written', async t => {
  const destination = recordingDestination()
  const verifier = new SequenceVerifier({ expectedFirstSeq: 1 })
  const receiver = new BatchReceiver({ destination, verifier, log: () => {} })
  destination.failWith = new Error('ENOSPC: no space left on device, write')
  await t.rejects(receiver.receive(message(1, [1, 2]), 'x'), /ENOSPC/)
  t.match(receiver.stats(), { batchesWritten: 0, eventsWritten: 0 })
  t.equal(verifier.summary().delivered, 0)
  destination.failWith = undefined
  await receiver.receive(message(1, [1, 2]), 'x')
  t.equal(destination.batches.length, 1, 'its redelivery after the failure is written, not dropped as a duplicate')
  t.match(verifier.summary(), { delivered: 2, unexplainedMissing: 0 })
})

t.test('JSON lines to a file: appended, complete when write() resolves; a file that cannot be opened is a usage error', async t => {
  const dir = t.testdir({ 'old.jsonl': '{"kept":true}\n' })
  const path = join(dir, 'old.jsonl')
  const file = await jsonLinesToFile(path)
  const receiver = new BatchReceiver({ destination: file, log: () => {} })
  await receiver.receive(message(1, [1, 2]), 'x')
  const lines = readFileSync(path, 'utf8').trimEnd().split('\n')
  t.equal(lines.length, 3, 'the old line and one per event, on disk before receive() resolved')
  t.match(JSON.parse(lines[1] ?? '{}'), { gateway: 'gw-1', batchSeq: 1, deviceId: 'dev-1', deviceSeq: 1 })
  await file.close()
  writeFileSync(join(dir, 'locked.jsonl'), '')
  chmodSync(join(dir, 'locked.jsonl'), 0o400)
  if (process.getuid?.() === 0) {
    // root opens a read-only file anyway: a directory is refused for everyone.
    await t.rejects(jsonLinesToFile(dir), { code: 'EDGEFWD_ERR_USAGE', message: /sink: cannot open .* for appending: EISDIR/ })
  } else {
    await t.rejects(jsonLinesToFile(join(dir, 'locked.jsonl')), { code: 'EDGEFWD_ERR_USAGE', message: /sink: cannot open .* for appending: EACCES/ })
  }
})

t.test('JSON lines to a stream: waits for drain when the stream is full', async t => {
  const stream = Object.assign(new EventEmitter(), { text: '', full: true, write (text: string) { this.text += text; return !this.full } })
  const destination = jsonLinesToStream(stream)
  let written = false
  const writing = destination.write({ gatewayId: 'gw-1', batchSeq: 1, events: [] }).then(() => destination.write({
    gatewayId: 'gw-1', batchSeq: 2, events: [{ deviceId: 'd', deviceSeq: 1, gatewayTimeMs: 1, priority: 1, stream: 's', storeSeq: 1 }]
  })).then(() => { written = true })
  await new Promise(resolve => { setImmediate(resolve) })
  t.notOk(written, 'not done while the stream is full')
  t.match(stream.text, /"batchSeq":2/, 'the line was handed over')
  stream.emit('drain')
  await writing
  t.ok(written, 'done on drain')
})
