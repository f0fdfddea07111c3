import { EventEmitter } from 'node:events'
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parseConfigText } from '../../src/config/index.js'
import { TlsMaterialSource, tlsSourceOptions, type TlsSourceOptions } from '../../src/pki/reloader.js'
import type { TlsMaterial } from '../../src/pki/material.js'
import { captureLogger, silentLogger } from '../helpers/logger.js'
import { makeCa, makeRsaSet, writeSet } from '../helpers/test-pki.js'
import { waitFor } from '../helpers/wait.js'

const DAY = 86_400_000
const DEBOUNCE = 100

// The sleeps left are the point of their test: a span in which nothing more may happen.
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

const watchHandles = (): number => process.getActiveResourcesInfo().filter(r => r === 'FSEventWrap').length

const ca = makeCa()
const first = makeRsaSet({ ca, commonName: 'gw-first' })
const second = makeRsaSet({ ca, commonName: 'gw-second' })
const third = makeRsaSet({ ca, commonName: 'gw-third' })
const expired = makeRsaSet({ ca, commonName: 'gw-expired', notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) })

t.test('file rotation by rename: a valid set is picked up once; an invalid one is refused and the old one kept', async t => {
  const dir = t.testdir()
  const files = writeSet(dir, first)
  const { logger, records } = captureLogger()
  const handlesBefore = watchHandles()
  const source = await TlsMaterialSource.open({ ...files, reloadDebounceMs: DEBOUNCE }, { logger })
  t.teardown(() => source.close())
  t.ok(watchHandles() > handlesBefore, 'a directory watch is open')
  t.equal(source.current().info.subject, 'CN=gw-first')
  t.match(records().find(r => r.msg === 'TLS material loaded'), { level: 30, reason: 'open', subject: 'CN=gw-first', keyDetail: 'RSA 2048' })

  const changes: TlsMaterial[] = []
  source.onChange(material => changes.push(material))

  // cert-manager / certbot style: each file written beside its name, then renamed over it.
  writeSet(dir, second, { atomic: true })
  await waitFor('the onChange call', () => changes.length === 1)
  await sleep(DEBOUNCE * 3)
  t.equal(changes.length, 1, 'once for the three files: the events were debounced')
  t.equal(changes[0]?.info.subject, 'CN=gw-second')
  t.equal(source.current().info.subject, 'CN=gw-second', 'current() is the new set')
  const reloaded = records().find(r => r.msg === 'TLS material reloaded')
  t.match(reloaded, { level: 30, reason: 'file change', subject: 'CN=gw-second', notAfter: String, daysLeft: Number })
  t.notOk(JSON.stringify(records()).includes('PRIVATE KEY'), 'no key material in any log line')
  t.match(source.stats(), { reloads: 1, failures: 0 })

  writeSet(dir, expired, { atomic: true })
  await waitFor('the invalid set rejected', () => source.stats().failures > 0)
  const rejected = records().find(r => r.level === 50)
  t.match(rejected, { code: 'EDGEFWD_ERR_TLS_CERT_EXPIRED', file: files.cert, configKey: 'tls.cert', reason: 'file change' })
  t.match(rejected?.msg, /^TLS material rejected, the previous set stays in use: .*client\.pem \(tls\.cert\): the client certificate "CN=gw-expired" expired on/)
  t.equal(source.current().info.subject, 'CN=gw-second', 'the previous valid set stays in use')
  t.equal(changes.length, 1, 'listeners hear nothing of an invalid set')
  t.match(source.stats(), { reloads: 1, lastError: 'EDGEFWD_ERR_TLS_CERT_EXPIRED' })

  writeSet(dir, third, { atomic: true })
  await waitFor('the valid files picked up again', () => changes.length === 2)
  t.equal(source.current().info.subject, 'CN=gw-third')
  t.notOk('lastError' in source.stats(), 'a good reload clears lastError')

  await source.close()
  // A handle leaves the list once libuv has run its close callback: the next loop turn.
  await waitFor('close() to close the watch', () => watchHandles() === handlesBefore, 1000)
})

