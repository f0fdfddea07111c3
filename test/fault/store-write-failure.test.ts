/**
 * Fault: the backend fails a write for a reason other than a full disk (an I/O error). The
 * group's appends and acks reject with EDGEFWD_ERR_STORE_IO, nothing of the group is applied
 * (totals unchanged, the acked lease still held), and the store works again once writes do.
 */
import t from 'tap'
import { decodeBatch } from '../../src/proto/codec.js'
import { MemoryBackend, RingBuffer } from '../../src/store/index.js'
import type { BackendWrite, WriteOutcome } from '../../src/store/backend.js'
import type { EventRecord } from '../../src/types.js'

class FaultyBackend extends MemoryBackend {
  failing = false
  override async write (w: BackendWrite): Promise<WriteOutcome> {
    if (this.failing) throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' })
    return await super.write(w)
  }
}

const ev = (deviceSeq: number): EventRecord => ({ deviceId: 'dev', deviceSeq, gatewayTimeMs: 1, priority: 1, stream: 's' })

t.test('a failed write rejects its group with EDGEFWD_ERR_STORE_IO and changes nothing', async t => {
  const backend = new FaultyBackend()
  const store = new RingBuffer(backend, { capacityBytes: 1 << 20, groupCommit: { windowMs: 0, maxEvents: 100 } })
  await store.open()
  t.teardown(async () => { backend.failing = false; await store.close() })
  await store.append([ev(1), ev(2)])
  const lease = await store.lease(1, 1 << 20)
  const before = store.stats()

  backend.failing = true
  await t.rejects(store.append([ev(3)]), { code: 'EDGEFWD_ERR_STORE_IO' })
  await t.rejects(store.ack(lease!.id), { code: 'EDGEFWD_ERR_STORE_IO' })
  t.same(store.stats().perPriority, before.perPriority, 'totals unchanged')

  backend.failing = false
  await store.ack(lease!.id)
  t.equal(store.stats().events, 1, 'the ack can be retried once writes work')
  t.equal((await store.append([ev(4)])).accepted, 1, 'appends work again')
  const rest = await store.lease(10, 1 << 20)
  t.same(decodeBatch(rest!.batch).map(e => e.deviceSeq), [2, 4], 'the failed append left nothing behind')
})
