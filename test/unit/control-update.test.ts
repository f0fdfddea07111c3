import t from 'tap'
import { configSchema, leafPaths, parseConfigText, schemaTree, type Config } from '../../src/config/index.js'
import { encodeMessage, generateKeyPair, loadPublicKeys, signDocument, type OperatorKey } from '../../src/control/signing.js'
import {
  classifyChanges, decideUpdate, LIVE_KEYS, MAX_DOCUMENT_BYTES, parseDocument, type Decision, type DecideInput,
} from '../../src/control/update.js'
import { createPrivateKey } from 'node:crypto'
import { mergeOverlay } from '../../src/config/overlay.js'
import { join } from 'node:path'

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const json = (v: unknown): Uint8Array => utf8(JSON.stringify(v))

/** The gateway's local configuration input, as read from its file. */
const local: Record<string, unknown> = {
  gateway: { id: 'gw-1' },
  uplink: { url: 'mqtts://broker.example:8883', window: 8, batch: { maxEvents: 200 } },
  ingest: { rules: [{ device: 'pump-*', priority: 'high' }], udp: { port: 4000 } },
  log: { level: 'info' },
}
const buildConfig = (overlay: Record<string, unknown>): Config =>
  parseConfigText(JSON.stringify(mergeOverlay(local, overlay)), 'remote update')
const current = buildConfig({})

const pair = generateKeyPair()
const other = generateKeyPair()
const dir = t.testdir({ 'operator.pub': pair.publicPem })
const keys: OperatorKey[] = await loadPublicKeys([join(dir, 'operator.pub')])
const privateKey = createPrivateKey(pair.privatePem)

function signed (doc: unknown, key = privateKey): Uint8Array {
  return utf8(encodeMessage(signDocument(json(doc), key)))
}

function decide (doc: unknown, overrides: Partial<DecideInput> = {}): Decision {
  return decideUpdate({ message: signed(doc), keys, highestVersion: 3, buildConfig, current, ...overrides })
}

t.test('parseDocument: a valid document, restart defaulting to false', async t => {
  t.same(parseDocument(json({ version: 1, config: {} })), { ok: true, doc: { version: 1, restart: false, config: {} } })
  const full = { version: Number.MAX_SAFE_INTEGER, restart: true, comment: 'raise the window', config: { uplink: { window: 16 } } }
  t.same(parseDocument(json(full)), { ok: true, doc: full })
})

t.test('parseDocument: invalid documents, each with its own detail', async t => {
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['not JSON', utf8('{version: 1}'), /not UTF-8 JSON/],
    ['not UTF-8', new Uint8Array([0x7b, 0xc3, 0x28, 0x7d]), /not UTF-8 JSON/],
    ['an array', json([]), /not a JSON object/],
    ['a string', json('x'), /not a JSON object/],
    ['unknown top-level key', json({ version: 1, config: {}, restrat: true }), /unknown top-level keys: restrat \(allowed: version, restart, comment, config\)/],
    ['no version', json({ config: {} }), /"version" must be a positive whole number .*got nothing/],
    ['version 0', json({ version: 0, config: {} }), /"version" must be a positive whole number/],
    ['version -1', json({ version: -1, config: {} }), /"version"/],
    ['version 1.5', json({ version: 1.5, config: {} }), /"version"/],
    ['version "2"', json({ version: '2', config: {} }), /"version" .*got "2"/],
    ['version beyond 2^53', utf8('{"version": 9007199254740993, "config": {}}'), /"version"/],
    ['restart "yes"', json({ version: 1, restart: 'yes', config: {} }), /"restart" must be true or false, got "yes"/],
    ['comment 5', json({ version: 1, comment: 5, config: {} }), /"comment" must be a string/],
    ['no config', json({ version: 1 }), /"config" must be an object/],
    ['config an array', json({ version: 1, config: [] }), /"config" must be an object/],
    ['config null', json({ version: 1, config: null }), /"config" must be an object/],
    ['config.gateway', json({ version: 1, config: { gateway: { id: 'evil' } } }), /"config" may not contain "gateway": the gateway's identity and its operator keys are never changed remotely/],
    ['config.control', json({ version: 1, config: { control: { publicKeys: ['/tmp/mine.pub'] } } }), /may not contain "control"/],
    ['both', json({ version: 1, config: { gateway: {}, control: {} } }), /may not contain "gateway" or "control"/],
    ['__proto__', utf8('{"version": 1, "config": {"ingest": {"devices": {"__proto__": {"key": "00"}}}}}'), /config\.ingest\.devices\.__proto__: a key named "__proto__" is not allowed/],
    ['too large', json({ version: 1, config: {}, comment: 'x'.repeat(MAX_DOCUMENT_BYTES) }), /over the 262144-byte limit/],
  ]
  for (const [name, bytes, detail] of cases) t.match(parseDocument(bytes), { ok: false, reason: 'invalid', detail }, name)
})

