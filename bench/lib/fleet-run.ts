/**
 * One run of the fleet: a NATS cluster (3 nodes, JetStream, MQTT over mutual TLS), N `edgefwd
 * sink` processes sharing one durable consumer, and M real gateways in this process (the uplink
 * over a store, each with its own EC P-256 certificate made for the run), put through the faults
 * a fleet meets. Used by `npm run bench:fleet` (bench/fleet-bench.ts) and, shortened, by the
 * test suite (test/integration/fleet.test.ts).
 *
 * The run, in order (each fault with fresh events in flight):
 *   1. the cluster; the first sink (it makes the consumer), then the others;
 *   2. the gateways: K events each, started at `rampPerSecond`, until all are online;
 *   3. `step` more events each; one sink SIGKILLed and started again;
 *   4. `step` more; one node stopped for `nodeStopMs`, then started;
 *   5. optionally `step` more and the whole cluster stopped and started: every gateway
 *      reconnects (the reconnect spread and the connection rate are measured here);
 *   6. `step` more; every event acknowledged to its gateway, then every one in a sink's file.
 * Every wait is bounded; the processes started are stopped by PID, the directory is the caller's.
 */
import { join } from 'node:path'
import { openFleet, type Fleet } from './fleet-gateways.js'
import { makeFleetPki } from './fleet-pki.js'
import { SinkOutputs, SinkProcess } from './fleet-sinks.js'
import { startNatsCluster, type NatsCluster } from './nats-cluster.js'
import { waitFor } from './wait.js'

export interface FleetRunOptions {
  /** A directory the run may fill (PKI, NATS stores, sink files). */
  dir: string
  /** The compiled CLI, dist/bin/edgefwd.js, that runs the sinks. */
  bin: string
  gateways: number
  sinks: number
  /** Events each gateway holds before it starts, and adds before each fault and at the end. */
  eventsStart: number
  eventsStep: number
  rampPerSecond: number
  nodeStopMs: number
  clusterRestart: boolean
  /** The sinks' ackWait (how soon a killed sink's messages go to the others), e.g. '10s'. */
  ackWait: string
  /** Progress, one line each. */
  log: (line: string) => void
}

export interface FleetResult {
  gateways: number
  events_sent: number
  events_delivered_unique: number
  lost: number
  duplicates_removed: number
  unexplained: number
  /** Seconds from the cluster's stop to each gateway's first CONNACK after it (cluster restart only). */
  reconnect_p50_s: number | null
  reconnect_p99_s: number | null
  /** Seconds from the cluster's stop to its nodes listening again, and to the first gateway's CONNACK: what the cluster itself took. */
  restart_nodes_listening_s: number | null
  restart_first_back_s: number | null
  /** The most CONNACKs in one second over the run, and within the cluster restart. */
  peak_connects_per_s: number
  restart_peak_connects_per_s: number | null
  /** From the append to the first poll that saw the event in a sink's file (polled every 100 ms), for events added after the ramp. */
  end_to_end_p50_ms: number
  end_to_end_p99_ms: number
  /** The same p99 for the events added before each fault (and at the end), to see which fault made the tail. */
  end_to_end_p99_ms_by_phase: Record<string, number>
  /** Lines each sink wrote. */
  sink_share: number[]
  gave_up: number
  /** The gateways' failed connection attempts over the run, by reason. */
  connect_failures: Record<string, number>
  /** The last step's events over the time from their append to the last of them in a sink's file: the cluster's and sinks' rate. */
  final_step_events_per_s: number
  /** Times for the phases: all online after the ramp, the cluster restart until all online, the final drain. */
  ramp_s: number
  restart_all_online_s: number | null
  wall_s: number
}

const POLL_MS = 100

