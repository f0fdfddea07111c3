import { join } from 'node:path'
import t, { type Test } from 'tap'
import { loadConfig, parseConfigText, sanitizeGatewayId, type Config } from '../../src/config/index.js'
import { ConfigError, formatConfigIssue, isEdgefwdError } from '../../src/errors.js'

/** The formatted issue lines of the ConfigError thrown by `fn`. */
async function issueLines (t: Test, fn: () => unknown, code = 'EDGEFWD_ERR_CONFIG_INVALID'): Promise<string[]> {
  try {
    await fn()
  } catch (err) {
    t.ok(err instanceof ConfigError, 'throws ConfigError')
    t.ok(isEdgefwdError(err) && err.code === code, `code is ${code}`)
    return err instanceof ConfigError ? err.issues.map(formatConfigIssue) : []
  }
  t.fail('expected a ConfigError')
  return []
}

const MiB = 1024 * 1024

t.test('no sources at all: every default', async t => {
  const config = await loadConfig({})
  t.same(config, {
    gateway: { id: config.gateway.id },
    store: {
      path: './data/store',
      capacity: 256 * MiB,
      overheadFactor: 1,
      maxEventSize: 64 * 1024,
      durability: 'sync',
      groupCommit: { window: 5, maxEvents: 1000 },
      drainOrder: 'oldest-first',
      ttl: {},
      expiryInterval: 1000,
      memoryFallback: { maxBytes: 16 * MiB, retryInterval: 1000 },
      compactAfterDeletes: 100_000,
    },
    log: { level: 'info', redact: [] },
    ingest: {
      maxFrameSize: 16384,
      maxClockSkew: 300_000,
      allowUnknownDevices: true,
      devices: {},
      rateLimit: { eventsPerSecond: 1000, bytesPerSecond: MiB, burst: 1000 },
      rules: [],
      maxTrackedDevices: 1024,
      backpressure: { connectionEvents: 4096, pendingEvents: 16384 },
      ackTimeout: 10_000,
      tcp: [],
      serial: [],
      stdin: false,
      mqtt: [],
      modbus: [],
    },
    tls: { checkClientChain: true, expiryWarning: 30 * 86_400_000, watch: true, reloadDebounce: 500 },
    uplink: {
      failover: 'ordered',
      mqttVersion: '5',
      topicPrefix: 'edgefwd',
      window: 8,
      batch: { maxEvents: 500, maxBytes: 128 * 1024, linger: 50 },
      compression: 'auto',
      compressionLevel: 1,
      pubackTimeout: 10_000,
      connectTimeout: 10_000,
      keepalive: 30_000,
      backoff: { initial: 500, max: 10_000, multiplier: 2, refusedMin: 30_000 },
      heartbeatInterval: 60_000,
      heartbeatFormat: 'protobuf',
      stopTimeout: 5000,
    },
    sink: { mqttVersion: '5', source: 'mqtt', jetstream: { stream: '$MQTT_msgs', consumer: 'edgefwd-sinks', ackWait: 30_000, maxAckPending: 1000, pullBatch: 64 } },
    observe: { metrics: { enabled: true, listen: '127.0.0.1:9464', readyOfflineGrace: 300_000 } },
    control: { publicKeys: [], probation: 120_000 },
    mcp: { audit: { maxBytes: 8 * 1024 * 1024 }, objectives: { delivery: 0.999, lagP99: 60_000 } },
    process: { memory: 96 * 1024 * 1024 },
  })
  t.match(config.gateway.id, /^(?:(?![/+#])[\x21-\x7e]){1,64}$/, 'the host name, made a valid gateway id')
  t.same(parseConfigText('', 'empty.yaml'), config, 'an empty file is all defaults')
  t.same(parseConfigText('# nothing but a comment\n', 'c.yaml'), config)
})

t.test('sanitizeGatewayId maps host names onto the id alphabet', async t => {
  t.equal(sanitizeGatewayId('pi-gw.local'), 'pi-gw.local')
  t.equal(sanitizeGatewayId('my host/+#é'), 'my-host----')
  t.equal(sanitizeGatewayId(''), 'edgefwd')
  t.equal(sanitizeGatewayId('x'.repeat(100)).length, 64)
})

t.test('a YAML file sets values with units', async t => {
  const config = parseConfigText([
    'gateway:',
    '  id: gw-1',
    'store:',
    '  capacity: 1GiB',
    '  maxEventSize: 4096',
    '  durability: relaxed',
    '  groupCommit: { window: 0, maxEvents: 10 }',
    '  ttl:',
    '    low: 1d',
    '    critical: 90m',
    'log:',
    '  level: debug',
    '  redact: [req.headers.cookie]',
  ].join('\n'), 'config.yaml')
  t.equal(config.gateway.id, 'gw-1')
  t.equal(config.store.capacity, 1024 * MiB)
  t.equal(config.store.maxEventSize, 4096)
  t.equal(config.store.durability, 'relaxed')
  t.same(config.store.groupCommit, { window: 0, maxEvents: 10 })
  t.same(config.store.ttl, { low: 86_400_000, critical: 5_400_000 })
  t.notOk('normal' in config.store.ttl, 'an absent TTL stays absent')
  t.same(config.log, { level: 'debug', redact: ['req.headers.cookie'] })
})

t.test('a JSON file works, tabs and all', async t => {
  const dir = t.testdir({ 'config.json': '{\n\t"gateway": {"id": "gw-json"},\n\t"store": {"capacity": "64KiB", "ttl": {"high": 5000}}\n}\n' })
  const config = await loadConfig({ file: join(dir, 'config.json') })
  t.equal(config.gateway.id, 'gw-json')
  t.equal(config.store.capacity, 65536)
  t.equal(config.store.ttl.high, 5000)
})

t.test('precedence: defaults < file < env < overrides', async t => {
  const dir = t.testdir({ 'config.yaml': 'store:\n  capacity: 1MiB\n  path: /from/file\n  durability: relaxed\nlog:\n  level: warn\n' })
  const file = join(dir, 'config.yaml')
  const env = { EDGEFWD_STORE__CAPACITY: '2MiB', EDGEFWD_STORE__PATH: '/from/env', PATH: '/usr/bin' }
  const overrides = ['store.capacity=3MiB', 'store.capacity=4MiB']

  t.equal((await loadConfig({ file })).store.capacity, 1 * MiB, 'file over default')
  const config = await loadConfig({ file, env, overrides })
  t.equal(config.store.capacity, 4 * MiB, 'override over env; the last --set wins')
  t.equal(config.store.path, '/from/env', 'env over file')
  t.equal(config.store.durability, 'relaxed', 'file over default')
  t.equal(config.log.level, 'warn')
  t.equal(config.store.maxEventSize, 64 * 1024, 'default where nobody set it')
})

t.test('the result is deep-frozen', async t => {
  const config: Config = await loadConfig({ overrides: ['log.redact=[a, b]', 'store.ttl.low=1h'] })
  const mutable = config as unknown as {
    gateway: { id: string }, store: { ttl: Record<string, number>, groupCommit: { window: number } }, log: { redact: string[] }
  }
  t.throws(() => { mutable.gateway.id = 'other' }, TypeError)
  t.throws(() => { mutable.store.ttl.low = 1 }, TypeError)
  t.throws(() => { mutable.store.groupCommit.window = 1 }, TypeError)
  t.throws(() => { mutable.log.redact.push('c') }, TypeError)
  t.throws(() => { (config as unknown as Record<string, unknown>).extra = 1 }, TypeError)
  t.ok(Object.isFrozen((await loadConfig({})).log.redact), 'a defaulted list is frozen too')
})

t.test('unknown keys in the file, with the line and a suggestion', async t => {
  const lines = await issueLines(t, () => parseConfigText([
    'gateway:',
    '  id: gw-1',
    'store:',
    '  capacty: 1MiB',
    '  groupCommit:',
    '    windw: 5ms',
    'cloud:',
    '  host: broker',
    'store.capacity: 5',
  ].join('\n'), 'config.yaml'))
  t.same(lines, [
    'config.yaml:4: store.capacty: unknown key (did you mean "capacity"?)',
    'config.yaml:6: store.groupCommit.windw: unknown key (did you mean "window"?)',
    'config.yaml:7: cloud: unknown key; the keys here are "gateway", "store", "log", "ingest", "tls", "uplink", "sink", "observe", "control", "mcp", "process"',
    'config.yaml:9: store.capacity: unknown key (write dotted keys as nested mappings)',
  ])
})

t.test('wrong types and ranges: every issue at once, with lines', async t => {
  const lines = await issueLines(t, () => parseConfigText([
    'gateway:',
    '  id: 12',
    'store:',
    '  capacity: 1KiB',
    '  overheadFactor: 5',
    '  durability: fast',
    '  maxEventSize: 12 parsecs',
    '  groupCommit:',
    '    window: 2s',
    '    maxEvents: 1.5',
    '  compactAfterDeletes: -1',
    '  path: ""',
    'log:',
    '  level: loud',
    '  redact:',
    '    - ok',
    '    - 5',
  ].join('\n'), 'config.yaml'))
  t.same(lines, [
    'config.yaml:2: gateway.id: expected a string, got 12 (quote it: "12")',
    'config.yaml:4: store.capacity: must be at least 64KiB, got "1KiB"',
    'config.yaml:5: store.overheadFactor: must be at most 4, got 5',
    'config.yaml:6: store.durability: expected one of "sync", "relaxed", got "fast"',
    'config.yaml:7: store.maxEventSize: expected a size such as 64MiB or 1048576, got "12 parsecs" (unknown unit "parsecs"; use one of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)',
    'config.yaml:9: store.groupCommit.window: must be at most 1s, got "2s"',
    'config.yaml:10: store.groupCommit.maxEvents: expected an integer, got 1.5',
    'config.yaml:11: store.compactAfterDeletes: must be at least 0, got -1',
    'config.yaml:12: store.path: must not be empty',
    'config.yaml:14: log.level: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "loud"',
    'config.yaml:17: log.redact.1: expected a string, got 5 (quote it: "5")',
  ])
})

t.test('gateway.id alphabet and length', async t => {
  t.same(await issueLines(t, () => parseConfigText('gateway:\n  id: "gw/1"\n', 'c.yaml')),
    ['c.yaml:2: gateway.id: must be printable ASCII without spaces, "/", "+" or "#", got "gw/1"'])
  t.same(await issueLines(t, () => parseConfigText(`gateway: {id: ${'x'.repeat(65)}}\n`, 'c.yaml')),
    [`c.yaml:1: gateway.id: must be at most 64 characters long, got "${'x'.repeat(65)}" (65 characters)`])
  t.equal(parseConfigText('gateway: {id: "a.b-c_d:e"}', 'c.yaml').gateway.id, 'a.b-c_d:e')
})

t.test('cross-field check: maxEventSize may not exceed capacity', async t => {
  t.same(await issueLines(t, () => parseConfigText('store:\n  capacity: 64KiB\n  maxEventSize: 1MiB\n', 'c.yaml')),
    ['c.yaml:3: store.maxEventSize: must not exceed store.capacity (64KiB), got 1MiB'])
})

t.test('sections must be mappings; the top level too', async t => {
  t.same(await issueLines(t, () => parseConfigText('store: 5\nlog:\n', 'c.yaml')), [
    'c.yaml:1: store: expected a mapping, got 5',
    'c.yaml:2: log: expected a mapping, got null',
  ])
  t.same(await issueLines(t, () => parseConfigText('- a\n- b\n', 'list.yaml')),
    ['list.yaml:1: expected a mapping of sections (such as "store:") at the top level, got a list'])
  t.same(await issueLines(t, () => parseConfigText('just text', 'text.yaml')),
    ['text.yaml:1: expected a mapping of sections (such as "store:") at the top level, got "just text"'])
})

t.test('an env value cannot hide a file error in the section above it', async t => {
  const lines = await issueLines(t, () => parseConfigText('store: 5\n', 'c.yaml', { env: { EDGEFWD_STORE__CAPACITY: '1MiB' } }))
  t.same(lines, ['c.yaml:1: store: expected a mapping, got 5'])
})

t.test('syntax errors are EDGEFWD_ERR_CONFIG_PARSE with the line', async t => {
  t.same(await issueLines(t, () => parseConfigText('store:\n  capacity: 1\n  capacity: 2\n', 'dup.yaml'), 'EDGEFWD_ERR_CONFIG_PARSE'),
    ['dup.yaml:3: Map keys must be unique (column 3)'])
  const lines = await issueLines(t, () => parseConfigText('{"store": {"capacity": 1,}\n', 'bad.json'), 'EDGEFWD_ERR_CONFIG_PARSE')
  t.ok(lines.length > 0)
  for (const line of lines) t.match(line, /^bad\.json:\d+: .+ \(column \d+\)$/)
  t.same(await issueLines(t, () => parseConfigText('a: *missing\n', 'alias.yaml'), 'EDGEFWD_ERR_CONFIG_PARSE').then(l => l.length), 1)
})

t.test('a missing or unreadable file is EDGEFWD_ERR_CONFIG_READ', async t => {
  const dir = t.testdir({ sub: {} })
  const missing = join(dir, 'nope.yaml')
  t.same(await issueLines(t, async () => await loadConfig({ file: missing }), 'EDGEFWD_ERR_CONFIG_READ'),
    [`${missing}: cannot read the configuration file: no such file`])
  t.same(await issueLines(t, async () => await loadConfig({ file: join(dir, 'sub') }), 'EDGEFWD_ERR_CONFIG_READ'),
    [`${join(dir, 'sub')}: cannot read the configuration file: is a directory, not a file`])
  t.match(await loadConfig({ file: missing }).catch((err: unknown) => err), { hint: 'check the path and its permissions' })
})

t.test('a __proto__ key is an unknown key, not a prototype', async t => {
  t.same(await issueLines(t, () => parseConfigText('__proto__:\n  polluted: 1\nstore:\n  __proto__: {capacity: 1}\n', 'p.yaml')), [
    'p.yaml:1: __proto__: unknown key; the keys here are "gateway", "store", "log", "ingest", "tls", "uplink", "sink", "observe", "control", "mcp", "process"',
    'p.yaml:4: store.__proto__: unknown key; the keys here are "path", "capacity", "overheadFactor", "maxEventSize", "durability", "groupCommit", "drainOrder", "ttl", "expiryInterval", "memoryFallback", "compactAfterDeletes"',
  ])
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('tls: paths, passphrase source, durations', async t => {
  const config = parseConfigText([
    'tls:',
    '  ca: /etc/edgefwd/ca.pem',
    '  cert: client.pem',
    '  key: client.key',
    '  keyPassphraseEnv: EDGEFWD_TLS_KEY_PASSPHRASE',
    '  checkClientChain: false',
    '  expiryWarning: 14d',
    '  watch: false',
    '  reloadDebounce: 2s',
  ].join('\n'), 'c.yaml')
  t.same(config.tls, {
    ca: '/etc/edgefwd/ca.pem', cert: 'client.pem', key: 'client.key', keyPassphraseEnv: 'EDGEFWD_TLS_KEY_PASSPHRASE',
    checkClientChain: false, expiryWarning: 14 * 86_400_000, watch: false, reloadDebounce: 2000,
  })
  t.same(await issueLines(t, () => parseConfigText([
    'tls:',
    '  key: ""',
    '  reloadDebounce: 2m',
  ].join('\n'), 'c.yaml')), [
    'c.yaml:2: tls.key: must not be empty',
    'c.yaml:3: tls.reloadDebounce: must be at most 1m, got "2m"',
  ])
  t.same(await issueLines(t, () => parseConfigText('tls:\n  keyPassphraseFile: /run/credentials/pass\n  keyPassphraseEnv: MY_PASS\n', 'c.yaml')),
    ['c.yaml:3: tls.keyPassphraseEnv: set either tls.keyPassphraseFile or tls.keyPassphraseEnv, not both'])
  t.same(await issueLines(t, () => parseConfigText('tls: {keyPassphraseEnv: "my pass"}', 'c.yaml')),
    ['c.yaml:1: tls.keyPassphraseEnv: must be an environment variable name (letters, digits, "_"), got "my pass"'])
})

t.test('the example configuration in examples/ is valid and means what its comments say', async t => {
  const config = await loadConfig({ file: join(import.meta.dirname, '../../examples/edgefwd.yaml') })
  t.equal(config.store.capacity, 512 * MiB)
  t.same(config.ingest.rules, [{ stream: 'alarm', priority: 'critical' }, { stream: 'debug/*', priority: 'low', ttl: 3_600_000 }])
})

t.test('examples/local-inputs.yaml (a local broker and Modbus devices) is valid and means what its comments say', async t => {
  const config = await loadConfig({ file: join(import.meta.dirname, '../../examples/local-inputs.yaml') })
  const [mqtt] = config.ingest.mqtt
  t.match(mqtt, { url: 'mqtt://127.0.0.1:1883', mqttVersion: '5', inFlight: 256, maxPayload: 64 * 1024 })
  t.same(mqtt?.topics.map(x => [x.filter, x.device, x.stream, x.payload, x.path ?? null]), [
    ['zigbee2mqtt/{device}', '{device}', 'zigbee', 'json', null],
    ['tele/{device}/SENSOR', '{device}', 'energy', 'json', 'ENERGY'],
    ['stat/{device}/POWER', '{device}', 'power', 'number', null],
    ['{device}/sensor/{stream}/state', '{device}', '{stream}', 'number', null]
  ])
  const [meter, plc] = config.ingest.modbus
  t.match(meter, { tcp: { host: '192.168.10.20', port: 502 }, timeout: 1000, devices: [{ id: 'meter-main', unitId: 1, interval: 10_000, stream: 'energy', wordOrder: 'big' }] })
  t.match(plc, { rtu: { path: '/dev/ttyUSB0', baud: 19200, parity: 'even', dataBits: 8, stopBits: 1 }, timeout: 300, devices: [{ id: 'plc-pump', unitId: 3, interval: 2000, stream: 'modbus' }] })
  t.match(plc?.devices[0]?.registers[3], { name: 'hours', table: 'holding', type: 'uint32', wordOrder: 'little', scale: 1, offset: 0 })
})

t.test('a remote overlay merges mappings key by key, replaces lists and scalars, and is named in errors', async t => {
  const file = 'ingest:\n  rateLimit: { eventsPerSecond: 50, burst: 2s }\n  rules: [{ device: "a*", priority: high }]\nuplink:\n  window: 4\n'
  const base = parseConfigText(file, 'gw.yaml')
  const remote = { overlay: { ingest: { rateLimit: { eventsPerSecond: 5 }, rules: [{ stream: 'alarm', priority: 'critical' }], devices: {} }, uplink: { batch: { linger: '200ms' } } }, source: 'remote config v3' }
  const merged = parseConfigText(file, 'gw.yaml', { remote })
  t.equal(merged.ingest.rateLimit.eventsPerSecond, 5)
  t.equal(merged.ingest.rateLimit.burst, 2000, 'a sibling the overlay does not name is kept')
  t.same(merged.ingest.rules, [{ stream: 'alarm', priority: 'critical' }], 'a list is replaced whole')
  t.equal(merged.uplink.batch.linger, 200, 'units as in a file')
  t.equal(merged.uplink.window, 4)
  t.same(base.ingest.rules, [{ device: 'a*', priority: 'high' }], 'the overlay changes nothing of the base')
  t.same(parseConfigText(file, 'gw.yaml', { remote: { overlay: {}, source: 'remote config v4' } }), base, 'an empty overlay is the base')
  const err = t.throws(() => parseConfigText(file, 'gw.yaml', { remote: { overlay: { uplink: { window: 5000 } }, source: 'remote config v5' } })) as ConfigError
  t.match(err.message, /^remote config v5: uplink\.window: /m)
  const typo = t.throws(() => parseConfigText(file, 'gw.yaml', { remote: { overlay: { uplink: { window: { max: 4 } } }, source: 'remote config v7' } })) as ConfigError
  t.match(typo.message, /^remote config v7: uplink\.window: /m, 'a mapping where a number belongs is refused, not ignored')
  const proto = JSON.parse('{"__proto__": {"polluted": true}, "uplink": {"constructor": 1}}') as Record<string, unknown>
  const refused = t.throws(() => parseConfigText(file, 'gw.yaml', { remote: { overlay: proto, source: 'remote config v6' } })) as ConfigError
  t.same(refused.issues.map(i => i.path).sort(), ['__proto__', 'uplink.constructor'])
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'nothing reached Object.prototype')
})

t.test('observe.metrics.listen takes ADDRESS:PORT, IPv6 in brackets', async t => {
  t.equal(parseConfigText('observe: { metrics: { listen: "[::1]:9100" } }', 'o.yaml').observe.metrics.listen, '[::1]:9100')
  t.equal(parseConfigText('observe: { metrics: { listen: "0.0.0.0:0" } }', 'o.yaml').observe.metrics.listen, '0.0.0.0:0')
  for (const bad of ['localhost:9464', '127.0.0.1', '::1:9464', '127.0.0.1:70000', '[127.0.0.1]:1']) {
    t.throws(() => parseConfigText(`observe: { metrics: { listen: "${bad}" } }`, 'o.yaml'), { code: 'EDGEFWD_ERR_CONFIG_INVALID' }, bad)
  }
})

t.test('uplink.url: one broker, or a list of a cluster\'s nodes; either way a list', async t => {
  t.same(parseConfigText('uplink: { url: "mqtts://a:8883" }', 'u.yaml').uplink.url, ['mqtts://a:8883'], 'one url is the list of one')
  const cluster = parseConfigText('uplink:\n  url:\n    - mqtts://a:8883\n    - mqtts://b:8883\n  failover: random\n', 'u.yaml').uplink
  t.same(cluster.url, ['mqtts://a:8883', 'mqtts://b:8883'])
  t.equal(cluster.failover, 'random')
  t.equal(parseConfigText('{}', 'u.yaml').uplink.failover, 'ordered', 'ordered by default')
  const env = await loadConfig({ env: { EDGEFWD_UPLINK__URL: '[mqtts://a:8883, mqtts://b:8884]' }, overrides: [] })
  t.same(env.uplink.url, ['mqtts://a:8883', 'mqtts://b:8884'], 'a list from the environment, in YAML flow style')
  const override = await loadConfig({ env: {}, overrides: ['uplink.url=mqtts://c:8883'] })
  t.same(override.uplink.url, ['mqtts://c:8883'], 'one from --set')

  const cases: Array<[string, RegExp]> = [
    ['url: []', /uplink\.url: must be mqtts:\/\/HOST\[:PORT\], or a non-empty list of them/],
    ['url: [mqtts://a:1, "mqtt://b:1883"]', /uplink\.url\.1: must be mqtts:\/\/HOST\[:PORT\] \(edgefwd connects with mutual TLS only\), got "mqtt:\/\/b:1883"/],
    ['url: [mqtts://a:1, mqtts://a:1]', /uplink\.url\.1: "mqtts:\/\/a:1" is listed twice/],
    ['url: [mqtts://a:1, 5]', /uplink\.url\.1: must be mqtts:\/\/HOST\[:PORT\]/],
    [`url: [${Array.from({ length: 17 }, (_, i) => `mqtts://n${i}:1`).join(', ')}]`, /uplink\.url: must list at most 16, got 17/],
    ['url: "http://a"', /uplink\.url: must be mqtts:\/\/HOST\[:PORT\] \(edgefwd connects with mutual TLS only\), got "http:\/\/a"/],
    ['failover: roundrobin', /uplink\.failover: /]
  ]
  for (const [uplink, expected] of cases) {
    const lines = await issueLines(t, () => parseConfigText(`uplink: { ${uplink} }`, 'u.yaml'))
    t.match(lines.join('\n'), expected, uplink.slice(0, 60))
  }
})

t.test('sink.source jetstream: the NATS servers are required, and checked', async t => {
  const js = parseConfigText('sink: { source: jetstream, jetstream: { servers: [nats://a:4222, tls://b:4222], ackWait: 10s } }', 's.yaml').sink
  t.same(js.jetstream.servers, ['nats://a:4222', 'tls://b:4222'])
  t.equal(js.jetstream.ackWait, 10_000)
  t.equal(js.jetstream.consumer, 'edgefwd-sinks', 'one consumer name every sink shares, by default')
  const cases: Array<[string, RegExp]> = [
    ['source: jetstream', /sink\.jetstream\.servers: is required when sink\.source is jetstream/],
    ['{ source: jetstream, jetstream: { servers: "mqtts://a:1" } }', /sink\.jetstream\.servers: must be nats:\/\/HOST:PORT \(the sink logs in with TLS and its client certificate\), got "mqtts:\/\/a:1"/],
    ['{ jetstream: { consumer: "a b" } }', /sink\.jetstream\.consumer: must be 1 to 64 letters/],
    ['{ jetstream: { stream: "a.b" } }', /sink\.jetstream\.stream: must be a JetStream stream name/],
    ['{ jetstream: { ackWait: 10ms } }', /sink\.jetstream\.ackWait: /],
    ['{ source: kafka }', /sink\.source: /],
  ]
  for (const [yaml, message] of cases) {
    const text = yaml.startsWith('{') ? `sink: ${yaml}` : `sink: { ${yaml} }`
    t.throws(() => parseConfigText(text, 's.yaml'), { code: 'EDGEFWD_ERR_CONFIG_INVALID', message }, yaml)
  }
})