t.test('reload(\'SIGHUP\') without watching; an identical re-read is a no-op', async t => {
  const dir = t.testdir()
  const files = writeSet(dir, first)
  const { logger, records } = captureLogger()
  const handlesBefore = watchHandles()
  const source = await TlsMaterialSource.open({ ...files, watch: false }, { logger })
  t.teardown(() => source.close())
  t.equal(watchHandles(), handlesBefore, 'watch: false opens no watch')
  let calls = 0
  const unsubscribe = source.onChange(() => { calls++ })

  writeSet(dir, first)
  const same = await source.reload('SIGHUP')
  t.equal(same.outcome, 'unchanged')
  t.equal(calls, 0)

  writeSet(dir, second)
  await sleep(50)
  t.equal(source.current().info.subject, 'CN=gw-first', 'not watching: nothing happens by itself')
  const changed = await source.reload('SIGHUP')
  t.equal(changed.outcome, 'changed')
  t.equal(source.current().info.subject, 'CN=gw-second')
  t.equal(calls, 1)
  t.match(records().find(r => r.msg === 'TLS material reloaded'), { reason: 'SIGHUP', subject: 'CN=gw-second' })

  writeSet(dir, { ...second, key: first.key })
  const bad = await source.reload('SIGHUP')
  t.match(bad, { outcome: 'rejected', error: { code: 'EDGEFWD_ERR_TLS_KEY_MISMATCH' } })
  t.equal(bad.outcome === 'rejected' ? bad.material.info.subject : '', 'CN=gw-second', 'the result carries the set still in use')
  t.match(records().find(r => r.level === 50), { code: 'EDGEFWD_ERR_TLS_KEY_MISMATCH', file: files.key, configKey: 'tls.key', reason: 'SIGHUP' })

  unsubscribe()
  writeSet(dir, third)
  t.equal((await source.reload('SIGHUP')).outcome, 'changed')
  t.equal(calls, 1, 'an unsubscribed listener is not called')

  const [a, b] = await Promise.all([source.reload('a'), source.reload('b')])
  t.same([a.outcome, b.outcome], ['unchanged', 'unchanged'], 'concurrent reloads run one after the other')

  await source.close()
  t.same(await source.reload('SIGHUP'), { outcome: 'closed' }, 'a reload after close() does nothing')
})

t.test('open() throws on an invalid set', async t => {
  const files = writeSet(t.testdir(), expired)
  await t.rejects(TlsMaterialSource.open({ ...files }, { logger: silentLogger() }), { code: 'EDGEFWD_ERR_TLS_CERT_EXPIRED', file: files.cert })
})

t.test('expiry: days left, a warning under the threshold at load and on the timer', async t => {
  const files = writeSet(t.testdir(), first)
  const notAfter = new (await import('node:crypto')).X509Certificate(first.cert).validTo
  let now = new Date(new Date(notAfter).getTime() - 45 * DAY)
  const { logger, records } = captureLogger()
  const source = await TlsMaterialSource.open({ ...files, watch: false, expiryWarningMs: 30 * DAY },
    { logger, now: () => now, expiryCheckIntervalMs: 20 })
  t.teardown(() => source.close())
  t.equal(source.daysLeft(), 45)
  t.equal(source.stats().daysLeft, 45)
  t.notOk(records().some(r => r.level === 40), 'no warning with 45 days left')

  now = new Date(new Date(notAfter).getTime() - 10 * DAY - 1000)
  await waitFor('the timer warning', () => records().some(r => r.level === 40))
  t.match(records().find(r => r.level === 40), { msg: 'TLS client certificate expires in 10 days', daysLeft: 10, warnDays: 30, subject: 'CN=gw-first' })

  now = new Date(new Date(notAfter).getTime() + 1000)
  await waitFor('an error line for the expired certificate in use', () => records().some(r => r.level === 50))
  t.match(records().find(r => r.level === 50), { code: 'EDGEFWD_ERR_TLS_CERT_EXPIRED', daysLeft: -1 })
  await source.close()

  const warned = captureLogger()
  const soon = await TlsMaterialSource.open({ ...files, watch: false, expiryWarningMs: 500 * DAY }, { logger: warned.logger })
  t.teardown(() => soon.close())
  t.match(warned.records().find(r => r.level === 40), { msg: /^TLS client certificate expires in \d+ days$/ }, 'and at load')
})

