/**
 * The uplink's options from the configuration: batches in flight cannot be evicted, so the
 * batch size is lowered until `uplink.window` batches hold at most half of the store, and at most
 * the memory budget's uplink share; the default store and budget keep the configured size.
 */
import t from 'tap'
import { loadConfig } from '../../src/config/index.js'
import { batchMaxBytes, uplinkOptions } from '../../src/uplink/options.js'

const deps = { credentials: () => { throw new Error('not used') }, nextBatchSeq: () => 1 }

async function batchBytes (...overrides: string[]): Promise<number> {
  const config = await loadConfig({ env: {}, overrides: ['uplink.url=mqtts://127.0.0.1:8883', ...overrides] })
  return uplinkOptions(config, deps).batch.maxBytes
}

t.test('the default store leaves uplink.batch.maxBytes as configured', async t => {
  t.equal(await batchBytes(), 128 * 1024)
  t.equal(await batchBytes('uplink.batch.maxBytes=1MiB', 'process.memory=off'), 1024 * 1024, '256 MiB / (2 × 8) = 16 MiB is more')
})

t.test('the memory budget keeps the batches in flight within its uplink share', async t => {
  t.equal(await batchBytes('uplink.batch.maxBytes=1MiB'), 3 * 1024 * 1024 / 8, 'the default 96 MiB: 3 MiB for 8 batches')
  t.equal(await batchBytes('uplink.batch.maxBytes=1MiB', 'uplink.window=2'), 1024 * 1024, 'two fit')
})

t.test('a small store lowers it so the batches in flight hold at most half of the store', async t => {
  t.equal(await batchBytes('store.capacity=64KiB'), 4096, '64 KiB / (2 × 8)')
  t.equal(await batchBytes('store.capacity=64KiB', 'uplink.window=1'), 32 * 1024)
  t.equal(await batchBytes('store.capacity=1MiB', 'uplink.batch.maxBytes=16KiB'), 16 * 1024, 'already small enough')
})

t.test('never below the configuration\'s minimum batch size, 1 KiB', async t => {
  t.equal(batchMaxBytes(128 * 1024, 1000, 64 * 1024), 1024)
})
