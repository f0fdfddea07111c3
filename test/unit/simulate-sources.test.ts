/**
 * The simulation's source devices (simulate/source-devices.ts, tasmota-device.ts,
 * modbus-meter.ts, local-broker.ts), with the forwarder's own parts standing in for the
 * forwarder: the configuration they write passes the gateway's config schema; a Tasmota message
 * mapped by the forwarder's TopicMapping, and a meter's answer decoded by its Modbus register
 * decoding, give back the message or poll number; the local broker keeps what a disconnected
 * forwarder has not acknowledged; the polls answered around a power cut are the ones in flight.
 * Loopback only, every wait bounded, everything closed in t.teardown.
 */
import modbusSerial from 'modbus-serial'
import { connect, type MqttClient } from 'mqtt'
import t, { type Test } from 'tap'
import { parseConfigText } from '../../src/config/index.js'
import { planReads } from '../../src/ingest/sources/modbus/plan.js'
import { registerValue, resolveRegisters } from '../../src/ingest/sources/modbus/decode.js'
import { TopicMapping } from '../../src/ingest/sources/mqtt/topic-map.js'
import type { EventValue } from '../../src/types.js'
import { METER_REGISTERS, pollNumberOf, startModbusMeter } from '../../simulate/modbus-meter.js'
import { seededRandom } from '../../simulate/random.js'
import { LOCAL_CLIENT_ID, startSourceDevices, type SourceDevices } from '../../simulate/source-devices.js'
import { tasmotaDeviceOf, tasmotaTopic } from '../../simulate/tasmota-device.js'
import { waitFor } from '../helpers/wait.js'

// CommonJS: module.exports is the client class (TypeScript sees it as the module's `default`).
const ModbusRTU = modbusSerial as unknown as typeof modbusSerial.default

/** The forwarder's configuration with the sources' ingest section, as simulation.ts writes it, parsed by the gateway's loader. */
function forwarderConfig (sources: SourceDevices): ReturnType<typeof parseConfigText> {
  const config = {
    gateway: { id: 'sim-gw' },
    store: { path: '/tmp/unused', capacity: 65536 },
    ingest: sources.ingestConfig(),
    uplink: { url: 'mqtts://127.0.0.1:1' },
  }
  return parseConfigText(JSON.stringify(config), 'sim.json')
}

async function modbusClient (t: Test, port: number): Promise<InstanceType<typeof ModbusRTU>> {
  const client = new ModbusRTU()
  await client.connectTCP('127.0.0.1', { port })
  client.setTimeout(2000)
  t.teardown(() => new Promise<void>(resolve => { client.close(() => { resolve() }) }))
  return client
}

/** The stand-in forwarder on the local broker: a persistent session subscribed at QoS 1, as ingest.mqtt's (mqtt.js acknowledges on receipt). */
async function subscriber (t: Test, url: string, onMessage: (topic: string, payload: Buffer) => void = () => {}): Promise<MqttClient> {
  const client = connect(url, { clientId: LOCAL_CLIENT_ID, protocolVersion: 4, clean: false, reconnectPeriod: 0 })
  client.on('message', onMessage)
  client.on('error', () => {})
  t.teardown(() => { client.end(true) })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('no connection to the local broker within 5 s')) }, 5000)
    client.once('connect', () => {
      client.subscribe('tele/+/SENSOR', { qos: 1 }, (err) => { clearTimeout(timer); if (err === null) resolve(); else reject(err) })
    })
  })
  return client
}

