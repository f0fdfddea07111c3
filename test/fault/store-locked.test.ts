import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { openLevelStore } from '../../src/store/index.js'
import { assertBuilt } from '../helpers/built.js'
import { silentLogger } from '../helpers/logger.js'

const child = fileURLToPath(new URL('./fixtures/open-child.mjs', import.meta.url))

t.test('a second process opening the same store gets EDGEFWD_ERR_STORE_LOCKED', async t => {
  assertBuilt()
  const path = `${t.testdir()}/store`
  const store = await openLevelStore(path, { capacityBytes: 1 << 20 }, silentLogger())
  t.teardown(async () => { await store.close() })
  const { stdout } = await promisify(execFile)(process.execPath, [child, path], { timeout: 20_000 })
  const outcome = JSON.parse(stdout) as { ok: boolean, code?: string, message?: string, hint?: string }
  t.equal(outcome.ok, false)
  t.equal(outcome.code, 'EDGEFWD_ERR_STORE_LOCKED')
  t.match(outcome.message, path, 'the message names the store path')
  t.match(outcome.hint, /another edgefwd/)

  // The first store is unaffected.
  const r = await store.append([{ deviceId: 'd', deviceSeq: 1, gatewayTimeMs: 1, priority: 1, stream: 's' }])
  t.equal(r.accepted, 1)
})

t.test('a second store in the same process is refused the same way', async t => {
  const path = `${t.testdir()}/store`
  const store = await openLevelStore(path, { capacityBytes: 1 << 20 }, silentLogger())
  t.teardown(async () => { await store.close() })
  await t.rejects(openLevelStore(path, { capacityBytes: 1 << 20 }, silentLogger()), { code: 'EDGEFWD_ERR_STORE_LOCKED' })
})
