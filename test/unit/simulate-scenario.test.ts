/**
 * Simulation scenarios: the committed files load and still hold when shortened for CI, the
 * documented example normalises as described, every validation rule names the file and the
 * field, and the seeded PRNG is deterministic and picks by weight.
 */
import t from 'tap'
import { SCENARIO_DIR, ScenarioError, groupRatePerSecond, isSourceGroup, loadScenario, parseScenario, scaleScenario, scenarioNames, type Scenario } from '../../simulate/scenario.js'
import { pick, seededRandom } from '../../simulate/random.js'

const EXAMPLE = `
name: default
description: Steady traffic, a 10 s outage.
duration: 40s
seed: 1
store:
  capacity: 1MiB
uplink:
  pubackTimeout: 3s
devices:
  - id: plc-{n}
    count: 2
    transport: tcp
    acks: true
    rate: 40
    priorities: { critical: 1, high: 2, normal: 5 }
    streams: [alarm, telemetry]
    payloadBytes: 64
  - id: sensor-{n}
    count: 3
    transport: udp
    rate: 25
    priorities: { low: 7, normal: 3 }
  - id: babbler
    transport: udp
    rate: 1500
    rateLimit: 100
    priorities: { low: 1 }
timeline:
  - { at: 19s, link: blackhole, for: 6s }
  - { at: 6s, link: outage, for: 10s }
  - { at: 27s, link: throttle, for: 6s, bytesPerSecond: 20000 }
  - { at: 34s, link: latency, for: 4s, ms: 150 }
  - { at: 15s, action: power-cut, down: 1s }
  - { at: 12s, action: broker-restart, down: 3s }
`

t.test('every committed scenario loads, and still validates scaled by 0.1', async t => {
  const names = scenarioNames()
  t.same(names, ['babbling-device', 'broker-restart', 'default', 'flaky-cellular', 'long-outage', 'power-cut'])
  for (const name of names) {
    const s = await loadScenario(name)
    t.equal(s.name, name, `${name}: name matches the file`)
    t.match(s.source, /simulate[\\/]scenarios[\\/].+\.yaml$/)
    t.ok(s.description.length > 0, `${name}: has a description`)
    const small = scaleScenario(s, 0.1)
    t.equal(small.durationMs, Math.round(s.durationMs * 0.1), `${name}: duration scaled`)
    t.same(small.links.map(l => [l.kind, l.atMs, l.forMs, l.upMs, l.downMs, l.latencyMs, l.bytesPerSecond]),
      s.links.map(l => [l.kind, l.atMs / 10, l.forMs / 10, l.upMs === undefined ? undefined : l.upMs / 10,
        l.downMs === undefined ? undefined : l.downMs / 10, l.latencyMs, l.bytesPerSecond]), `${name}: link times scaled, latency and rate kept`)
    t.same(small.actions, s.actions.map(a => ({ ...a, atMs: a.atMs / 10, downMs: a.downMs / 10 })), `${name}: action times scaled`)
    t.same(small.devices, s.devices, `${name}: devices unchanged`)
    t.same([small.storeCapacityBytes, small.seed, small.uplink], [s.storeCapacityBytes, s.seed, s.uplink])
    // Scaled back to text with whole milliseconds, it parses to the same thing.
    const again = parseScenario(JSON.stringify(toFile(small)), 'scaled')
    t.same({ ...again, source: small.source }, small, `${name}: the scaled scenario passes the same validation`)
  }
  // Loads by path too, relative or absolute.
  t.equal((await loadScenario(`${SCENARIO_DIR}/power-cut.yaml`)).name, 'power-cut')
  await t.rejects(loadScenario('no-such-scenario'), { name: 'ScenarioError', message: /no-such-scenario: no such scenario; the scenarios are babbling-device, broker-restart/ })
  await t.rejects(loadScenario('/nonexistent/x.yaml'), { name: 'ScenarioError', message: /\/nonexistent\/x\.yaml: cannot read the file \(ENOENT\)/ })
})

