/**
 * A gateway for the agent-interface tests: startGateway() (what `edgefwd run` runs, the agent
 * socket included) from a config file, delivering through a chaos proxy to a real Mosquitto over
 * mutual TLS, a TCP device to send frames with, the heartbeats as the broker gets them, and
 * `edgefwd mcp` processes to talk to it. Everything it starts is stopped by the test's teardown.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import type { Test } from 'tap'
import { startChaosProxy, type ChaosProxy } from '../../../simulate/chaos-proxy.js'
import { configBuilder } from '../../../src/config/index.js'
import { startGateway, type Gateway } from '../../../src/gateway.js'
import { parseExposition, type Sample } from '../../../src/observe/exposition.js'
import { decodeHeartbeat } from '../../../src/proto/codec.js'
import type { HeartbeatData } from '../../../src/proto/codec.js'
import { issueCertificate } from '../../../src/pki/generate.js'
import { clientTlsOptions } from '../../../src/pki/tls-options.js'
import { distRoot } from '../../helpers/built.js'
import { silentLogger } from '../../helpers/logger.js'
import { startMosquitto, type Mosquitto } from '../../helpers/mosquitto.js'
import { makeCa, makeClient, writeSet, type PemPair, type SetFiles } from '../../helpers/test-pki.js'
import { waitFor } from '../../helpers/wait.js'
import { encode, event } from './device.js'

export const CLI = join(distRoot, 'bin', 'edgefwd.js')

export interface McpGateway {
  dir: string
  /** The agent socket (a short path under /tmp). */
  socket: string
  auditFile: string
  gateway: Gateway
  proxy: ChaosProxy
  broker: Mosquitto
  ca: PemPair
  tls: SetFiles
  heartbeats: HeartbeatData[]
  /** Sends `count` events of one device and priority over TCP, seq from `from`. */
  send: (deviceId: string, from: number, count: number, priority: 0 | 1 | 2 | 3, payloadBytes?: number) => Promise<void>
  /** Sends bytes that are not a valid frame. */
  sendGarbage: (frames: number) => Promise<void>
  scrape: () => Promise<Sample[]>
  /** The value of one series in `samples` (labels must match exactly those given). */
  value: (samples: Sample[], name: string, labels?: Record<string, string>) => number
  /** Sum of every series of `name`. */
  sum: (samples: Sample[], name: string) => number
  auditLines: () => Array<Record<string, unknown>>
}