export async function runFleet (options: FleetRunOptions): Promise<FleetResult> {
  const started = Date.now()
  const { log } = options
  const ids = Array.from({ length: options.gateways }, (_, i) => `gw-${String(i + 1).padStart(4, '0')}`)
  const sinkNames = Array.from({ length: options.sinks }, (_, i) => `sink-${i + 1}`)
  const pki = await makeFleetPki(options.dir, ids, sinkNames)
  log(`PKI: ${ids.length + sinkNames.length} EC P-256 client certificates in ${s(started)} s`)

  const cluster = await startNatsCluster({
    dir: join(options.dir, 'nats'), ca: pki.ca, cert: pki.server.cert, key: pki.server.key, users: [...ids, ...sinkNames].map(id => `CN=${id}`)
  })
  const sinks = sinkNames.map(name => {
    const pair = pki.clients.get(name)
    if (pair === undefined) throw new Error(`no certificate for ${name}`)
    return new SinkProcess({
      dir: options.dir, name, bin: options.bin, ca: pki.ca, cert: pair.cert, key: pair.key,
      natsUrls: cluster.nodes.map(n => n.natsUrl), mqttUrl: cluster.nodes[0]?.mqttUrl ?? '', ackWait: options.ackWait
    })
  })
  const outputs = new SinkOutputs(sinks.map(sink => sink.outFile))
  const poller = setInterval(() => { outputs.poll() }, POLL_MS)
  let fleet: Fleet | undefined
  try {
    await sinks[0]?.start()
    await Promise.all(sinks.slice(1).map(async sink => { await sink.start() }))
    log(`cluster of ${cluster.nodes.length} and ${sinks.length} sinks up at ${s(started)} s`)

    fleet = await openFleet({
      ids, brokerUrls: cluster.nodes.map(n => n.mqttUrl), ca: pki.ca, clients: pki.clients,
      eventsPerGateway: options.eventsStart, rampPerSecond: options.rampPerSecond
    })
    const rampStart = Date.now()
    await fleet.start()
    await fleet.waitAllOnline(60_000 + 1000 * options.gateways / options.rampPerSecond)
    const rampS = s(rampStart)
    log(`${options.gateways} gateways online in ${rampS} s`)
    outputs.latencyFromMs = Date.now()
    const phases: Array<[string, number]> = []

    phases.push(['sink_kill', Date.now()])
    await fleet.appendMore(options.eventsStep)
    const victim = sinks[sinks.length > 1 ? 1 : 0]
    if (victim !== undefined) {
      await victim.kill()
      log(`${victim.name} SIGKILLed`)
      await victim.start()
      log(`${victim.name} consuming again`)
    }

    phases.push(['node_stop', Date.now()])
    await fleet.appendMore(options.eventsStep)
    const node = cluster.nodes[1] ?? cluster.nodes[0]
    if (node !== undefined) {
      await node.stop()
      log(`node ${node.name} stopped for ${options.nodeStopMs / 1000} s`)
      await new Promise(resolve => setTimeout(resolve, options.nodeStopMs))
      await node.start()
      log(`node ${node.name} started again`)
    }

    if (options.clusterRestart) phases.push(['cluster_restart', Date.now()])
    const restart = options.clusterRestart ? await restartCluster(cluster, fleet, options) : undefined

    const finalFrom = Date.now()
    phases.push(['final', finalFrom])
    await fleet.appendMore(options.eventsStep)
    const sent = fleet.stats().eventsAppended
    await fleet.waitAllAcked(300_000)
    log(`all ${sent} events acknowledged to their gateways at ${s(started)} s`)
    await waitFor(`the sinks to write all ${sent} events`, () => outputs.delivered().unique >= sent, 300_000, POLL_MS)
    const finalS = (Date.now() - finalFrom) / 1000
    // A little longer, so a redelivery still on its way is counted too.
    await new Promise(resolve => setTimeout(resolve, 2 * POLL_MS))
    outputs.poll()

    const delivered = outputs.delivered()
    const stats = fleet.stats()
    const connects = fleet.connectTimes()
    return {
      gateways: options.gateways,
      events_sent: sent,
      events_delivered_unique: delivered.unique,
      lost: sent - delivered.unique,
      duplicates_removed: delivered.duplicates,
      unexplained: outputs.verifier.summary().unexplainedMissing,
      reconnect_p50_s: restart === undefined ? null : round(percentile(restart.delays, 0.5), 2),
      reconnect_p99_s: restart === undefined ? null : round(percentile(restart.delays, 0.99), 2),
      restart_nodes_listening_s: restart === undefined ? null : restart.listeningS,
      restart_first_back_s: restart === undefined ? null : round(percentile(restart.delays, 0), 2),
      peak_connects_per_s: peakPerSecond(connects),
      restart_peak_connects_per_s: restart === undefined ? null : peakPerSecond(connects.filter(t => t >= restart.markMs)),
      end_to_end_p50_ms: Math.round(percentile(outputs.latencies.map(([, ms]) => ms), 0.5)),
      end_to_end_p99_ms: Math.round(percentile(outputs.latencies.map(([, ms]) => ms), 0.99)),
      end_to_end_p99_ms_by_phase: Object.fromEntries(phases.map(([name, from], i) => {
        const to = phases[i + 1]?.[1] ?? Infinity
        return [name, Math.round(percentile(outputs.latencies.filter(([at]) => at >= from && at < to).map(([, ms]) => ms), 0.99))]
      })),
      sink_share: delivered.perSink,
      gave_up: stats.gaveUp,
      connect_failures: stats.connectFailures,
      final_step_events_per_s: Math.round(options.gateways * options.eventsStep / finalS),
      ramp_s: rampS,
      restart_all_online_s: restart === undefined ? null : restart.allOnlineS,
      wall_s: s(started),
    }
  } finally {
    clearInterval(poller)
    await Promise.all(sinks.map(async sink => { await sink.stop() }))
    await fleet?.stop()
    await cluster.stop()
  }
}

/** Every node stopped, then all started again; resolves once every gateway is back online. */
async function restartCluster (cluster: NatsCluster, fleet: Fleet, options: FleetRunOptions): Promise<{ markMs: number, delays: number[], listeningS: number, allOnlineS: number }> {
  await fleet.appendMore(options.eventsStep)
  const markMs = fleet.markOutage()
  await Promise.all(cluster.nodes.map(async n => { await n.stop() }))
  options.log('every node stopped')
  await Promise.all(cluster.nodes.map(async n => { await n.start() }))
  const listeningS = s(markMs)
  options.log(`every node listening again ${listeningS} s after the cluster stopped`)
  await fleet.waitAllOnline(180_000)
  const allOnlineS = s(markMs)
  options.log(`every gateway online again ${allOnlineS} s after the cluster stopped`)
  return { markMs, delays: fleet.reconnectDelays(markMs), listeningS, allOnlineS }
}

function s (sinceMs: number): number {
  return round((Date.now() - sinceMs) / 1000, 1)
}

function round (x: number, decimals: number): number {
  return Number.isFinite(x) ? Math.round(x * 10 ** decimals) / 10 ** decimals : x
}

/** The nearest-rank percentile; NaN of nothing. */
export function percentile (values: readonly number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN
}

/** The most timestamps (ms) in any window of one second. */
export function peakPerSecond (times: readonly number[]): number {
  const sorted = [...times].sort((a, b) => a - b)
  let peak = 0
  let from = 0
  for (let to = 0; to < sorted.length; to++) {
    while ((sorted[to] ?? 0) - (sorted[from] ?? 0) >= 1000) from++
    peak = Math.max(peak, to - from + 1)
  }
  return peak
}
