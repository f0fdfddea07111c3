import t from 'tap'
import { envNameFor, isConfigEnvName, loadConfig, parseConfigText } from '../../src/config/index.js'
import { ConfigError, formatConfigIssue } from '../../src/errors.js'

async function issueLines (fn: () => unknown): Promise<string[]> {
  try {
    await fn()
  } catch (err) {
    if (err instanceof ConfigError && err.code === 'EDGEFWD_ERR_CONFIG_INVALID') return err.issues.map(formatConfigIssue)
    throw err
  }
  throw new Error('expected a ConfigError')
}

t.test('which names are configuration', async t => {
  t.ok(isConfigEnvName('EDGEFWD_STORE__CAPACITY'))
  t.ok(isConfigEnvName('EDGEFWD_NOPE__X'), 'unknown, but configuration by the rule (and so an error)')
  t.notOk(isConfigEnvName('EDGEFWD_CONFIG'))
  t.notOk(isConfigEnvName('EDGEFWD_LOG_FORMAT'))
  t.notOk(isConfigEnvName('EDGEFWD_DEBUG'))
  t.notOk(isConfigEnvName('STORE__CAPACITY'))
  t.equal(envNameFor(['store', 'groupCommit', 'maxEvents']), 'EDGEFWD_STORE__GROUP_COMMIT__MAX_EVENTS')
})

t.test('env variables map onto keys', async t => {
  const config = await loadConfig({
    env: {
      EDGEFWD_GATEWAY__ID: '0123',
      EDGEFWD_STORE__CAPACITY: '64MiB',
      EDGEFWD_STORE__GROUP_COMMIT__MAX_EVENTS: '10',
      EDGEFWD_STORE__OVERHEAD_FACTOR: '1.25',
      EDGEFWD_STORE__TTL__LOW: '1h',
      EDGEFWD_STORE__DURABILITY: 'relaxed',
      EDGEFWD_LOG__REDACT: '[a.b, "c"]',
      EDGEFWD_CONFIG: '/etc/edgefwd.yaml',
      EDGEFWD_LOG_FORMAT: 'pretty',
      EDGEFWD_DEBUG: '1',
      EDGEFWD_STORE__PATH: undefined,
      HOME: '/root',
    },
  })
  t.equal(config.gateway.id, '0123', 'a string key keeps the text as typed')
  t.equal(config.store.capacity, 64 * 1024 * 1024)
  t.equal(config.store.groupCommit.maxEvents, 10, 'numbers are read as YAML scalars')
  t.equal(config.store.overheadFactor, 1.25)
  t.equal(config.store.ttl.low, 3_600_000)
  t.equal(config.store.durability, 'relaxed')
  t.same(config.log.redact, ['a.b', 'c'], 'a list is a YAML flow sequence')
  t.equal(config.store.path, './data/store', 'an undefined variable is ignored')
})

t.test('env values of the wrong type say which variable', async t => {
  t.same(await issueLines(() => loadConfig({ env: { EDGEFWD_STORE__GROUP_COMMIT__MAX_EVENTS: 'many', EDGEFWD_STORE__CAPACITY: 'true' } })), [
    'env EDGEFWD_STORE__CAPACITY: store.capacity: expected a size such as 64MiB or 1048576, got true',
    'env EDGEFWD_STORE__GROUP_COMMIT__MAX_EVENTS: store.groupCommit.maxEvents: expected a number, got "many"',
  ])
  t.same(await issueLines(() => loadConfig({ env: { EDGEFWD_LOG__REDACT: '[a' } })),
    ['env EDGEFWD_LOG__REDACT: log.redact: expected a list, got "[a"'], 'text that is not YAML is passed on as a string')
})

