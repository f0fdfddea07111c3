/**
 * uplink.url as a list (the nodes of a cluster): which node the next attempt goes to
 * (BrokerRotation), and the session moving on after a failed attempt and after a lost link,
 * with its jittered waits unchanged. The real-broker version is in
 * test/integration/uplink-failover.test.ts.
 */
import t from 'tap'
import { EdgefwdError } from '../../src/errors.js'
import type { ConnectBroker } from '../../src/uplink/broker-connection.js'
import { BrokerRotation } from '../../src/uplink/brokers.js'
import { parseBrokerUrl } from '../../src/uplink/connect.js'
import { memoryUplink, until } from '../helpers/memory-uplink.js'

const NODES = ['mqtts://node-a:8883', 'mqtts://node-b:8883', 'mqtts://node-c:8883'].map(parseBrokerUrl)

/** A seeded generator, so the random order is the same on every run. */
function lcg (seed: number): () => number {
  let s = seed
  return () => { s = (s * 1103515245 + 12345) % 2 ** 31; return s / 2 ** 31 }
}

function walk (rotation: BrokerRotation, steps: number): string[] {
  const hosts: string[] = []
  for (let i = 0; i < steps; i++) {
    hosts.push(rotation.current().host)
    rotation.failed()
  }
  return hosts
}

t.test('ordered: from the first node, on to the next after each failure, wrapping around', async t => {
  t.same(walk(new BrokerRotation(NODES, 'ordered'), 7), ['node-a', 'node-b', 'node-c', 'node-a', 'node-b', 'node-c', 'node-a'])
})

t.test('one broker: a failure keeps it (the list of one is today\'s single url)', async t => {
  t.same(walk(new BrokerRotation(NODES.slice(0, 1), 'random', lcg(1)), 3), ['node-a', 'node-a', 'node-a'])
  t.throws(() => new BrokerRotation([], 'ordered'), RangeError)
})

t.test('random: a fleet starts spread over the nodes, and a failure always moves to another node', async t => {
  const starts = new Map<string, number>()
  const random = lcg(42)
  for (let gateway = 0; gateway < 3000; gateway++) {
    const host = new BrokerRotation(NODES, 'random', random).current().host
    starts.set(host, (starts.get(host) ?? 0) + 1)
  }
  for (const node of NODES) {
    const n = starts.get(node.host) ?? 0
    t.ok(n > 850 && n < 1150, `${node.host}: ${n} of 3000 gateways start there (a third is 1000)`)
  }
  const hosts = walk(new BrokerRotation(NODES, 'random', lcg(7)), 3000)
  t.equal(hosts.filter((host, i) => i > 0 && host === hosts[i - 1]).length, 0, 'never the same node twice in a row')
  for (const node of NODES) {
    const n = hosts.filter(h => h === node.host).length
    t.ok(n > 850 && n < 1150, `${node.host} taken ${n} times of 3000`)
  }
})

t.test('the session moves to the next node after a failed attempt and after a lost link, waiting its backoff between failures', async t => {
  const tried: string[] = []
  const down = new Set(['node-a'])
  let reach: ConnectBroker | undefined
  const connect: ConnectBroker = async (address, credentials, options) => {
    tried.push(address.host)
    if (down.has(address.host)) throw new EdgefwdError('EDGEFWD_ERR_UPLINK_CONNECT', `cannot connect to ${address.url}: connect ECONNREFUSED`)
    if (reach === undefined) throw new Error('the peer is not ready')
    return await reach(address, credentials, options)
  }
  const { uplink, peer, clock, records } = await memoryUplink(t, { brokers: NODES, failover: 'ordered', connect })
  reach = peer.connect
  uplink.start()
  await until('the first attempt (node-a, down)', () => tried.length === 1)
  t.equal(uplink.state(), 'backoff', 'a failed attempt waits its jittered backoff, also when another node is left to try')
  await clock.advance(1000)
  await until('online on node-b', () => uplink.state() === 'online')
  t.same(tried, ['node-a', 'node-b'])
  t.match(records().filter(r => r.to === 'online').at(-1), { broker: 'mqtts://node-b:8883' }, 'the log says which node it is online on')

  peer.current?.drop()
  await until('online again', () => tried.length === 3 && uplink.state() === 'online')
  t.equal(tried[2], 'node-c', 'after a lost link the next attempt goes to the next node')

  down.add('node-c')
  peer.current?.drop()
  await until('the attempt after node-c (node-a, down)', () => tried.length === 4)
  await clock.advance(1000)
  await until('online on node-b again', () => tried.length === 5 && uplink.state() === 'online')
  t.same(tried, ['node-a', 'node-b', 'node-c', 'node-a', 'node-b'], 'around the list, skipping the nodes that are down')
})
