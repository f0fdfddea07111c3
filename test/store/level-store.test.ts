import t from 'tap'
import { parseConfigText } from '../../src/config/index.js'
import { openLevelStore, storeOptions } from '../../src/store/index.js'
import { silentLogger } from '../helpers/logger.js'
import { storeConformance } from './conformance.js'

storeConformance(t, 'leveldb', {
  async make (t, options) {
    const path = `${t.testdir()}/store`
    const store = await openLevelStore(path, options, silentLogger())
    t.teardown(async () => { await store.close() })
    return { store, reopen: async (o = options) => await openLevelStore(path, o, silentLogger()) }
  }
})

t.test('the configuration maps onto the store options, and a store opens from it', async t => {
  const config = parseConfigText([
    `store:`,
    `  path: ${t.testdir()}/cfg-store`,
    '  capacity: 1MiB',
    '  maxEventSize: 2KiB',
    '  durability: relaxed',
    '  groupCommit: { window: 2ms, maxEvents: 50 }',
    '  drainOrder: newest-first',
    '  ttl: { low: 7d }',
    '  memoryFallback: { maxBytes: 1MiB, retryInterval: 2s }'
  ].join('\n'), 'test.yaml')
  const options = storeOptions(config.store)
  t.match(options, {
    capacityBytes: 1024 * 1024, maxEventBytes: 2048, durability: 'relaxed', groupCommit: { windowMs: 2, maxEvents: 50 },
    drainOrder: 'newest-first', ttlMs: { low: 7 * 24 * 3600 * 1000 }, memoryFallback: { maxBytes: 1024 * 1024, retryIntervalMs: 2000 }
  })
  t.notOk('normal' in (options.ttlMs ?? {}), 'absent TTLs stay absent')
  const store = await openLevelStore(config.store.path, options, silentLogger())
  t.teardown(async () => { await store.close() })
  await t.rejects(store.append([{ deviceId: 'd', deviceSeq: 1, gatewayTimeMs: 1, priority: 1, stream: 's', value: { kind: 'raw', raw: new Uint8Array(3000) } }]),
    { code: 'EDGEFWD_ERR_EVENT_TOO_LARGE' }, 'maxEventSize applies')
})
