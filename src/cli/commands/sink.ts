/**
 * `edgefwd sink [FILE] [--verify] [--out FILE] [--until-idle DURATION]`: the receiving side.
 * Subscribes over MQTT (src/sink/subscriber.ts) or consumes a JetStream durable consumer
 * (src/sink/jetstream.ts), writes events as JSON lines to stdout or a file and, with --verify,
 * checks per-device sequences at the end (src/sink/verify.ts).
 */
import type { Config } from '../../config/index.js'
import { ConfigError, EdgefwdError } from '../../errors.js'
import type { TlsCredentials } from '../../pki/tls-options.js'
import type { SinkSource, SourceOptions } from '../../sink/source.js'
import type { VerifierSummary } from '../../sink/verify.js'
import { defineCommand, type TextSink } from '../command.js'
import { ExitCode } from '../exit-codes.js'

const GAPS_PRINTED = 20

export const sinkCommand = defineCommand({
  name: ['sink'],
  summary: 'Receive the gateways\' batches, write events as JSON lines and, with --verify, check delivery',
  description: [
    'Subscribes to sink.topic (default <uplink.topicPrefix>/+/events; with sink.shareGroup as',
    '$share/<group>/<topic>) at sink.url (default uplink.url) with the client certificate of the',
    'tls section. With sink.source jetstream it instead logs in to the NATS nodes of',
    'sink.jetstream.servers with that certificate and takes messages from the durable consumer',
    'sink.jetstream.consumer, which every sink instance shares (made on first use, over the',
    'stream where NATS keeps MQTT QoS 1 messages). Each batch is decoded, a redelivered batch',
    '(same gateway id and batch seq) is dropped, and every event is written as one JSON line to',
    'standard output, or appended to --out (sink.out), on disk (fdatasync) before the message is',
    'acknowledged. A message that does not decode is skipped with one line on standard error.',
    '',
    'The session is persistent (clean start off, MQTT 5 session expiry one day): a sink that',
    'restarts with the same client id gets what was published meanwhile. Give every instance of a',
    'share group its own sink.clientId.',
    '',
    'Runs until SIGINT or SIGTERM, or with --until-idle until no message came for that long.',
    'With --verify it then prints to standard error "delivered N, duplicates N, explained missing',
    'N, unexplained missing N" and up to 20 unexplained gaps, and exits 1 if there is any.',
  ].join('\n'),
  options: {
    verify: { type: 'boolean', description: 'check per-device sequences; exit 1 on a gap no eviction report explains' },
    out: { type: 'string', valueName: 'FILE', description: 'append the JSON lines to FILE instead of standard output (overrides sink.out)' },
    set: { type: 'string', multiple: true, valueName: 'KEY=VALUE', description: 'override one key, e.g. --set sink.shareGroup=cloud' },
    'until-idle': { type: 'string', valueName: 'DURATION', description: 'stop after this long without a message, e.g. 5s' },
  },
  positionals: [{ name: 'FILE', description: 'the configuration file (YAML or JSON); default: only EDGEFWD_* and --set', optional: true }],
  async run ({ values, positionals: [file] }, { env, io }) {
    // Loaded here, not at the top: every command's imports would otherwise slow every CLI start.
    const [{ loadConfig, parseDuration }, { loadTlsMaterial, tlsMaterialOptions }, { SequenceVerifier }, { jsonLinesToFile, jsonLinesToStream }] = await Promise.all([
      import('../../config/index.js'), import('../../pki/material.js'), import('../../sink/verify.js'), import('../../sink/destination.js')
    ])
    let idleMs: number | undefined
    if (values['until-idle'] !== undefined) {
      const parsed = parseDuration(values['until-idle'])
      if (!parsed.ok || parsed.value <= 0) {
        throw new EdgefwdError('EDGEFWD_ERR_USAGE', `sink: --until-idle ${parsed.ok ? 'must be more than 0' : parsed.message}`)
      }
      idleMs = parsed.value
    }
    const signals = io.signals
    if (signals === undefined && idleMs === undefined) {
      throw new EdgefwdError('EDGEFWD_ERR_USAGE', 'sink needs process signals to stop (run it from the edgefwd executable) or --until-idle')
    }
    const config = await loadConfig({ file, env, overrides: values.set ?? [] })
    const target = sinkTarget(config, file ?? 'config')
    const material = await loadTlsMaterial(tlsMaterialOptions(config.tls), { env })
    const verifier = values.verify === true ? new SequenceVerifier() : undefined
    const outPath = values.out ?? config.sink.out
    const destination = outPath === undefined ? jsonLinesToStream(io.stdout) : await jsonLinesToFile(outPath)
    const log = (line: string): void => { io.stderr.write(`edgefwd sink: ${line}\n`) }

    let stop: () => void = () => {}
    const stopped = new Promise<void>(resolve => { stop = resolve })
    let idleTimer: NodeJS.Timeout | undefined
    const armIdle = (): void => {
      if (idleMs === undefined) return
      clearTimeout(idleTimer)
      idleTimer = setTimeout(() => { log(`no message for ${values['until-idle'] ?? ''}, stopping`); stop() }, idleMs)
    }
    const offs = signals === undefined ? [] : [signals.on('SIGINT', stop), signals.on('SIGTERM', stop)]
    let sink: SinkSource | undefined
    let stats
    try {
      const common = { destination, ...(verifier === undefined ? {} : { verifier }), log, onActivity: armIdle, connectTimeoutMs: config.uplink.connectTimeout }
      sink = await openSource(config, target, () => material, common)
      armIdle()
      await Promise.race([stopped, sink.failed])
    } finally {
      clearTimeout(idleTimer)
      for (const off of offs) off()
      await sink?.close()
      stats = sink?.stats()
      await destination.close()
    }
    // Defined: had open() thrown, the finally block would have rethrown.
    if (stats === undefined) return ExitCode.failure
    const s = stats
    log(`${s.messages} messages, ${s.batchesWritten} batches written (${s.eventsWritten} events), ` +
      `${s.duplicateBatches} redelivered batches dropped, ${s.malformed} malformed, ${s.reconnects} reconnects`)
    if (verifier === undefined) return ExitCode.ok
    const summary = verifier.summary()
    printSummary(io.stderr, summary)
    return summary.unexplainedMissing > 0 ? ExitCode.failure : ExitCode.ok
  },
})

