// The NATS cluster lives in bench/lib (the fleet bench runs it too); tests import it from here.
export { NATS_BIN, startNatsCluster, type NatsCluster, type NatsClusterOptions, type NatsNode } from '../../bench/lib/nats-cluster.js'
