/**
 * The MQTT packet framer of the ingest source (src/ingest/sources/mqtt/packet-framer.ts): packets
 * out in order whatever the read boundaries, an oversize PUBLISH reported with what acknowledging
 * it needs but never buffered, and protocol errors thrown.
 */
import t from 'tap'
import fc from 'fast-check'
import * as mqttPacket from 'mqtt-packet'
import { MqttFramer, type FramedItem } from '../../src/ingest/sources/mqtt/packet-framer.js'

const v5 = { protocolVersion: 5 }
const publish = (messageId: number, topic: string, size: number, qos: 0 | 1 = 1): Buffer =>
  mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.alloc(size, 0x61), qos, dup: false, retain: false, messageId, properties: { contentType: 'application/json' } }, v5)

function feed (framer: MqttFramer, stream: Buffer, cuts: number[]): FramedItem[] {
  const items: FramedItem[] = []
  let from = 0
  for (const cut of [...cuts.filter(c => c > 0 && c < stream.length)].sort((a, b) => a - b).concat(stream.length)) {
    if (cut <= from) continue
    framer.push(stream.subarray(from, cut), item => items.push(item))
    from = cut
  }
  return items
}

t.test('packets and oversize PUBLISHes come out in stream order, whatever the chunk boundaries', async t => {
  const stream = Buffer.concat([
    mqttPacket.generate({ cmd: 'connack', sessionPresent: false, reasonCode: 0 }, v5),
    publish(1, 'zigbee2mqtt/a', 100),
    publish(2, 'zigbee2mqtt/big', 5000),
    publish(0, 'zigbee2mqtt/big0', 3000, 0),
    mqttPacket.generate({ cmd: 'pingresp' }, v5),
    publish(3, 'zigbee2mqtt/b', 1000)
  ])
  const expected = ['packet:5', `packet:${publish(1, 'zigbee2mqtt/a', 100).length}`, 'oversize:2:zigbee2mqtt/big:1', 'oversize:-:zigbee2mqtt/big0:0', 'packet:2', `packet:${publish(3, 'zigbee2mqtt/b', 1000).length}`].join(' ')
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: stream.length }), { maxLength: 40 }), cuts => {
    const items = feed(new MqttFramer(1200), stream, cuts)
    return items.map(i => i.kind === 'packet' ? `packet:${i.bytes.length}` : `oversize:${i.messageId ?? '-'}:${i.topic}:${i.qos}`).join(' ') === expected
  }), { numRuns: 200 })
  t.pass('the same items in the same order for 200 random chunkings')
  // The packets are whole: mqtt-packet parses them.
  const parsed: mqttPacket.Packet[] = []
  const parser = mqttPacket.parser(v5)
  parser.on('packet', p => parsed.push(p))
  for (const item of feed(new MqttFramer(1200), stream, [7, 300])) if (item.kind === 'packet') parser.parse(item.bytes)
  t.same(parsed.map(p => p.cmd), ['connack', 'publish', 'pingresp', 'publish'])
  t.match(parsed[3], { topic: 'zigbee2mqtt/b', messageId: 3, qos: 1 })
})

t.test('an oversize PUBLISH is skipped as it arrives: reported with its size, never held', async t => {
  const framer = new MqttFramer(1024)
  const big = publish(7, 't', 10 * 1024 * 1024)
  const items: FramedItem[] = []
  for (let i = 0; i < big.length; i += 65536) framer.push(big.subarray(i, i + 65536), item => items.push(item))
  t.same(items, [{ kind: 'oversize', qos: 1, messageId: 7, topic: 't', size: big.length }])
  framer.push(publish(8, 't', 10), item => items.push(item))
  t.equal(items[1]?.kind, 'packet', 'the next packet is read normally')
})

t.test('protocol errors throw: a remaining length of 5 bytes, a huge non-PUBLISH, a PUBLISH shorter than its topic', async t => {
  t.throws(() => { new MqttFramer(1024).push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), () => {}) }, /more than 4 bytes/)
  t.throws(() => { new MqttFramer(1024).push(Buffer.from([0x90, 0xff, 0xff, 0x03]), () => {}) }, /packet of type 9 and \d+ bytes, over the 1024-byte bound/)
  t.throws(() => { new MqttFramer(8).push(Buffer.from([0x32, 0x0a, 0x00, 0x20, 0x61]), () => {}) }, /shorter than its own topic/)
})