t.test('the committed scenarios keep the properties their comments promise', async t => {
  const s = new Map<string, Scenario>()
  for (const name of scenarioNames()) s.set(name, await loadScenario(name))
  const power = s.get('power-cut') as Scenario
  t.ok(power.devices.every(d => (d.transport === 'tcp' && d.acks) || d.transport === 'mqtt'), 'power-cut: acknowledged devices only (tcp with acks, mqtt at QoS 1)')
  t.same(power.actions.map(a => [a.kind, a.downMs]), [['power-cut', 1000]])
  const rate = (x: Scenario): number => x.devices.reduce((sum, d) => sum + d.ids.length * Math.min(groupRatePerSecond(d), d.rateLimitPerSecond ?? Infinity), 0)
  const def = s.get('default') as Scenario
  t.same(def.devices.filter(isSourceGroup).map(g => [g.transport, g.ids, g.priority, groupRatePerSecond(g)]),
    [['mqtt', ['tasmota-1'], 'normal', 5], ['modbus', ['meter-1'], 'high', 2]], 'default: one Tasmota-like plug and one Modbus meter')
  const outage = def.links.find(l => l.kind === 'outage') as { forMs: number }
  t.ok(rate(def) * outage.forMs / 1000 * 60 > 1.2 * def.storeCapacityBytes, 'default: an outage overflows the store even at 60 bytes an event')
  const babbler = (s.get('babbling-device') as Scenario).devices.find(d => d.rateLimitPerSecond !== undefined) as { ratePerSecond: number, rateLimitPerSecond: number }
  t.equal(babbler.ratePerSecond / babbler.rateLimitPerSecond, 20)
  t.same((s.get('broker-restart') as Scenario).actions.map(a => a.kind), ['broker-restart'])
  t.same((s.get('flaky-cellular') as Scenario).links.map(l => l.kind).sort(), ['flapping', 'latency', 'throttle'])
})

t.test('the documented example normalises: ms, bytes, ids expanded, defaults, sorted timeline', async t => {
  const s = parseScenario(EXAMPLE, 'example.yaml')
  t.strictSame(s, {
    name: 'default',
    description: 'Steady traffic, a 10 s outage.',
    durationMs: 40_000,
    seed: 1,
    storeCapacityBytes: 1024 * 1024,
    uplink: { pubackTimeoutMs: 3000 },
    devices: [
      { idPattern: 'plc-{n}', ids: ['plc-1', 'plc-2'], transport: 'tcp', acks: true, ratePerSecond: 40, priorities: [['normal', 5], ['high', 2], ['critical', 1]], streams: ['alarm', 'telemetry'], payloadBytes: 64 },
      { idPattern: 'sensor-{n}', ids: ['sensor-1', 'sensor-2', 'sensor-3'], transport: 'udp', acks: false, ratePerSecond: 25, priorities: [['low', 7], ['normal', 3]], streams: ['telemetry'], payloadBytes: 48 },
      { idPattern: 'babbler', ids: ['babbler'], transport: 'udp', acks: false, ratePerSecond: 1500, priorities: [['low', 1]], streams: ['telemetry'], payloadBytes: 48, rateLimitPerSecond: 100 },
    ],
    links: [
      { kind: 'outage', atMs: 6000, forMs: 10_000 },
      { kind: 'blackhole', atMs: 19_000, forMs: 6000 },
      { kind: 'throttle', atMs: 27_000, forMs: 6000, bytesPerSecond: 20_000 },
      { kind: 'latency', atMs: 34_000, forMs: 4000, latencyMs: 150 },
    ],
    actions: [
      { kind: 'broker-restart', atMs: 12_000, downMs: 3000 },
      { kind: 'power-cut', atMs: 15_000, downMs: 1000 },
    ],
    source: 'example.yaml',
  })
  t.same(parseScenario(JSON.stringify(toFile(s)), 'example.json'), { ...s, source: 'example.json' }, 'JSON text with numbers of ms and bytes gives the same')
  const minimal = parseScenario('name: m\nduration: 1500ms\nstore: { capacity: 65536 }\ndevices: [{ id: d, transport: tcp, rate: 0.5, priorities: { low: 1, high: 0 } }]', 'm.yaml')
  const first = minimal.devices[0]
  t.ok(first !== undefined && !isSourceGroup(first))
  if (first !== undefined && !isSourceGroup(first)) {
    t.strictSame([minimal.seed, minimal.description, minimal.uplink, minimal.links, minimal.actions, first.acks, first.priorities, first.streams, first.payloadBytes, minimal.durationMs],
      [1, '', {}, [], [], true, [['low', 1]], ['telemetry'], 48, 1500], 'defaults; zero weights dropped')
  }
  t.equal(parseScenario('name: m\nduration: 2m\nstore: { capacity: 2MiB }\ndevices: [{ id: "a:b.c_d-{n}", count: 1, transport: udp, acks: false, rate: 1, priorities: { low: 1 } }]', 'm.yaml').devices[0]?.ids[0], 'a:b.c_d-1')
})

