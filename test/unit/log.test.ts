import pino from 'pino'
import t from 'tap'
import { childLogger, createLogger, DEFAULT_REDACT_PATHS, REDACTED, setLogLevel } from '../../src/observe/log.js'
import { logLines } from '../helpers/log-lines.js'

t.test('lines below the level are dropped', async t => {
  const { stream, records } = logLines()
  const log = createLogger({ level: 'warn', destination: stream })
  log.debug('debug')
  log.info('info')
  log.warn('warn')
  log.error({ code: 'EDGEFWD_ERR_STORE_IO' }, 'error')
  t.same(records.map((r) => [r.level, r.msg]), [[40, 'warn'], [50, 'error']])
  t.equal(records[1]?.code, 'EDGEFWD_ERR_STORE_IO')
  t.equal(log.isLevelEnabled('info'), false)
})

t.test('silent logs nothing', async t => {
  const { stream, records } = logLines()
  createLogger({ level: 'silent', destination: stream }).fatal('x')
  t.same(records, [])
})

t.test('an unknown level is refused', async t => {
  t.throws(() => createLogger({ level: 'verbose', destination: logLines().stream }))
})

t.test('child loggers carry the module binding and the parent level', async t => {
  const { stream, records } = logLines()
  const root = createLogger({ level: 'info', destination: stream, base: { gateway: 'gw-1' } })
  const store = childLogger(root, 'store')
  store.info({ evicted: 3 }, 'evicted')
  store.debug('hidden')
  childLogger(store, 'level-backend').warn('nested')
  root.info('root')
  t.match(records, [
    { module: 'store', gateway: 'gw-1', evicted: 3, msg: 'evicted' },
    { module: 'level-backend', gateway: 'gw-1', msg: 'nested' },
    { gateway: 'gw-1', msg: 'root' }
  ])
  t.equal(records.length, 3)
  t.notOk('module' in (records[2] ?? {}))
  t.notOk('pid' in (records[0] ?? {}), 'base replaces the default pid/hostname bindings')
})

t.test('the default base has pid and hostname', async t => {
  const { stream, records } = logLines()
  createLogger({ level: 'info', destination: stream }).info('x')
  t.equal(records[0]?.pid, process.pid)
  t.type(records[0]?.hostname, 'string')
})

t.test('secrets are redacted at the top level and one or two levels deep', async t => {
  const { stream, records } = logLines()
  const log = createLogger({ level: 'info', destination: stream })
  log.info({
    key: 'k0',
    password: 'p0',
    tls: { key: 'k1', cert: 'public cert', passphrase: 'pp1', ca: 'public ca' },
    uplink: { tls: { key: 'k2', privateKey: 'pk2' }, password: 'p1', host: 'broker' },
    remoteConfig: { secret: 's1', token: 't1' }
  }, 'config')
  childLogger(log, 'pki').info({ material: { privateKey: 'pk' } }, 'loaded')
  const [config, pki] = records
  t.match(config, {
    key: REDACTED,
    password: REDACTED,
    tls: { key: REDACTED, cert: 'public cert', passphrase: REDACTED, ca: 'public ca' },
    uplink: { tls: { key: REDACTED, privateKey: REDACTED }, password: REDACTED, host: 'broker' },
    remoteConfig: { secret: REDACTED, token: REDACTED }
  })
  t.match(pki, { module: 'pki', material: { privateKey: REDACTED } })
  t.notMatch(JSON.stringify(records), /k0|k1|k2|pk2|pp1|p0|p1|s1|t1|"pk"/, 'no secret value reaches the output')
})

t.test('extra redact paths add to the defaults', async t => {
  const { stream, records } = logLines()
  const log = createLogger({ level: 'info', destination: stream, redact: ['mqtt.username'] })
  log.info({ mqtt: { username: 'u', password: 'p', clientId: 'gw-1' } }, 'connect')
  t.match(records[0], { mqtt: { username: REDACTED, password: REDACTED, clientId: 'gw-1' } })
  t.ok(DEFAULT_REDACT_PATHS.includes('*.*.key'))
})

t.test('by default lines go to stdout synchronously, with no worker transport', async t => {
  const log = createLogger({ level: 'info' })
  const stream = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as { fd: number, sync: boolean }
  t.equal(stream.fd, 1)
  t.equal(stream.sync, true)
})

t.test('setLogLevel reaches the root, children and grandchildren made before and after', async t => {
  const { stream, records } = logLines()
  const root = createLogger({ level: 'info', destination: stream })
  const child = childLogger(root, 'uplink')
  const grandchild = child.child({ connection: 1 })
  child.debug('hidden')
  setLogLevel(root, 'debug')
  child.debug('child debug')
  grandchild.debug('grandchild debug')
  childLogger(root, 'store').debug('later child debug')
  root.debug('root debug')
  setLogLevel(root, 'warn')
  child.info('hidden again')
  grandchild.warn('grandchild warn')
  t.same(records.map(r => r.msg), ['child debug', 'grandchild debug', 'later child debug', 'root debug', 'grandchild warn'])
})
