/**
 * A NATS cluster on loopback for tests and benches: N nodes of Debian's nats-server (2.9), each
 * with JetStream (file storage in its own directory), a cluster route to the others, an MQTT
 * listener and a NATS client listener, both over TLS requiring a client certificate that is
 * mapped to a user (verify_and_map: the certificate's subject, e.g. `CN=gw-1`, is the user
 * name). Every user is in one account with JetStream enabled, as NATS's MQTT side needs. A node
 * can be stopped and started again on the same ports and directory (its JetStream data kept).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort, waitFor } from './wait.js'

export const NATS_BIN = existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server'

export interface NatsClusterOptions {
  /** A directory the helper may write into: configs, PEM files, logs, JetStream stores. */
  dir: string
  /** PEM strings: the CA client certificates must chain to, the nodes' certificate and key. */
  ca: string
  cert: string
  key: string
  /** User names as verify_and_map sees them: the client certificate's subject, e.g. `CN=gw-1`. */
  users: readonly string[]
  /** Nodes; default 3. */
  nodes?: number
  /** Bound on each node's start; default 20 s. */
  startTimeoutMs?: number
}

export interface NatsNode {
  readonly name: string
  /** mqtts://127.0.0.1:PORT of its MQTT listener. */
  readonly mqttUrl: string
  /** nats://127.0.0.1:PORT of its client listener (TLS with a client certificate, like MQTT). */
  readonly natsUrl: string
  readonly logFile: string
  pid: () => number | undefined
  running: () => boolean
  /** SIGTERM and wait for the exit (bounded); its data stays. */
  stop: () => Promise<void>
  /** Starts it again on the same ports and data. */
  start: () => Promise<void>
}

export interface NatsCluster {
  readonly nodes: readonly NatsNode[]
  /** Every node stopped. */
  stop: () => Promise<void>
}

export async function startNatsCluster (options: NatsClusterOptions): Promise<NatsCluster> {
  const n = options.nodes ?? 3
  mkdirSync(options.dir, { recursive: true })
  const pem = (name: string, text: string): string => { const path = join(options.dir, name); writeFileSync(path, text, { mode: 0o600 }); return path }
  const files = { ca: pem('ca.pem', options.ca), cert: pem('server.pem', options.cert), key: pem('server.key', options.key) }
  const ports = await Promise.all(Array.from({ length: n }, async () => ({ client: await freePort(), cluster: await freePort(), mqtt: await freePort() })))
  const tls = `cert_file: ${JSON.stringify(files.cert)}, key_file: ${JSON.stringify(files.key)}, ca_file: ${JSON.stringify(files.ca)}`
  const users = options.users.map(u => `{ user: ${JSON.stringify(u)} }`).join(', ')
  const nodes = ports.map((p, i) => {
    const name = `n${i + 1}`
    const store = join(options.dir, name)
    mkdirSync(store, { recursive: true })
    const routes = ports.filter((_, j) => j !== i).map(o => `nats-route://127.0.0.1:${o.cluster}`).join(', ')
    const conf = join(options.dir, `${name}.conf`)
    writeFileSync(conf, [
      `server_name: ${name}`,
      `listen: 127.0.0.1:${p.client}`,
      `tls { ${tls}, verify_and_map: true, timeout: 5 }`,
      `jetstream { store_dir: ${JSON.stringify(store)}, max_memory_store: 64MB, max_file_store: 1GB }`,
      `cluster { name: edgefwd, listen: 127.0.0.1:${p.cluster}, routes: [${routes}] }`,
      'mqtt {',
      `  listen: 127.0.0.1:${p.mqtt}`,
      // The MQTT sessions, retained messages and QoS 1 state on every node, so the loss of one
      // node leaves a quorum (measured: with the default, a stopped node stalled the session stream).
      `  stream_replicas: ${Math.min(3, n)}`,
      `  tls { ${tls}, verify_and_map: true, timeout: 5 }`,
      '}',
      // EDGE: the gateways and sinks (JetStream on: NATS's MQTT side keeps its sessions there).
      // SYS: the cluster's own traffic; no one logs into it here.
      `accounts { EDGE: { jetstream: enabled, users: [${users}] }, SYS: { users: [{ user: sys, password: "not-used-here" }] } }`,
      'system_account: SYS',
      ''
    ].join('\n'))
    return new Node(name, conf, join(options.dir, `${name}.log`), p.mqtt, p.client, options.startTimeoutMs ?? 20_000)
  })
  try {
    await Promise.all(nodes.map(async node => { await node.start() }))
    await Promise.all(nodes.map(async node => { await node.jetStreamReady() }))
  } catch (err) {
    await Promise.all(nodes.map(async node => { await node.stop() }))
    throw err
  }
  return { nodes, stop: async () => { await Promise.all(nodes.map(async node => { await node.stop() })) } }
}

class Node implements NatsNode {
  private child: ChildProcess | undefined
  readonly mqttUrl: string
  readonly natsUrl: string

  constructor (readonly name: string, private readonly conf: string, readonly logFile: string, mqttPort: number, clientPort: number, private readonly startTimeoutMs: number) {
    this.mqttUrl = `mqtts://127.0.0.1:${mqttPort}`
    this.natsUrl = `nats://127.0.0.1:${clientPort}`
  }

  pid (): number | undefined { return this.child?.pid }
  running (): boolean { return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null }

  private log (): string { return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '' }

  async start (): Promise<void> {
    if (this.running()) return
    const before = this.log().length
    const child = spawn(NATS_BIN, ['-c', this.conf, '-l', this.logFile], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    let failed: Error | undefined
    child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    child.on('error', err => { failed = err })
    // A test process that ends without its teardown (a timeout) takes its nodes with it.
    const onProcessExit = (): void => { if (this.running()) child.kill('SIGKILL') }
    process.once('exit', onProcessExit)
    child.once('exit', () => { process.off('exit', onProcessExit) })
    this.child = child
    await waitFor(`nats node ${this.name} to listen for MQTT`, () => {
      if (failed !== undefined) throw new Error(`cannot run ${NATS_BIN} (.ci/run installs Debian's nats-server): ${failed.message}`)
      if (child.exitCode !== null) throw new Error(`nats-server ${this.name} exited ${child.exitCode}: ${stderr}${this.log().slice(before)}`)
      return /Listening for MQTT clients on/.test(this.log().slice(before))
    }, this.startTimeoutMs, 50)
  }

  /** The cluster has a JetStream metadata leader (MQTT sessions are JetStream writes). */
  async jetStreamReady (): Promise<void> {
    await waitFor(`JetStream on ${this.name} to see a metadata leader`, () => /JetStream cluster new metadata leader|Self is new JetStream cluster metadata leader/.test(this.log()), this.startTimeoutMs, 50)
  }

  async stop (): Promise<void> {
    const child = this.child
    if (child === undefined || !this.running()) return
    const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
    child.kill('SIGTERM')
    const timer = setTimeout(() => { if (this.running()) child.kill('SIGKILL') }, 10_000)
    await exited
    clearTimeout(timer)
  }
}