t.test('mqtt and modbus devices: one priority, a rate or a poll interval, ids expanded', async t => {
  const s = parseScenario(`
name: sources
duration: 20s
store: { capacity: 256KiB }
devices:
  - { id: "plug-{n}", count: 2, transport: mqtt, rate: 5, priority: normal }
  - { id: "meter-{n}", count: 2, transport: modbus, interval: 500ms, priority: high, rateLimit: 50 }
  - { id: inverter, transport: modbus, rate: 4, priority: critical }
`, 'sources.yaml')
  t.strictSame(s.devices, [
    { transport: 'mqtt', idPattern: 'plug-{n}', ids: ['plug-1', 'plug-2'], ratePerSecond: 5, priority: 'normal' },
    { transport: 'modbus', idPattern: 'meter-{n}', ids: ['meter-1', 'meter-2'], pollIntervalMs: 500, priority: 'high', rateLimitPerSecond: 50 },
    { transport: 'modbus', idPattern: 'inverter', ids: ['inverter'], pollIntervalMs: 250, priority: 'critical' },
  ])
  t.same(s.devices.map(groupRatePerSecond), [5, 2, 4])
  t.same(scaleScenario(s, 0.5).devices, s.devices, 'rates and poll intervals are not scaled')
  t.same(parseScenario(JSON.stringify(toFile(s)), 'sources.json'), { ...s, source: 'sources.json' }, 'round-trips through the file form')
})

