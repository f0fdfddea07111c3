/**
 * The fleet bench, shortened (bench/lib/fleet-run.ts): 50 real gateways on a 3-node NATS cluster,
 * 3 `edgefwd sink` processes sharing one JetStream consumer, one sink SIGKILLed and started
 * again, one node stopped and started again. Every event a gateway appended reaches a sink's
 * file: none lost, no gap, every sink took a share, no gateway gave up.
 * `npm run bench:fleet` runs the full one (1000 gateways, a 20 s node stop, a cluster restart).
 */
import t from 'tap'
import { runFleet } from '../../bench/lib/fleet-run.js'
import { assertBuilt, distRoot } from '../helpers/built.js'

t.setTimeout(240_000)

t.test('50 gateways, 3 sinks, a sink killed, a node stopped: nothing lost, every sink took a share', async t => {
  assertBuilt()
  const progress: string[] = []
  const result = await runFleet({
    dir: t.testdir(), bin: `${distRoot}bin/edgefwd.js`, gateways: 50, sinks: 3, eventsStart: 60, eventsStep: 20,
    rampPerSecond: 50, nodeStopMs: 3000, clusterRestart: false, ackWait: '2s', log: line => { progress.push(line) }
  })
  t.comment(JSON.stringify(result))
  t.equal(result.events_sent, 50 * (60 + 3 * 20), 'every gateway appended its events')
  t.match(result, { lost: 0, unexplained: 0, gave_up: 0 }, 'nothing lost, no gap, no gateway gave up')
  t.equal(result.events_delivered_unique, result.events_sent)
  t.equal(result.sink_share.length, 3)
  t.ok(result.sink_share.every(n => n > 0), `every sink took a share: ${result.sink_share.join(', ')}`)
  t.match(progress, [/PKI/, /cluster of 3 and 3 sinks up/, /50 gateways online/, /sink-2 SIGKILLed/, /sink-2 consuming again/, /node n2 stopped/, /node n2 started again/, /all 6000 events acknowledged/])
})
