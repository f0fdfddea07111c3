/**
 * How MQTT messages become readings (src/ingest/sources/mqtt/topic-map.ts): topic filters with
 * captures, device ids from levels, and payloads as zigbee2mqtt, Tasmota and ESPHome send them.
 */
import t from 'tap'
import { parseConfigText } from '../../src/config/index.js'
import { TopicMapping, type TopicMappingSpec } from '../../src/ingest/sources/mqtt/topic-map.js'

function mapping (over: Partial<TopicMappingSpec> & { filter: string }): TopicMapping {
  return new TopicMapping({ device: '{device}', stream: '{stream}', payload: 'json', qos: 1, ...over })
}

const bytes = (s: string): Uint8Array => Buffer.from(s)

t.test('filters: {name} captures a level, + and a last # match, literals must be equal', async t => {
  const m = mapping({ filter: 'tele/{device}/+/#', stream: 's' })
  t.equal(m.subscription, 'tele/+/+/#')
  t.same(m.match('tele/plug-1/x'), new Map([['device', 'plug-1']]), '# matches zero levels too')
  t.same(m.match('tele/plug-1/x/y/z'), new Map([['device', 'plug-1']]))
  t.equal(m.match('stat/plug-1/x'), undefined)
  t.equal(m.match('tele/plug-1'), undefined)
  const exact = mapping({ filter: 'zigbee2mqtt/{device}', stream: 'zigbee' })
  t.equal(exact.match('zigbee2mqtt/a/b'), undefined, 'a {name} is one level, not more')
  t.equal(mapping({ filter: '+/{device}', stream: 's' }).match('$SYS/broker'), undefined, 'a leading wildcard never matches $ topics [MQTT-4.7.2-1]')
})

t.test('device ids and streams are templates over the captures; what a device id may not hold becomes _', async t => {
  const m = mapping({ filter: 'home/{room}/{device}/{stream}', device: 'z2m-{room}-{device}' })
  const captures = m.match('home/Küche/Living Room #1/temp') as Map<string, string>
  t.equal(m.deviceId(captures), 'z2m-K_che-Living_Room__1')
  t.equal(m.stream(captures), 'temp')
})

t.test('json: a zigbee2mqtt object becomes named numbers (booleans 1/0); strings and nulls are left out unless tagged', async t => {
  const m = mapping({ filter: 'zigbee2mqtt/{device}', stream: 'zigbee', tags: { state: 'state', fw: 'update.installed_version' } })
  const payload = { battery: 97, humidity: 48.31, linkquality: 123, temperature: 21.45, voltage: 2995, contact: false, state: 'ON', power_on_behavior: null, update: { state: 'idle', installed_version: 587 } }
  t.same(m.map(bytes(JSON.stringify(payload))), {
    ok: true,
    value: { kind: 'numbers', numbers: { battery: 97, humidity: 48.31, linkquality: 123, temperature: 21.45, voltage: 2995, contact: 0, 'update.installed_version': 587 } },
    tags: { state: 'ON', fw: '587' }
  })
})

t.test('json with a path: a Tasmota SENSOR message, its ENERGY part or one number of it', async t => {
  const tasmota = JSON.stringify({ Time: '2026-12-07T10:00:00', ENERGY: { TotalStartTime: '2026-01-01T00:00:00', Total: 12.345, Yesterday: 0.5, Today: 0.25, Power: 45, ApparentPower: 50, ReactivePower: 21, Factor: 0.9, Voltage: 231, Current: 0.196 } })
  t.same(mapping({ filter: 'tele/{device}/SENSOR', stream: 'energy', path: 'ENERGY' }).map(bytes(tasmota)), {
    ok: true,
    value: { kind: 'numbers', numbers: { Total: 12.345, Yesterday: 0.5, Today: 0.25, Power: 45, ApparentPower: 50, ReactivePower: 21, Factor: 0.9, Voltage: 231, Current: 0.196 } }
  })
  t.same(mapping({ filter: 'tele/{device}/SENSOR', stream: 'power', path: 'ENERGY.Power' }).map(bytes(tasmota)), { ok: true, value: { kind: 'number', number: 45 } })
  t.same(mapping({ filter: 'x/{device}', stream: 's', path: 'a.1' }).map(bytes('{"a":[10,20]}')), { ok: true, value: { kind: 'number', number: 20 } }, 'array index')
  t.same(mapping({ filter: 'x/{device}', stream: 's', path: 'state' }).map(bytes('{"state":"ON"}')), { ok: true, value: { kind: 'text', text: 'ON' } })
  t.same(mapping({ filter: 'x/{device}', stream: 's' }).map(bytes('22.5')), { ok: true, value: { kind: 'number', number: 22.5 } }, 'a bare JSON number (ESPHome state)')
})