t.test('Kubernetes secret volumes: a swap of the ..data symlink is a change', async t => {
  const dir = t.testdir()
  writeSet(join(dir, '..v1'), first)
  symlinkSync('..v1', join(dir, '..data'))
  for (const name of ['ca.pem', 'client.pem', 'client.key']) symlinkSync(join('..data', name), join(dir, name))
  const options: TlsSourceOptions = { ca: join(dir, 'ca.pem'), cert: join(dir, 'client.pem'), key: join(dir, 'client.key'), reloadDebounceMs: DEBOUNCE }
  const source = await TlsMaterialSource.open(options, { logger: silentLogger() })
  t.teardown(() => source.close())
  t.equal(source.current().info.subject, 'CN=gw-first')

  writeSet(join(dir, '..v2'), second)
  symlinkSync('..v2', join(dir, '..data_tmp'))
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
  await waitFor('the new set picked up through the ..data swap', () => source.current().info.subject === 'CN=gw-second')
})

t.test('files in different directories are all watched; other files in them are ignored', async t => {
  const dir = t.testdir({ ca: {}, certs: {} })
  const files = writeSet(join(dir, 'certs'), first)
  const caFile = join(dir, 'ca', 'ca.pem')
  writeFileSync(caFile, first.ca)
  const { logger, records } = captureLogger()
  const source = await TlsMaterialSource.open({ ...files, ca: caFile, reloadDebounceMs: DEBOUNCE }, { logger })
  t.teardown(() => source.close())

  writeFileSync(join(dir, 'certs', 'unrelated.txt'), 'x')
  mkdirSync(join(dir, 'ca', 'sub'))
  await sleep(DEBOUNCE * 3)
  t.notOk(records().some(r => r.msg === 'TLS material re-read, unchanged' || r.level === 50), 'other names do not trigger a reload')

  writeFileSync(caFile, 'not a certificate\n')
  await waitFor('the change to the CA file in its own directory seen', () => source.stats().failures === 1)
  t.match(source.stats(), { lastError: 'EDGEFWD_ERR_TLS_PEM_INVALID' })
})

t.test('a watch that cannot start or fails is logged; SIGHUP still works', async t => {
  const fs = await import('node:fs')
  const failing = new EventEmitter() as EventEmitter & { close: () => void }
  let closed = 0
  failing.close = () => { closed++ }
  let calls = 0
  const mocked = await t.mockImport<typeof import('../../src/pki/reloader.js')>('../../src/pki/reloader.js', {
    'node:fs': {
      ...fs,
      watch: () => {
        // The first directory hits the inotify limit; the second starts, then fails.
        if (calls++ === 0) throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' })
        return failing
      },
    },
  })
  const dir = t.testdir({ a: {}, b: {} })
  const files = writeSet(join(dir, 'a'), first)
  const caFile = join(dir, 'b', 'ca.pem')
  writeFileSync(caFile, first.ca)
  const { logger, records } = captureLogger()
  const source = await mocked.TlsMaterialSource.open({ ...files, ca: caFile }, { logger })
  t.teardown(() => source.close())
  t.match(records().find(r => r.level === 40), { msg: 'cannot watch a TLS directory; changes there need reload (SIGHUP)', err: { code: 'ENOSPC' } })
  failing.emit('error', new Error('watch failed'))
  t.match(records().filter(r => r.level === 40)[1], { msg: 'watching a TLS directory failed; changes there need reload (SIGHUP)' })
  t.equal(closed, 1, 'the failed watcher is closed')
  writeSet(join(dir, 'a'), second)
  t.equal((await source.reload('SIGHUP')).outcome, 'changed')
})

t.test('a listener that throws is logged and does not stop the others', async t => {
  const dir = t.testdir()
  const files = writeSet(dir, first)
  const { logger, records } = captureLogger()
  const source = await TlsMaterialSource.open({ ...files, watch: false }, { logger })
  t.teardown(() => source.close())
  const seen: string[] = []
  source.onChange(() => { throw new Error('boom') })
  source.onChange(m => seen.push(m.info.subject))
  writeSet(dir, second)
  t.equal((await source.reload('test')).outcome, 'changed')
  t.same(seen, ['CN=gw-second'])
  t.match(records().find(r => r.msg === 'a TLS material listener threw'), { level: 50, err: { message: 'boom' } })
})

t.test('tlsSourceOptions: from the config section, defaults included', async t => {
  const config = parseConfigText('tls: {ca: a.pem, cert: c.pem, key: k.pem}', 'c.yaml')
  t.same(tlsSourceOptions(config.tls), {
    ca: 'a.pem', cert: 'c.pem', key: 'k.pem', checkClientChain: true, expiryWarningMs: 30 * DAY, watch: true, reloadDebounceMs: 500,
  })
})