t.test('each rule rejects a bad input, naming the file and the field path', async t => {
  const base = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    name: 'x',
    duration: '40s',
    store: { capacity: '256KiB' },
    devices: [{ id: 'plc-{n}', count: 2, transport: 'tcp', rate: 10, priorities: { normal: 1 } }],
    timeline: [{ at: '5s', link: 'outage', for: '5s' }],
    ...over,
  })
  const device = (over: Record<string, unknown>): Record<string, unknown> => ({ id: 'd', transport: 'udp', rate: 10, priorities: { low: 1 }, ...over })
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['unknown top-level key', base({ durration: '1s' }), /^f\.yaml:1: durration: unknown key; the keys here are name, description, duration/],
    ['unknown device key', base({ devices: [device({ rte: 5 })] }), /^f\.yaml:1: devices\[0\]\.rte: unknown key; the keys here are id, count, transport/],
    ['unknown priority', base({ devices: [device({ priorities: { urgent: 1 } })] }), /^f\.yaml:1: devices\[0\]\.priorities\.urgent: unknown key; the keys here are low, normal, high, critical/],
    ['unknown timeline key', base({ timeline: [{ at: '1s', link: 'outage', for: '1s', mode: 'x' }] }), /^f\.yaml:1: timeline\[0\]\.mode: unknown key/],
    ['overlapping link phases', base({ timeline: [{ at: '10s', link: 'blackhole', for: '5s' }, { at: '5s', link: 'outage', for: '6s' }] }),
      /^f\.yaml:1: timeline\[0\]: blackhole 10s-15s overlaps timeline\[1\] \(outage 5s-11s\); link phases must not overlap/],
    ['overlapping power cuts', base({ timeline: [{ at: '10s', action: 'power-cut', down: '5s' }, { at: '12s', action: 'power-cut', down: '1s' }] }), /^f\.yaml:1: timeline\[1\]: power-cut 12s-13s overlaps timeline\[0\]/],
    ['phase starting past the end', base({ timeline: [{ at: '40s', link: 'outage', for: '1s' }] }), /^f\.yaml:1: timeline\[0\]\.at: 40s is not before the end of the run \(duration 40s\)/],
    ['phase ending past the end', base({ timeline: [{ at: '35s', link: 'outage', for: '10s' }] }), /^f\.yaml:1: timeline\[0\]\.for: ends at 45s, after the end of the run \(40s\)/],
    ['action ending past the end', base({ timeline: [{ at: '39s', action: 'broker-restart', down: '2s' }] }), /^f\.yaml:1: timeline\[0\]\.down: ends at 41s/],
    ['udp with acks: true', base({ devices: [device({ acks: true })] }), /^f\.yaml:1: devices\[0\]\.acks: udp devices get no acks/],
    ['duplicate ids across groups', base({ devices: [device({ id: 'plc-{n}', count: 3 }), device({ id: 'plc-2' })] }), /^f\.yaml:1: devices\[1\]\.id: device id "plc-2" is also made by devices\[0\]/],
    ['pattern without {n}', base({ devices: [device({ id: 'plc', count: 2 })] }), /^f\.yaml:1: devices\[0\]\.id: must contain \{n\} when count is 2/],
    ['invalid device id', base({ devices: [device({ id: 'a b' })] }), /^f\.yaml:1: devices\[0\]\.id: makes "a b", which is not a device id/],
    ['device id too long', base({ devices: [device({ id: 'x'.repeat(64) + '{n}', count: 2 })] }), /^f\.yaml:1: devices\[0\]\.id: makes "x{64}1"/],
    ['bad duration string', base({ timeline: [{ at: '1s', link: 'outage', for: '10 secs' }] }), /^f\.yaml:1: timeline\[0\]\.for: expected a duration such as 5s, 250ms or 1500 \(milliseconds\), got "10 secs" \(unknown unit "secs"/],
    ['fractional ms', base({ duration: '1.0005s' }), /^f\.yaml:1: duration: expected a duration .*, got "1\.0005s" \(not a whole number of milliseconds\)/],
    ['zero duration', base({ duration: 0 }), /^f\.yaml:1: duration: must be more than 0/],
    ['missing duration', base({ duration: undefined }), /^f\.yaml:1: duration: expected a duration .*, got nothing/],
    ['throttle without bytesPerSecond', base({ timeline: [{ at: '1s', link: 'throttle', for: '1s' }] }), /^f\.yaml:1: timeline\[0\]\.bytesPerSecond: is required for link: throttle/],
    ['throttle too slow', base({ timeline: [{ at: '1s', link: 'throttle', for: '1s', bytesPerSecond: 999 }] }), /^f\.yaml:1: timeline\[0\]\.bytesPerSecond: must be at least 1000/],
    ['latency without ms', base({ timeline: [{ at: '1s', link: 'latency', for: '1s' }] }), /^f\.yaml:1: timeline\[0\]\.ms: is required for link: latency/],
    ['latency too long', base({ timeline: [{ at: '1s', link: 'latency', for: '1s', ms: 10_001 }] }), /^f\.yaml:1: timeline\[0\]\.ms: must be at most 10000/],
    ['flapping without up', base({ timeline: [{ at: '1s', link: 'flapping', for: '5s', down: '1s' }] }), /^f\.yaml:1: timeline\[0\]\.up: is required for link: flapping/],
    ['ms on an outage', base({ timeline: [{ at: '1s', link: 'outage', for: '5s', ms: 5 }] }), /^f\.yaml:1: timeline\[0\]\.ms: only for link: latency/],
    ['for on an action', base({ timeline: [{ at: '1s', action: 'power-cut', for: '5s', down: '1s' }] }), /^f\.yaml:1: timeline\[0\]\.for: only for link phases/],
    ['link and action', base({ timeline: [{ at: '1s', link: 'outage', action: 'power-cut', for: '1s' }] }), /^f\.yaml:1: timeline\[0\]: has both link and action/],
    ['unknown link kind', base({ timeline: [{ at: '1s', link: 'storm', for: '1s' }] }), /^f\.yaml:1: timeline\[0\]\.link: must be one of "outage", "blackhole"/],
    ['empty name', base({ name: '' }), /^f\.yaml:1: name: must not be empty/],
    ['no devices', base({ devices: [] }), /^f\.yaml:1: devices: needs at least one device group/],
    ['count 0', base({ devices: [device({ count: 0 })] }), /^f\.yaml:1: devices\[0\]\.count: must be at least 1/],
    ['rate 0', base({ devices: [device({ rate: 0 })] }), /^f\.yaml:1: devices\[0\]\.rate: must be more than 0/],
    ['rate too high', base({ devices: [device({ rate: 100_001 })] }), /^f\.yaml:1: devices\[0\]\.rate: must be at most 100000/],
    ['all weights 0', base({ devices: [device({ priorities: { low: 0 } })] }), /^f\.yaml:1: devices\[0\]\.priorities: needs at least one weight above 0/],
    ['bad transport', base({ devices: [device({ transport: 'serial' })] }), /^f\.yaml:1: devices\[0\]\.transport: must be one of "tcp", "udp", "mqtt", "modbus"/],
    ['payload too big', base({ devices: [device({ payloadBytes: 4097 })] }), /^f\.yaml:1: devices\[0\]\.payloadBytes: must be at most 4096/],
    ['rateLimit 0', base({ devices: [device({ rateLimit: 0 })] }), /^f\.yaml:1: devices\[0\]\.rateLimit: must be more than 0/],
    ['seed not an integer', base({ seed: 1.5 }), /^f\.yaml:1: seed: must be an integer/],
    ['store too small', base({ store: { capacity: '63KiB' } }), /^f\.yaml:1: store\.capacity: must be at least 64KiB/],
    ['bad size', base({ store: { capacity: '1 mb' } }), /^f\.yaml:1: store\.capacity: expected a size such as 64MiB or 1048576, got "1 mb" \(units are case-sensitive: did you mean "MB"\?\)/],
    ['puback timeout too short', base({ uplink: { pubackTimeout: '50ms' } }), /^f\.yaml:1: uplink\.pubackTimeout: must be at least 100ms/],
  ]
  const mqtt = (over: Record<string, unknown>): Record<string, unknown> => ({ id: 'plug', transport: 'mqtt', rate: 5, priority: 'normal', ...over })
  const modbus = (over: Record<string, unknown>): Record<string, unknown> => ({ id: 'meter', transport: 'modbus', interval: '500ms', priority: 'high', ...over })
  const sourceCases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['tcp without rate', base({ devices: [device({ transport: 'tcp', rate: undefined })] }), /^f\.yaml:1: devices\[0\]\.rate: is required for transport tcp/],
    ['udp without priorities', base({ devices: [device({ priorities: undefined })] }), /^f\.yaml:1: devices\[0\]\.priorities: is required for transport udp/],
    ['priority on a udp device', base({ devices: [device({ priority: 'low' })] }), /^f\.yaml:1: devices\[0\]\.priority: only for mqtt and modbus devices; tcp and udp devices pick each event's priority by weight/],
    ['mqtt without priority', base({ devices: [mqtt({ priority: undefined })] }), /^f\.yaml:1: devices\[0\]\.priority: is required for transport mqtt: its events get one priority, from an ingest rule/],
    ['mqtt with priorities', base({ devices: [mqtt({ priorities: { low: 1 } })] }), /^f\.yaml:1: devices\[0\]\.priorities: only for tcp and udp devices; an mqtt device sends no priority/],
    ['mqtt without rate', base({ devices: [mqtt({ rate: undefined })] }), /^f\.yaml:1: devices\[0\]\.rate: is required for transport mqtt \(messages\/s/],
    ['mqtt rate too high', base({ devices: [mqtt({ rate: 1001 })] }), /^f\.yaml:1: devices\[0\]\.rate: must be at most 1000 messages\/s for transport mqtt/],
    ['mqtt with acks', base({ devices: [mqtt({ acks: true })] }), /^f\.yaml:1: devices\[0\]\.acks: only for tcp devices \(transport mqtt publishes at QoS 1/],
    ['mqtt with an interval', base({ devices: [mqtt({ interval: '1s' })] }), /^f\.yaml:1: devices\[0\]\.interval: only for modbus devices/],
    ['modbus with streams', base({ devices: [modbus({ streams: ['x'] })] }), /^f\.yaml:1: devices\[0\]\.streams: only for tcp and udp devices; a modbus device's events go to stream "energy"/],
    ['modbus with payloadBytes', base({ devices: [modbus({ payloadBytes: 8 })] }), /^f\.yaml:1: devices\[0\]\.payloadBytes: only for tcp and udp devices/],
    ['modbus with interval and rate', base({ devices: [modbus({ rate: 2 })] }), /^f\.yaml:1: devices\[0\]: has both interval and rate/],
    ['modbus with neither', base({ devices: [modbus({ interval: undefined })] }), /^f\.yaml:1: devices\[0\]: needs interval \(e\.g\. 500ms/],
    ['modbus interval too short', base({ devices: [modbus({ interval: '50ms' })] }), /^f\.yaml:1: devices\[0\]\.interval: must be at least 100ms/],
    ['modbus interval too long', base({ devices: [modbus({ interval: '2d' })] }), /^f\.yaml:1: devices\[0\]\.interval: makes a poll interval over 1d, the forwarder's longest/],
    ['modbus rate too high', base({ devices: [modbus({ interval: undefined, rate: 20 })] }), /^f\.yaml:1: devices\[0\]\.rate: must be at most 10 polls\/s/],
    ['modbus unknown priority', base({ devices: [modbus({ priority: 'urgent' })] }), /^f\.yaml:1: devices\[0\]\.priority: must be one of "low", "normal", "high", "critical"/],
    ['more modbus devices than unit ids', base({ devices: [modbus({ id: 'm-{n}', count: 200 }), modbus({ id: 'n-{n}', count: 48 })] }), /^f\.yaml:1: devices\[1\]\.count: makes 248 modbus devices in all; one Modbus server has unit ids for 247/],
  ]
  for (const [what, input, message] of [...cases, ...sourceCases]) {
    t.throws(() => parseScenario(JSON.stringify(input), 'f.yaml'), { name: 'ScenarioError', source: 'f.yaml', message }, what)
  }
  t.equal(cases.length, 40)
  t.equal(sourceCases.length, 18)

  // YAML input: each problem names the line of the offending key, as a configuration error does.
  const yaml = 'name: x\nduration: 40s\nstore: { capacity: 256KiB }\ndevices:\n  - { id: d, transport: udp, acks: true, rate: 1, priorities: { low: 1 } }\ntimeline:\n  - { at: 1s, link: outage, for: 2s }\n  - { at: 2s, link: throttle, for: 1s, bytesPerSecond: 1000 }\n'
  const err = catchError(() => parseScenario(yaml, 'simulate/scenarios/x.yaml'))
  t.ok(err instanceof ScenarioError)
  t.equal(err.message, 'simulate/scenarios/x.yaml:5: devices[0].acks: udp devices get no acks; remove acks or set it to false\n' +
    'simulate/scenarios/x.yaml:8: timeline[1]: throttle 2s-3s overlaps timeline[0] (outage 1s-3s); link phases must not overlap')
  t.equal(err.problems.length, 2, 'every problem is reported, one per line')
  t.throws(() => parseScenario('name: x\n  bad: [', 'y.yaml'), { name: 'ScenarioError', message: /^y\.yaml: / }, 'a YAML syntax error names the file')
  t.throws(() => parseScenario('- a\n- b\n', 'z.yaml'), { name: 'ScenarioError', message: /^z\.yaml: must be a mapping/ })
  t.throws(() => parseScenario('name: x\nname: y\n', 'd.yaml'), { name: 'ScenarioError', message: /^d\.yaml: .*unique/i }, 'duplicate keys')
})

t.test('durations and sizes are read as in the configuration (src/config/units.ts)', async t => {
  const s = parseScenario(JSON.stringify({
    name: 'u', duration: '1.5m', store: { capacity: '1.5MB' },
    devices: [{ id: 'd', transport: 'tcp', rate: 1, priorities: { low: 1 } }],
    timeline: [{ at: 2500, link: 'outage', for: '0.5s' }],
  }), 'u.json')
  t.same([s.durationMs, s.storeCapacityBytes, s.links[0]?.atMs, s.links[0]?.forMs], [90_000, 1_500_000, 2500, 500])
})

t.test('scaleScenario: endpoints rounded together so phases never come to overlap; too small a factor throws', async t => {
  const s = parseScenario(JSON.stringify({
    name: 's', duration: 1000, store: { capacity: '64KiB' },
    devices: [{ id: 'd', transport: 'tcp', rate: 1, priorities: { low: 1 } }],
    timeline: [{ at: 3, link: 'outage', for: 3 }, { at: 6, link: 'blackhole', for: 3 }, { at: 10, link: 'flapping', for: 900, up: 3, down: 1 }, { at: 10, action: 'power-cut', down: 0 }],
  }), 's.json')
  const half = scaleScenario(s, 0.5)
  t.same(half.links.map(l => [l.atMs, l.forMs]), [[2, 1], [3, 2], [5, 450]])
  t.same([half.links[2]?.upMs, half.links[2]?.downMs], [2, 1], 'flapping up/down scaled, at least 1 ms')
  t.same(half.actions, [{ kind: 'power-cut', atMs: 5, downMs: 0 }], 'a zero down stays 0')
  t.equal(half.durationMs, 500)
  t.not(half.links, s.links, 'a new object; the original is untouched')
  t.equal(s.links[0]?.atMs, 3)
  t.throws(() => scaleScenario(s, 0.001), { name: 'ScenarioError', message: /^s\.json scaled by 0\.001: links\[\d\]: .*overlaps/ })
  t.throws(() => scaleScenario(s, 0), RangeError)
  t.throws(() => scaleScenario(s, Number.NaN), RangeError)
})

t.test('seededRandom: deterministic per seed, different across seeds, in [0, 1)', async t => {
  const take = (seed: number, n: number): number[] => { const r = seededRandom(seed); return Array.from({ length: n }, () => r()) }
  t.same(take(42, 100), take(42, 100), 'same seed, same sequence')
  t.not(take(1, 10).join(), take(2, 10).join(), 'different seeds differ')
  t.not(take(0, 10).join(), take(1, 10).join())
  const many = take(7, 100_000)
  t.ok(many.every(x => x >= 0 && x < 1), 'all in [0, 1)')
  const mean = many.reduce((a, b) => a + b, 0) / many.length
  t.ok(mean > 0.49 && mean < 0.51, `mean ${mean} near 0.5`)
  t.ok(new Set(many).size > 99_990, 'hardly any repeats')
  t.throws(() => seededRandom(1.5), RangeError)
})

t.test('pick: by weight, zero weights never, bad lists throw', async t => {
  const random = seededRandom(3)
  let first = 0
  for (let i = 0; i < 10_000; i++) if (pick(random, [['a', 1], ['b', 3]] as const) === 'a') first++
  t.ok(first / 10_000 > 0.22 && first / 10_000 < 0.28, `weights 1:3 picked the first ${first} times in 10000`)
  const seen = new Set<string>()
  for (let i = 0; i < 1000; i++) seen.add(pick(random, [['x', 0], ['y', 1], ['z', 0]]))
  t.same([...seen], ['y'], 'a zero weight is never picked')
  t.equal(pick(() => 0.9999999999999999, [['a', 1], ['b', 0.1], ['c', 0]]), 'b', 'the top of the range is the last positive weight')
  t.throws(() => pick(random, []), RangeError)
  t.throws(() => pick(random, [['a', 0], ['b', 0]]), RangeError)
  t.throws(() => pick(random, [['a', -1], ['b', 2]]), RangeError)
})

/** A Scenario back to file form, with ms and bytes as numbers. */
function toFile (s: Scenario): Record<string, unknown> {
  return {
    name: s.name,
    description: s.description,
    duration: s.durationMs,
    seed: s.seed,
    store: { capacity: s.storeCapacityBytes },
    uplink: s.uplink.pubackTimeoutMs === undefined ? {} : { pubackTimeout: s.uplink.pubackTimeoutMs },
    devices: s.devices.map(d => ({
      id: d.idPattern,
      count: d.ids.length,
      transport: d.transport,
      ...(d.transport === 'mqtt'
        ? { rate: d.ratePerSecond, priority: d.priority }
        : d.transport === 'modbus'
          ? { interval: d.pollIntervalMs, priority: d.priority }
          : { acks: d.acks, rate: d.ratePerSecond, priorities: Object.fromEntries(d.priorities), streams: d.streams, payloadBytes: d.payloadBytes }),
      ...(d.rateLimitPerSecond === undefined ? {} : { rateLimit: d.rateLimitPerSecond }),
    })),
    timeline: [
      ...s.links.map(l => ({ at: l.atMs, link: l.kind, for: l.forMs, bytesPerSecond: l.bytesPerSecond, ms: l.latencyMs, up: l.upMs, down: l.downMs })),
      ...s.actions.map(a => ({ at: a.atMs, action: a.kind, down: a.downMs })),
    ],
  }
}

function catchError (fn: () => unknown): Error & { problems: readonly string[] } {
  try {
    fn()
  } catch (err) {
    return err as Error & { problems: readonly string[] }
  }
  throw new Error('did not throw')
}