t.test('unknown env variables are errors that name the variable', async t => {
  t.same(await issueLines(() => loadConfig({
    env: {
      EDGEFWD_STORE__CAPACTY: '1MiB',
      EDGEFWD_STORE__GROUPCOMMIT__WINDOW: '1ms',
      EDGEFWD_FOO__BAR: '1',
      EDGEFWD_STORE__TTL: '1h',
      EDGEFWD_LOG__LEVEL__X: 'info',
      EDGEFWD_STORE____PATH: 'x',
    },
  })), [
    'env EDGEFWD_FOO__BAR: foo: unknown key; the variables here are EDGEFWD_GATEWAY__..., EDGEFWD_STORE__..., EDGEFWD_LOG__..., EDGEFWD_INGEST__..., EDGEFWD_TLS__..., EDGEFWD_UPLINK__..., EDGEFWD_SINK__..., EDGEFWD_OBSERVE__..., EDGEFWD_CONTROL__..., EDGEFWD_MCP__..., EDGEFWD_PROCESS__...',
    'env EDGEFWD_LOG__LEVEL__X: log.level: this key has no sub-keys',
    'env EDGEFWD_STORE__CAPACTY: store.capacty: unknown key (did you mean EDGEFWD_STORE__CAPACITY?)',
    'env EDGEFWD_STORE__GROUPCOMMIT__WINDOW: store.groupcommit: unknown key (did you mean EDGEFWD_STORE__GROUP_COMMIT__...?)',
    'env EDGEFWD_STORE__TTL: store.ttl: names a section, not a key; set one of its keys, e.g. EDGEFWD_STORE__TTL__LOW',
    'env EDGEFWD_STORE____PATH: store: empty key segment: separate segments with exactly two underscores',
  ])
})

t.test('--set overrides', async t => {
  const config = await loadConfig({ overrides: ['gateway.id=007', 'store.groupCommit.window=0', 'store.drainOrder=newest-first', 'log.redact=[]'] })
  t.equal(config.gateway.id, '007')
  t.equal(config.store.groupCommit.window, 0)
  t.equal(config.store.drainOrder, 'newest-first')
  t.same(config.log.redact, [])
  t.equal((await loadConfig({ overrides: ['gateway.id=a=b'] })).gateway.id, 'a=b', 'only the first = separates')
})

t.test('unknown --set keys and malformed --set', async t => {
  t.same(await issueLines(() => loadConfig({
    overrides: ['nope', '=1', 'store.ttl.hig=1h', 'store.ttl=1h', 'store.capacity.x=1', 'cloud.host=x', 'store.capacity=1x'],
  })), [
    '--set: expected KEY=VALUE such as store.capacity=64MiB, got "nope"',
    '--set: expected KEY=VALUE such as store.capacity=64MiB, got "=1"',
    '--set: store.ttl.hig: unknown key (did you mean "store.ttl.high"?)',
    '--set: store.ttl: names a section, not a key; set one of its keys, e.g. store.ttl.low=...',
    '--set: store.capacity.x: store.capacity has no sub-keys',
    '--set: cloud.host: unknown key; the keys here are "gateway", "store", "log", "ingest", "tls", "uplink", "sink", "observe", "control", "mcp", "process"',
    '--set: store.capacity: expected a size such as 64MiB or 1048576, got "1x" (unknown unit "x"; use one of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)',
  ])
})

t.test('issues from all sources come together, file first', async t => {
  const lines = await issueLines(() => parseConfigText('store:\n  durability: fast\n', 'c.yaml', {
    env: { EDGEFWD_STORE__CAPACTY: '1' },
    overrides: ['log.level=loud'],
  }))
  t.same(lines, [
    'c.yaml:2: store.durability: expected one of "sync", "relaxed", got "fast"',
    'env EDGEFWD_STORE__CAPACTY: store.capacty: unknown key (did you mean EDGEFWD_STORE__CAPACITY?)',
    '--set: log.level: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "loud"',
  ])
})

t.test('an override replaces a file list, and issues point at the override', async t => {
  const lines = await issueLines(() => parseConfigText('log:\n  redact:\n    - a\n    - b\n', 'c.yaml', { overrides: ['log.redact=[x, 5]'] }))
  t.same(lines, ['--set: log.redact.1: expected a string, got 5 (quote it: "5")'])
})