t.test('Modbus meter: the forwarder\'s decoding of its registers, poll numbers per unit, exceptions once it stops answering', async t => {
  const meter = await startModbusMeter({ units: [{ deviceId: 'meter-1', unitId: 1 }, { deviceId: 'meter-2', unitId: 2 }], random: seededRandom(4) })
  t.teardown(() => meter.close())
  const client = await modbusClient(t, meter.port)
  const device = { id: 'meter-1', unitId: 1, interval: 500, stream: 'energy', wordOrder: 'big' as const, registers: METER_REGISTERS.map(r => ({ table: 'holding' as const, scale: 1, offset: 0, ...r })) }
  const specs = resolveRegisters(device)
  const plan = planReads(specs)
  t.same(plan.map(p => [p.table, p.address, p.count]), [['holding', 0, 12]], 'one request a poll')
  const poll = async (unitId: number): Promise<Record<string, number>> => {
    client.setID(unitId)
    const { data } = await client.readHoldingRegisters(0, 12)
    return Object.fromEntries((plan[0]?.fields ?? []).map(f => [f.register.name, registerValue(f.register, data, f.index)]))
  }
  const first = await poll(1)
  const second = await poll(1)
  const other = await poll(2)
  t.same([pollNumberOf(first), pollNumberOf(second), pollNumberOf(other)], [1, 2, 1], 'each unit counts its own answered polls')
  t.equal(first.energy_kwh, first.energy_kwh_ws, 'the counter reads the same in both word orders')
  t.ok((second.energy_kwh ?? 0) >= (first.energy_kwh ?? 0), 'the energy counter never goes back')
  t.ok(Math.abs((first.voltage ?? 0) - 230) <= 3.01 && (first.power ?? 0) >= 50 && Math.abs((first.current ?? 0) - (first.power ?? 0) / (first.voltage ?? 1)) < 0.01, 'plausible readings')
  t.same([meter.answered('meter-1'), meter.answered('meter-2'), meter.answered('nobody')], [2, 1, 0])
  t.ok((meter.answeredAtMs('meter-1', 2) ?? 0) >= (meter.answeredAtMs('meter-1', 1) ?? Infinity))
  const failure = async (): Promise<unknown> => await client.readHoldingRegisters(0, 12).then(() => 'answered', (err: unknown) => err)
  client.setID(9)
  t.match(await failure(), { modbusCode: 11 }, 'an unknown unit: gateway target failed to respond')
  meter.stopAnswering()
  client.setID(1)
  t.match(await failure(), { modbusCode: 6 }, 'after the sending period: server device busy')
  t.equal(meter.answered('meter-1'), 2, 'a refused poll is not counted')
  t.equal(pollNumberOf({ polls: 0 }), undefined)
  t.equal(pollNumberOf({ voltage: 230 }), undefined)
})