t.test('json: what cannot be a reading is refused with the reason', async t => {
  const m = mapping({ filter: 'x/{device}', stream: 's' })
  t.match(m.map(bytes('{"temperature": 21.5')), { ok: false, detail: /^payload is not JSON \(.+\): "\{\\"temperature\\": 21.5"$/ })
  t.match(m.map(Buffer.from([0x7b, 0xff, 0x7d])), { ok: false, detail: 'payload is not valid UTF-8, so not JSON' })
  t.match(m.map(bytes('null')), { ok: false, detail: "payload's value is null" })
  t.match(m.map(bytes('{"state":"ON","name":"x"}')), { ok: false, detail: "payload's object has no number or boolean" })
  t.match(mapping({ filter: 'x/{device}', stream: 's', path: 'ENERGY.Power' }).map(bytes('{"ENERGY":{}}')), { ok: false, detail: 'payload has nothing at path ENERGY.Power' })
  const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`n${i}`, i]))
  t.match(m.map(bytes(JSON.stringify(many))), { ok: false, detail: /more than 32 numbers: map a part of it with path/ })
  t.match(m.map(bytes(JSON.stringify({ a: Array.from({ length: 100_000 }, (_, i) => i) }))), { ok: false, detail: /more than 32 numbers/ }, 'flattening stops early')
  t.match(m.map(bytes('['.repeat(5000) + ']'.repeat(5000))), { ok: false }, 'deep nesting: refused, not a stack overflow')
})

t.test('number, text and raw payloads', async t => {
  const number = mapping({ filter: 'x/{device}', stream: 's', payload: 'number' })
  for (const [text, value] of [['21.5', 21.5], [' -3e2 ', -300], ['ON', 1], ['off', 0], ['true', 1], ['FALSE', 0]] as const) {
    t.same(number.map(bytes(text)), { ok: true, value: { kind: 'number', number: value } }, JSON.stringify(text))
  }
  for (const text of ['', 'abc', '1,5', 'NaN', 'Infinity', '1e999', '0x10']) t.match(number.map(bytes(text)), { ok: false, detail: /^payload is not a number/ }, JSON.stringify(text))
  t.same(mapping({ filter: 'x/{device}', stream: 's', payload: 'text' }).map(bytes('Online')), { ok: true, value: { kind: 'text', text: 'Online' } })
  t.match(mapping({ filter: 'x/{device}', stream: 's', payload: 'text' }).map(Buffer.from([0xc3])), { ok: false, detail: 'payload is not valid UTF-8 text' })
  const input = Buffer.from([0, 1, 2, 255])
  const raw = mapping({ filter: 'x/{device}', stream: 's', payload: 'raw' }).map(input)
  t.same(raw, { ok: true, value: { kind: 'raw', raw: Uint8Array.from([0, 1, 2, 255]) } })
  input[0] = 9
  t.equal(raw.ok && raw.value.kind === 'raw' ? raw.value.raw[0] : -1, 0, 'raw is a copy, not a view of the socket buffer')
})

t.test('configuration: each problem of a topic mapping is named', async t => {
  const check = (topic: string): string => {
    try {
      parseConfigText(`ingest:\n  mqtt:\n    - url: mqtt://127.0.0.1\n      topics:\n        - ${topic}\n`, 'c.yaml')
      return 'ok'
    } catch (err) {
      return (err as Error).message
    }
  }
  t.equal(check('{ filter: "zigbee2mqtt/{device}", stream: z }'), 'ok')
  t.match(check('{ filter: "zigbee2mqtt/+" }'), /device: uses \{device\}, which the filter "zigbee2mqtt\/\+" does not capture: set device/)
  t.match(check('{ filter: "zigbee2mqtt/{device}" }'), /stream: uses \{stream\}, which the filter .* does not capture: set stream/)
  t.match(check('{ filter: "a/#/b", device: d, stream: s }'), /"#" must be the last level/)
  t.match(check('{ filter: "a/x{device}", stream: s }'), /must be a whole level/)
  t.match(check('{ filter: "a/{d}/{d}", device: "{d}", stream: s }'), /\{d\} appears twice/)
  t.match(check('{ filter: "a/{device}", stream: s, payload: text, path: x }'), /path: applies to payload json only, not text/)
  t.match(check('{ filter: "a/{device}", stream: s, qos: 2 }'), /qos/)
  try {
    parseConfigText('ingest:\n  mqtt:\n    - url: http://x\n      topics: [{ filter: "a/{device}", stream: s }]\n', 'c.yaml')
    t.fail('http:// accepted')
  } catch (err) {
    t.match((err as Error).message, /must be mqtt:\/\/HOST\[:PORT\] or mqtts:\/\/HOST\[:PORT\]/)
  }
})
