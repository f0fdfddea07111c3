/**
 * The receiving side of the fleet bench: `edgefwd sink` processes (the real CLI, the compiled
 * bin) that share one JetStream durable consumer on the NATS cluster, each appending JSON lines
 * to its own file; and a reader that follows those files as they grow, so the bench sees what
 * was delivered, by which sink, how late, and what came twice.
 *
 * A sink is stopped or killed by its PID only. Every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, openSync, readSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { StoredEvent } from '../../src/proto/codec.js'
import { SequenceVerifier } from '../../src/sink/verify.js'
import { waitFor } from './wait.js'

export interface SinkProcessOptions {
  /** Where its config, PEM files and output go. */
  dir: string
  /** Its name: the client id, the certificate's CN (a NATS user) and the file names. */
  name: string
  /** The compiled CLI, dist/bin/edgefwd.js. */
  bin: string
  ca: string
  cert: string
  key: string
  /** The NATS nodes' client listeners. */
  natsUrls: readonly string[]
  /** One MQTT listener, for the sink to make NATS create `$MQTT_msgs` when it is missing. */
  mqttUrl: string
  /** How long NATS waits for this sink's ack before giving a message to another. */
  ackWait: string
}

export class SinkProcess {
  readonly outFile: string
  private readonly config: string
  private child: ChildProcess | undefined
  private stderr = ''

  constructor (private readonly options: SinkProcessOptions) {
    const file = (name: string, text: string): string => { const path = join(options.dir, `${options.name}.${name}`); writeFileSync(path, text, { mode: 0o600 }); return path }
    this.outFile = join(options.dir, `${options.name}.jsonl`)
    const tls = { ca: file('ca.pem', options.ca), cert: file('cert.pem', options.cert), key: file('key.pem', options.key) }
    this.config = file('yaml', [
      `gateway: { id: ${options.name} }`,
      `tls: { ca: ${JSON.stringify(tls.ca)}, cert: ${JSON.stringify(tls.cert)}, key: ${JSON.stringify(tls.key)}, watch: false }`,
      'sink:',
      `  clientId: ${options.name}`,
      `  url: ${options.mqttUrl}`,
      "  mqttVersion: '3.1.1'",
      `  out: ${JSON.stringify(this.outFile)}`,
      '  source: jetstream',
      `  jetstream: { servers: [${options.natsUrls.join(', ')}], ackWait: ${options.ackWait} }`,
      ''
    ].join('\n'))
  }

  get name (): string { return this.options.name }
  pid (): number | undefined { return this.child?.pid }
  running (): boolean { return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null }
  /** What it wrote on standard error (its log lines and, at a clean stop, its totals). */
  log (): string { return this.stderr }

  /** Starts it and resolves once it consumes (its "consuming" line); throws when it exits first or after `timeoutMs`. */
  async start (timeoutMs = 90_000): Promise<void> {
    const before = this.stderr.length
    const child = spawn(process.execPath, [this.options.bin, 'sink', this.config], { stdio: ['ignore', 'ignore', 'pipe'] })
    child.stderr?.on('data', (chunk: Buffer) => { this.stderr += chunk.toString() })
    const onProcessExit = (): void => { if (this.running()) child.kill('SIGKILL') }
    process.once('exit', onProcessExit)
    child.once('exit', () => { process.off('exit', onProcessExit) })
    this.child = child
    await waitFor(`${this.options.name} to consume`, () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${this.options.name} exited (${child.exitCode ?? child.signalCode ?? ''}): ${this.stderr.slice(before)}`)
      return this.stderr.slice(before).includes('consuming ')
    }, timeoutMs, 50)
  }

  /** SIGKILL: what it pulled and did not acknowledge goes to the other sinks after ackWait. */
  async kill (): Promise<void> {
    await this.signal('SIGKILL', 10_000)
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop (graceMs = 10_000): Promise<void> {
    await this.signal('SIGTERM', graceMs)
  }

  private async signal (signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const child = this.child
    if (child === undefined || !this.running()) return
    const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
    child.kill(signal)
    const timer = setTimeout(() => { if (this.running()) child.kill('SIGKILL') }, graceMs)
    await exited
    clearTimeout(timer)
  }
}

/** What the sinks' files held, read so far. */
export interface Delivered {
  /** Distinct (gateway, device, seq). */
  unique: number
  /** Lines for an event already seen, in any sink's file: what a key on (gateway, device, seq) removes. */
  duplicates: number
  /** Lines per sink, in the order the sinks were given. */
  perSink: number[]
}

/**
 * Follows the sinks' output files. `poll()` reads what was appended since the last poll; an
 * event's latency is from its gatewayTimeMs (the gateway's clock at the append) to the poll that
 * first saw it, so it is late by up to one poll interval.
 */
export class SinkOutputs {
  private readonly offsets: number[]
  private readonly partial: string[]
  private readonly seen = new Set<string>()
  private readonly perSink: number[]
  private duplicates = 0
  readonly verifier = new SequenceVerifier({ expectedFirstSeq: 1 })
  /** [gatewayTimeMs, end-to-end latency ms] of each event whose gatewayTimeMs >= latencyFromMs. */
  readonly latencies: Array<[number, number]> = []
  latencyFromMs = Infinity

  constructor (private readonly files: readonly string[]) {
    this.offsets = files.map(() => 0)
    this.partial = files.map(() => '')
    this.perSink = files.map(() => 0)
  }

  delivered (): Delivered {
    return { unique: this.seen.size, duplicates: this.duplicates, perSink: [...this.perSink] }
  }

  poll (): void {
    const now = Date.now()
    for (const [i, file] of this.files.entries()) {
      if (!existsSync(file)) continue
      const text = this.read(i, file)
      if (text === '') continue
      const lines = ((this.partial[i] ?? '') + text).split('\n')
      this.partial[i] = lines.pop() ?? ''
      for (const line of lines) this.line(i, line, now)
    }
  }

  private read (i: number, file: string): string {
    const fd = openSync(file, 'r')
    try {
      const chunks: Buffer[] = []
      const buffer = Buffer.allocUnsafe(1 << 20)
      for (;;) {
        const n = readSync(fd, buffer, 0, buffer.length, this.offsets[i] ?? 0)
        if (n === 0) break
        chunks.push(Buffer.from(buffer.subarray(0, n)))
        this.offsets[i] = (this.offsets[i] ?? 0) + n
      }
      return Buffer.concat(chunks).toString('utf8')
    } finally {
      closeSync(fd)
    }
  }

  private line (sink: number, text: string, now: number): void {
    if (text === '') return
    const e = JSON.parse(text) as { gateway: string, deviceId: string, deviceSeq: number, gatewayTimeMs: number }
    this.perSink[sink] = (this.perSink[sink] ?? 0) + 1
    const key = `${e.gateway}\u0000${e.deviceId}\u0000${e.deviceSeq}`
    if (this.seen.has(key)) {
      this.duplicates++
      return
    }
    this.seen.add(key)
    this.verifier.addEvents(e.gateway, [{ deviceId: e.deviceId, deviceSeq: e.deviceSeq } as StoredEvent])
    if (e.gatewayTimeMs >= this.latencyFromMs) this.latencies.push([e.gatewayTimeMs, now - e.gatewayTimeMs])
  }
}