t.test('source devices: the forwarder configuration validates; messages and polls carry their numbers; the local broker keeps what the forwarder has not taken; a power cut\'s polls in flight', async t => {
  const sources = await startSourceDevices({
    groups: [
      { transport: 'mqtt', idPattern: 'plug-{n}', ids: ['plug-1', 'plug-2'], ratePerSecond: 50, priority: 'normal' },
      { transport: 'modbus', idPattern: 'meter-1', ids: ['meter-1'], pollIntervalMs: 500, priority: 'high' },
    ],
    random: seededRandom(7),
  })
  t.teardown(() => sources.close())
  const config = forwarderConfig(sources)
  t.same(config.ingest.rules.map(r => [r.device, r.priority]), [['plug-1', 'normal'], ['plug-2', 'normal'], ['meter-1', 'high']], 'one priority rule per device')
  const mqtt = config.ingest.mqtt[0]
  t.same([mqtt?.mqttVersion, mqtt?.clientId, mqtt?.topics.map(x => [x.filter, x.stream, x.path])], ['3.1.1', LOCAL_CLIENT_ID, [['tele/{device}/SENSOR', 'energy', 'ENERGY']]])
  const modbus = config.ingest.modbus[0]
  t.same(modbus?.devices.map(d => [d.id, d.unitId, d.interval]), [['meter-1', 1, 500]])
  t.same(sources.ids, ['plug-1', 'plug-2', 'meter-1'])
  t.ok(sources.isSource('plug-2') && !sources.isSource('plc-1'))

  // The forwarder subscribes, then goes away (a power cut): its session keeps the subscription.
  const url = mqtt?.url ?? ''
  const early = await subscriber(t, url)
  await sources.forwarderReady(5000)
  await new Promise<void>(resolve => { early.end(false, {}, () => { resolve() }) })
  sources.startSending()
  await waitFor('messages acknowledged by the local broker', () => sources.sentCount() >= 20, 5000)
  t.ok(sources.pendingForForwarder() > 0, 'acknowledged by the broker, not yet taken by the forwarder')

  // Back: the broker hands over what it kept, the stand-in acknowledges it, nothing is pending.
  const mapping = new TopicMapping(mqtt?.topics[0] as ConstructorParameters<typeof TopicMapping>[0])
  const received: string[] = []
  await subscriber(t, url, (topic, payload) => {
    const captures = mapping.match(topic)
    const mapped = mapping.map(payload)
    const n = captures === undefined || !mapped.ok ? undefined : sources.numberOf(mapping.deviceId(captures), mapped.value)?.number
    received.push(`${tasmotaDeviceOf(topic) ?? '?'} ${n ?? '?'}`)
  })
  sources.stopSending()
  await sources.settle(5000)
  await waitFor('the forwarder to have taken every message', () => sources.pendingForForwarder() === 0, 5000)
  const ledgers = sources.ledgers()
  const sentMessages = (ledgers.get('plug-1')?.sent.length ?? 0) + (ledgers.get('plug-2')?.sent.length ?? 0)
  const expected = ['plug-1', 'plug-2'].flatMap(id => (ledgers.get(id)?.sent ?? []).map(s => `${id} ${s.seq}`))
  t.same([...received].sort(), expected.sort(), 'every message the broker acknowledged reached the forwarder once, its number read from the mapped event')
  t.ok(sentMessages >= 20)
  t.same(ledgers.get('plug-1')?.sent.map(s => s.seq), Array.from({ length: ledgers.get('plug-1')?.sent.length ?? 0 }, (_, i) => i + 1), 'numbered 1, 2, 3, ...')
  t.ok(ledgers.get('plug-1')?.sent.every(s => s.priority === 'normal'))
  t.equal(tasmotaTopic('plug-1'), 'tele/plug-1/SENSOR')
  t.equal(sources.numberOf('plug-1', { kind: 'numbers', numbers: { Total: 1 } }), undefined, 'a Total that is no message of the plug')
  t.equal(sources.numberOf('plug-1', { kind: 'text', text: 'x' } satisfies EventValue), undefined)
})

t.test('source devices: the polls answered from just before a power cut to the restart are the ones in flight', async t => {
  const sources = await startSourceDevices({ groups: [{ transport: 'modbus', idPattern: 'meter-1', ids: ['meter-1'], pollIntervalMs: 500, priority: 'high' }], random: seededRandom(1) })
  t.teardown(() => sources.close())
  const port = forwarderConfig(sources).ingest.modbus[0]?.tcp?.port ?? 0
  const client = await modbusClient(t, port)
  client.setID(1)
  for (let i = 0; i < 3; i++) await client.readHoldingRegisters(0, 12)
  await sources.forwarderReady(1000)
  sources.powerCut.before()
  // Poll 3 may not be on disk yet; 4 and 5 go to a forwarder already dead.
  for (let i = 0; i < 2; i++) await client.readHoldingRegisters(0, 12)
  await sources.powerCut.after()
  await client.readHoldingRegisters(0, 12)
  sources.stopSending()
  const ledger = sources.ledgers().get('meter-1')
  t.same(ledger?.sent.map(s => s.seq), [1, 2, 3, 4, 5, 6])
  t.same([...(ledger?.inFlightAtCut ?? [])], [3, 4, 5])
  t.equal(ledger?.transport, 'modbus')
  const value: EventValue = { kind: 'numbers', numbers: { voltage: 230, polls: 6 } }
  t.same(sources.numberOf('meter-1', value)?.number, 6)
  t.equal(sources.numberOf('meter-1', { kind: 'numbers', numbers: { polls: 7 } }), undefined, 'a poll the meter never answered')
})