interface SinkTarget { url: string | undefined, topic: string, clientId: string }

/** The MQTT subscriber or the JetStream consumer, by sink.source. */
async function openSource (config: Config, target: SinkTarget, credentials: () => TlsCredentials, common: SourceOptions): Promise<SinkSource> {
  if (config.sink.source === 'jetstream') {
    const { JetStreamSource, mqttTopicToSubject } = await import('../../sink/jetstream.js')
    const js = config.sink.jetstream
    return await JetStreamSource.open({
      ...common,
      // Checked by the config schema: required when sink.source is jetstream.
      servers: js.servers ?? [],
      credentials,
      stream: js.stream,
      consumer: js.consumer,
      filterSubject: js.subject ?? mqttTopicToSubject(target.topic, js.stream),
      ackWaitMs: js.ackWait,
      maxAckPending: js.maxAckPending,
      pullBatch: js.pullBatch,
      name: target.clientId,
      ...(target.url === undefined ? {} : { mqttUrl: target.url }),
    })
  }
  const [{ SinkSubscriber }, { parseBrokerUrl }] = await Promise.all([import('../../sink/subscriber.js'), import('../../uplink/connect.js')])
  if (target.url === undefined) throw new Error('sinkTarget() checks the URL of an MQTT sink')
  return await SinkSubscriber.open({
    ...common,
    address: parseBrokerUrl(target.url),
    credentials,
    protocolVersion: config.sink.mqttVersion === '5' ? 5 : 4,
    clientId: target.clientId,
    topic: target.topic,
  })
}

function sinkTarget (config: Config, source: string): SinkTarget {
  // A sink subscribes at one broker: sink.url, else the first of uplink.url's list.
  const url = config.sink.url ?? config.uplink.url?.[0]
  if (url === undefined && config.sink.source === 'mqtt') {
    throw new ConfigError('EDGEFWD_ERR_CONFIG_INVALID', [{ source, path: 'sink.url', message: 'is required (or uplink.url): the broker to subscribe at, mqtts://HOST[:PORT]' }])
  }
  if (config.sink.shareGroup !== undefined && config.sink.source === 'jetstream') {
    throw new ConfigError('EDGEFWD_ERR_CONFIG_INVALID', [{ source, path: 'sink.shareGroup', message: 'is for an MQTT sink: JetStream sinks share the work through sink.jetstream.consumer' }])
  }
  if (config.sink.shareGroup !== undefined && config.sink.mqttVersion !== '5') {
    throw new ConfigError('EDGEFWD_ERR_CONFIG_INVALID', [{ source, path: 'sink.shareGroup', message: 'needs sink.mqttVersion 5 (shared subscriptions are an MQTT 5 feature)' }])
  }
  const topic = config.sink.topic ?? `${config.uplink.topicPrefix}/+/events`
  return {
    url,
    topic: config.sink.shareGroup === undefined ? topic : `$share/${config.sink.shareGroup}/${topic}`,
    clientId: config.sink.clientId ?? `edgefwd-sink-${config.gateway.id}`,
  }
}

function printSummary (out: TextSink, s: VerifierSummary): void {
  const lines = [`delivered ${s.delivered}, duplicates ${s.duplicates}, explained missing ${s.explainedMissing}, unexplained missing ${s.unexplainedMissing}`]
  if (s.truncatedReports > 0) lines.push(`note: ${s.truncatedReports} eviction reports were truncated; some gaps may be unexplained for that reason`)
  for (const g of s.unexplainedGaps.slice(0, GAPS_PRINTED)) {
    lines.push(`unexplained gap: gateway ${g.gatewayId} device ${g.deviceId} seq ${g.fromSeq === g.toSeq ? g.fromSeq : `${g.fromSeq}-${g.toSeq}`}`)
  }
  const more = s.unexplainedGaps.length - GAPS_PRINTED
  if (more > 0 || s.unexplainedGapsTruncated) lines.push(`... ${more > 0 ? more : 0}${s.unexplainedGapsTruncated ? '+' : ''} more unexplained gaps not listed`)
  out.write(`${lines.join('\n')}\n`)
}