t.test('mergeOverlay: objects merge key by key, arrays and scalars replace', async t => {
  const base = { a: { b: 1, c: [1, 2], d: { e: 'x' } }, f: 'keep' }
  const overlay = { a: { c: [3], d: { g: true } }, h: null }
  t.same(mergeOverlay(base, overlay), { a: { b: 1, c: [3], d: { e: 'x', g: true } }, f: 'keep', h: null })
  t.same(mergeOverlay({ a: { b: 1 } }, { a: 5 }), { a: 5 }, 'a scalar replaces an object')
  t.same(mergeOverlay({ a: 5 }, { a: { b: 1 } }), { a: { b: 1 } }, 'an object replaces a scalar')
  t.same(mergeOverlay({ a: [{ x: 1 }] }, { a: [{ y: 2 }] }), { a: [{ y: 2 }] }, 'arrays are not merged element-wise')
})

t.test('mergeOverlay: pure, no shared references, __proto__ stays an own key', async t => {
  const base = Object.freeze({ a: Object.freeze({ b: 1, list: Object.freeze([Object.freeze({ x: 1 })]) }) })
  const overlay = Object.freeze({ a: Object.freeze({ c: Object.freeze({ d: 2 }) }) })
  const merged = mergeOverlay(base, overlay) as { a: { list: Array<{ x: number }>, c: { d: number } } }
  merged.a.list[0]!.x = 99
  merged.a.c.d = 99
  t.same(base, { a: { b: 1, list: [{ x: 1 }] } }, 'base unchanged')
  t.same(overlay, { a: { c: { d: 2 } } }, 'overlay unchanged')

  const hostile = JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, unknown>
  const result = mergeOverlay({}, hostile)
  t.equal(Object.getPrototypeOf(result), Object.prototype)
  t.same(Object.keys(result), ['__proto__'])
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('LIVE_KEYS all name keys of the schema', async t => {
  const leaves = leafPaths(schemaTree(configSchema))
  for (const key of LIVE_KEYS) t.ok(leaves.some(l => l === key || l.startsWith(`${key}.`)), key)
})

t.test('classifyChanges: live and restart paths, sorted', async t => {
  t.same(classifyChanges(current, buildConfig({})), { live: [], restart: [] }, 'nothing changed')
  const after = buildConfig({
    log: { level: 'debug', redact: ['token'] },
    uplink: { window: 16, batch: { maxEvents: 300, linger: '200ms' }, backoff: { max: '2m' }, dailyBudget: '50MiB' },
    ingest: { rateLimit: { eventsPerSecond: 50 }, devices: { 'pump-1': {}, 'pump-2': { key: '00'.repeat(16) } }, maxClockSkew: '1m' },
    store: { ttl: { low: '1h' }, capacity: '32MiB' },
  })
  t.same(classifyChanges(current, after), {
    live: [
      'ingest.devices.pump-1', 'ingest.devices.pump-2.key', 'ingest.maxClockSkew', 'ingest.rateLimit.eventsPerSecond',
      'log.level', 'store.ttl.low', 'uplink.batch.linger', 'uplink.batch.maxEvents', 'uplink.dailyBudget',
    ],
    restart: ['log.redact', 'store.capacity', 'uplink.backoff.max', 'uplink.window'],
  })
})

t.test('classifyChanges: arrays are compared whole and reported at their path', async t => {
  const rules = buildConfig({ ingest: { rules: [{ device: 'pump-*', priority: 'high' }, { stream: 'debug', priority: 'low' }] } })
  t.same(classifyChanges(current, rules), { live: ['ingest.rules'], restart: [] })
  const sameRules = buildConfig({ ingest: { rules: [{ device: 'pump-*', priority: 'high' }] } })
  t.same(classifyChanges(current, sameRules), { live: [], restart: [] }, 'an equal array is no change')
  const tcp = buildConfig({ ingest: { tcp: [{ port: 5000 }] } })
  t.same(classifyChanges(current, tcp), { live: [], restart: ['ingest.tcp'] })
})

t.test('classifyChanges: optional sections appearing and disappearing', async t => {
  const unix = buildConfig({ ingest: { unix: { path: '/run/edgefwd.sock' } } })
  t.same(classifyChanges(current, unix), { live: [], restart: ['ingest.unix.path'] })
  t.same(classifyChanges(unix, current), { live: [], restart: ['ingest.unix.path'] })
  const cast = (v: unknown): Config => v as Config
  t.same(classifyChanges(cast({ a: { b: 1 } }), cast({ a: 5 })), { live: [], restart: ['a'] }, 'object against scalar: its own path')
  t.same(classifyChanges(cast({ log: { levelish: 1 } }), cast({ log: { levelish: 2 } })), { live: [], restart: ['log.levelish'] },
    'a live key matches whole path segments only')
})

t.test('decideUpdate: accept with live changes only', async t => {
  const d = decide({ version: 4, comment: 'debug', config: { log: { level: 'debug' }, ingest: { rateLimit: { eventsPerSecond: 10 } } } })
  t.match(d, { result: 'accept', version: 4, live: ['ingest.rateLimit.eventsPerSecond', 'log.level'], restart: [], needsRestart: false })
  if (d.result !== 'accept') return
  t.equal(d.config.log.level, 'debug')
  t.equal(d.config.uplink.window, 8, 'local values stay')
  t.equal(d.doc.comment, 'debug')
  t.ok(Object.isFrozen(d.config))
  const withRestart = decide({ version: 4, restart: true, config: { log: { level: 'debug' } } })
  t.match(withRestart, { result: 'accept', live: ['log.level'], restart: [], needsRestart: false }, 'restart: true permits, it does not force')
})

t.test('decideUpdate: an update that changes nothing is accepted with empty lists', async t => {
  t.match(decide({ version: 9, config: {} }), { result: 'accept', version: 9, live: [], restart: [], needsRestart: false })
  t.match(decide({ version: 9, config: { uplink: { window: 8 } } }), { result: 'accept', live: [], restart: [] }, 'same value as local')
})

t.test('decideUpdate: restart keys need restart: true', async t => {
  t.same(decide({ version: 5, config: { uplink: { window: 16, batch: { maxEvents: 1 } } } }), {
    result: 'restart_required',
    version: 5,
    restartKeys: ['uplink.window'],
    detail: 'changes uplink.window, which need a restart, but the document does not say "restart": true',
  })
  t.match(decide({ version: 5, restart: true, config: { uplink: { window: 16, batch: { maxEvents: 1 } } } }),
    { result: 'accept', version: 5, live: ['uplink.batch.maxEvents'], restart: ['uplink.window'], needsRestart: true })
})

t.test('decideUpdate: old versions, equal and lower, name both numbers', async t => {
  t.same(decide({ version: 3, config: {} }), { result: 'old_version', version: 3, detail: 'version 3 is not newer than version 3, the highest processed before' })
  t.match(decide({ version: 1, config: {} }), { result: 'old_version', version: 1, detail: /version 1 is not newer than version 3/ })
  t.match(decide({ version: 1, config: {} }, { highestVersion: 0 }), { result: 'accept' }, 'a fresh gateway takes version 1')
})

t.test('decideUpdate: a configuration the schema refuses is invalid, with its issues', async t => {
  t.same(decide({ version: 4, config: { uplink: { window: 5000 } } }), { result: 'invalid', version: 4, detail: 'uplink.window: must be at most 1000, got 5000' })
  const two = decide({ version: 4, config: { uplink: { window: 0 }, store: { bogus: 1 } } })
  t.match(two, { result: 'invalid', version: 4, detail: /; / })
  if (two.result === 'invalid') {
    t.match(two.detail, /uplink\.window: /)
    t.match(two.detail, /store\.bogus/)
  }
  t.match(decide({ version: 4, config: { control: { publicKeys: [] } } }), { result: 'invalid', detail: /may not contain "control"/ })
  t.match(decide({ version: 4, config: { gateway: { id: 'other' } } }), { result: 'invalid', detail: /may not contain "gateway"/ })
})

t.test('decideUpdate: checks run in order: signature, parse, version, config, restart', async t => {
  const forged = decideUpdate({ message: signed({ version: 1, config: { gateway: {} } }, createPrivateKey(other.privatePem)), keys, highestVersion: 3, buildConfig, current })
  t.match(forged, { result: 'bad_signature', detail: /not among the operator keys/ }, 'signature before everything')
  t.notOk('version' in forged, 'nothing from an untrusted document is reported')
  const genuine = JSON.parse(new TextDecoder().decode(signed({ version: 4, config: {} }))) as Record<string, string>
  const swapped = utf8(JSON.stringify({ ...genuine, document: Buffer.from(JSON.stringify({ version: 99, config: { uplink: { window: 5000 } } })).toString('base64') }))
  t.same(decideUpdate({ message: swapped, keys, highestVersion: 100, buildConfig, current }),
    { result: 'bad_signature', detail: `the signature does not verify with key ${keys[0]?.keyId ?? ''} (${join(dir, 'operator.pub')})` },
    'a trusted key id and signature on another document: bad_signature, not old_version or invalid')
  t.match(decide({ version: 1, config: [] }), { result: 'invalid', detail: /"config" must be an object/ }, 'shape before version')
  t.match(decide({ version: 2, config: { uplink: { window: 5000 } } }), { result: 'old_version' }, 'version before config')
  t.match(decide({ version: 4, config: { uplink: { window: 5000, url: 'http://x' } } }), { result: 'invalid' }, 'config before restart')
  const notJson = decideUpdate({ message: utf8('hello'), keys, highestVersion: 0, buildConfig, current })
  t.match(notJson, { result: 'bad_signature', detail: /not UTF-8 JSON/ })
  const huge = decideUpdate({ message: new Uint8Array(300 * 1024), keys, highestVersion: 0, buildConfig, current })
  t.match(huge, { result: 'invalid', detail: /307200 bytes, over the 262144-byte limit/ })
})

t.test('decideUpdate: a buildConfig bug is thrown, not reported as invalid', async t => {
  const broken = (): Config => { throw new TypeError('bug') }
  t.throws(() => decide({ version: 4, config: {} }, { buildConfig: broken }), TypeError)
})
