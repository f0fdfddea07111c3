import t from 'tap'
import type { StoredEvent } from '../../src/proto/codec.js'
import { eventLine, formatBatchLines, formatEventLine } from '../../src/sink/jsonl.js'

const base: StoredEvent = { deviceId: 'dev-1', deviceSeq: 42, gatewayTimeMs: 1_700_000_000_000, priority: 3, stream: 'alarms', storeSeq: 9001 }

t.test('full line: every key, in order', async (t) => {
  const e: StoredEvent = {
    ...base, expiresAtMs: 1_700_000_060_000, clockSkewed: true, tags: { site: 'p7' }, value: { kind: 'number', number: 21.5 },
    deviceUptimeMs: 5000, deviceTimeMs: 1_699_999_999_000
  }
  t.equal(formatEventLine('gw-1', 7, e),
    '{"gateway":"gw-1","batchSeq":7,"storeSeq":9001,"deviceId":"dev-1","deviceSeq":42,"priority":"critical","stream":"alarms",' +
    '"gatewayTimeMs":1700000000000,"deviceTimeMs":1699999999000,"deviceUptimeMs":5000,"value":{"kind":"number","number":21.5},' +
    '"tags":{"site":"p7"},"clockSkewed":true,"expiresAtMs":1700000060000}')
})

t.test('minimal line leaves optional keys out', async (t) => {
  t.equal(formatEventLine('gw', 1, { ...base, priority: 0 }),
    '{"gateway":"gw","batchSeq":1,"storeSeq":9001,"deviceId":"dev-1","deviceSeq":42,"priority":"low","stream":"alarms","gatewayTimeMs":1700000000000}')
})

t.test('values: numbers stay numbers, text, raw as base64, non-finite as null', async (t) => {
  const raw = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x00]).subarray(1, 4)
  t.same(eventLine('g', 1, { ...base, value: { kind: 'raw', raw } }).value, { kind: 'raw', base64: 'rb7v' })
  t.same(eventLine('g', 1, { ...base, value: { kind: 'text', text: 'hé' } }).value, { kind: 'text', text: 'hé' })
  const numbers = JSON.parse(formatEventLine('g', 1, { ...base, value: { kind: 'numbers', numbers: { t: 1.5, bad: Number.NaN, inf: Infinity } } })).value
  t.same(numbers, { kind: 'numbers', numbers: { t: 1.5, bad: null, inf: null } })
  t.equal(JSON.parse(formatEventLine('g', 1, { ...base, value: { kind: 'number', number: -Infinity } })).value.number, null)
  const proto = JSON.parse('{"__proto__": 1}') as Record<string, number>
  t.match(formatEventLine('g', 1, { ...base, value: { kind: 'numbers', numbers: proto } }), /"numbers":\{"__proto__":1\}/)
})

t.test('a batch is one line per event, each ending in a newline', async (t) => {
  const out = formatBatchLines('gw', 3, [base, { ...base, deviceSeq: 43 }])
  const lines = out.split('\n')
  t.equal(lines.length, 3)
  t.equal(lines[2], '')
  t.same(lines.slice(0, 2).map((l) => JSON.parse(l).deviceSeq), [42, 43])
})