export async function startMcpGateway (t: Test, options: { id: string, mcp?: string[] }): Promise<McpGateway> {
  const dir = t.testdir()
  // A unix socket path must stay under 108 bytes: tap's fixture directories are longer.
  const short = mkdtempSync(join(tmpdir(), 'efmcp-'))
  const socket = join(short, 'agent.sock')
  const auditFile = join(dir, 'audit.jsonl')
  const ca = makeCa()
  const server = issueCertificate(ca, { kind: 'server', commonName: 'localhost', sans: ['127.0.0.1'] })
  const sinkCert = makeClient(ca, { commonName: 'sink' })
  const gwCert = makeClient(ca, { commonName: options.id })
  mkdirSync(join(dir, 'broker'))
  const broker = await startMosquitto({ dir: join(dir, 'broker'), ca: ca.certPem, cert: server.certPem, key: server.keyPem })
  t.teardown(async () => { await broker.stop() })
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: broker.port } })
  t.teardown(async () => { await proxy.close() })

  const heartbeats: HeartbeatData[] = []
  const sub = await mqtt.connectAsync(broker.url, {
    ...clientTlsOptions({ ca: ca.certPem, cert: sinkCert.certPem, key: sinkCert.keyPem }), clientId: `${options.id}-sink`, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000
  }, false)
  t.teardown(async () => { await sub.endAsync(true) })
  sub.on('message', (_topic, payload) => { heartbeats.push(decodeHeartbeat(payload)) })
  await sub.subscribeAsync(`edgefwd/${options.id}/health`, { qos: 1 })

  const tls = writeSet(join(dir, 'tls'), { ca: ca.certPem, cert: gwCert.certPem, key: gwCert.keyPem })
  const config = join(dir, 'gw.yaml')
  writeFileSync(config, [
    `gateway: { id: ${options.id} }`,
    `store: { path: ${join(dir, 'store')}, capacity: 64KiB }`,
    `tls: { ca: ${tls.ca}, cert: ${tls.cert}, key: ${tls.key} }`,
    `uplink: { url: "${proxy.url('mqtts')}", heartbeatInterval: 1s, stopTimeout: 1s, backoff: { initial: 100ms, max: 300ms }, connectTimeout: 2s }`,
    'observe: { metrics: { listen: "127.0.0.1:0" } }',
    'ingest:',
    '  rateLimit: { eventsPerSecond: 1000000, bytesPerSecond: 64MiB }',
    '  tcp: [{ address: 127.0.0.1, port: 0, format: frames }]',
    'mcp:',
    `  socket: ${socket}`,
    `  audit: { file: ${auditFile} }`,
    ...(options.mcp === undefined ? [] : [`  remediation: { allow: [${options.mcp.join(', ')}], minInterval: 30s }`]),
  ].join('\n'))
  const gateway = await startGateway(await configBuilder({ file: config }), { logger: silentLogger(), env: {}, version: 'test' })
  t.teardown(async () => {
    await gateway.stopNow()
    rmSync(short, { recursive: true, force: true })
  })
  await waitFor('online', () => gateway.stats()?.uplink.state === 'online', 10_000)

  const address = gateway.listening.find(l => l.startsWith('tcp ')) ?? ''
  const device: Socket = connect(Number(address.slice(address.lastIndexOf(':') + 1)), '127.0.0.1')
  device.on('data', () => {})
  t.teardown(() => { device.destroy() })
  await new Promise<void>((resolve, reject) => { device.once('connect', resolve); device.once('error', reject) })
  const write = async (bytes: Uint8Array): Promise<void> => { await new Promise<void>(resolve => device.write(bytes, () => { resolve() })) }

  const value = (samples: Sample[], name: string, labels: Record<string, string> = {}): number =>
    samples.find(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length)?.value ?? 0
  return {
    dir, socket, auditFile, gateway, proxy, broker, ca, tls, heartbeats,
    send: async (deviceId, from, count, priority, payloadBytes = 60) => {
      await write(Buffer.concat(Array.from({ length: count }, (_, i) => encode('stream', event(deviceId, from + i, { priority, value: { kind: 'raw', raw: new Uint8Array(payloadBytes) } })))))
    },
    sendGarbage: async frames => {
      // COBS frames whose content is not a valid frame (bad version byte, bad CRC).
      await write(Buffer.concat(Array.from({ length: frames }, () => Buffer.from([0x05, 0x99, 0x01, 0x02, 0x03, 0x00]))))
    },
    scrape: async () => parseExposition(await (await fetch(`http://${gateway.endpoint ?? ''}/metrics`)).text()),
    value,
    sum: (samples, name) => samples.filter(s => s.name === name).reduce((n, s) => n + s.value, 0),
    auditLines: () => {
      let text = ''
      try { text = readFileSync(auditFile, 'utf8') } catch {}
      return text.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Record<string, unknown>)
    },
  }
}

/** `edgefwd mcp --socket S` as an agent starts it, with raw JSON-RPC lines in and out. */
export interface RawMcp {
  child: ChildProcessWithoutNullStreams
  /** Lines on standard output that were not JSON (there must be none). */
  stray: string[]
  /** Standard error so far. */
  stderr: () => string
  /** Writes one line (a string is sent as is, an object as JSON). */
  write: (message: string | object) => void
  /** The next answer with this id (null: the next error without an id), within `ms` (10 s). */
  answer: (id: number | null, ms?: number) => Promise<Record<string, unknown>>
  close: () => Promise<void>
}

export function spawnRawMcp (t: Test, socket: string, args: string[] = ['mcp', '--socket', socket]): RawMcp {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  const answers: Array<Record<string, unknown>> = []
  const stray: string[] = []
  let pending = ''
  let stderr = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk: string) => {
    pending += chunk
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl)
      pending = pending.slice(nl + 1)
      try {
        answers.push(JSON.parse(line) as Record<string, unknown>)
      } catch {
        stray.push(line)
      }
    }
  })
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => { stderr += chunk })
  const close = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
    child.stdin.end()
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 15_000)
    await exited
    clearTimeout(timer)
  }
  t.teardown(close)
  return {
    child,
    stray,
    stderr: () => stderr,
    write: message => { child.stdin.write(typeof message === 'string' ? `${message}\n` : `${JSON.stringify(message)}\n`) },
    answer: async (id, ms = 10_000) => {
      let found: Record<string, unknown> | undefined
      await waitFor(`an answer with id ${String(id)}`, () => {
        const at = answers.findIndex(a => a.id === id)
        if (at < 0) return false
        found = answers.splice(at, 1)[0]
        return true
      }, ms)
      return found as Record<string, unknown>
    },
    close,
  }
}
