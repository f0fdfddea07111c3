/**
 * The one configuration schema: it is both the TypeScript type (`Config`) and the validation.
 * Every key here must be documented in docs/config.md (test/unit/config-docs.test.ts checks).
 *
 * To add a section (ingest, uplink, tls, ...): declare it with `section({...})` below and add it
 * to `configSchema`. Environment variables and `--set` pick it up from the schema's shape.
 */
import { isIP } from 'node:net'
import { z } from 'zod'
import { checkedSection, duration, oneOrList, section, size, sizeOrOff } from './fields.js'
import { defaultGatewayId, GATEWAY_ID_MAX_LENGTH, GATEWAY_ID_PATTERN } from './gateway-id.js'
import { DEFAULT_MEMORY_BUDGET, MIN_MEMORY_BUDGET } from './memory-budget.js'
import { modbusConnections, mqttSources, SERIAL_BAUDS } from './source-schema.js'
import { formatSize } from './units.js'

export { SERIAL_BAUDS } from './source-schema.js'

// A configuration is parsed once per process: zod's default of compiling a parser for each
// object schema (new Function) costs more than it saves, and is code generation a hardened
// runtime should not need.
z.config({ jitless: true })

const KiB = 1024
const MiB = 1024 * KiB

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export const DURABILITY_MODES = ['sync', 'relaxed'] as const
export const DRAIN_ORDERS = ['oldest-first', 'newest-first'] as const

const gateway = section({
  id: z.string()
    .min(1)
    .max(GATEWAY_ID_MAX_LENGTH)
    .regex(GATEWAY_ID_PATTERN, { error: 'must be printable ASCII without spaces, "/", "+" or "#"' })
    .default(defaultGatewayId),
})

const ttl = duration({ min: 1 }).optional()

const store = checkedSection({
  path: z.string().min(1).default('./data/store'),
  capacity: size({ min: 64 * KiB }).default(256 * MiB),
  overheadFactor: z.number().min(1).max(4).default(1),
  maxEventSize: size({ min: 256 }).default(64 * KiB),
  durability: z.enum(DURABILITY_MODES).default('sync'),
  groupCommit: section({
    window: duration({ min: 0, max: 1000 }).default(5),
    maxEvents: z.number().int().min(1).max(100_000).default(1000),
  }),
  drainOrder: z.enum(DRAIN_ORDERS).default('oldest-first'),
  ttl: section({ low: ttl, normal: ttl, high: ttl, critical: ttl }),
  expiryInterval: duration({ min: 10 }).default(1000),
  memoryFallback: section({
    maxBytes: size().default(16 * MiB),
    retryInterval: duration({ min: 10 }).default(1000),
  }),
  compactAfterDeletes: z.number().int().min(0).default(100_000),
}, (store, ctx) => {
  if (store.maxEventSize > store.capacity) {
    ctx.addIssue({
      code: 'custom',
      path: ['maxEventSize'],
      message: `must not exceed store.capacity (${formatSize(store.capacity)}), got ${formatSize(store.maxEventSize)}`,
    })
  }
})

const log = section({
  level: z.enum(LOG_LEVELS).default('info'),
  redact: z.array(z.string().min(1)).readonly().default([]),
})

/*
 * ingest: what devices may send and where the gateway listens (docs/config.md "ingest").
 * Device ids and the patterns that match them share one alphabet (PROTOCOL.md section 3), with
 * `*` and `?` read as wildcards; listeners are off unless configured.
 */
export const PRIORITY_NAMES = ['low', 'normal', 'high', 'critical'] as const
export const TCP_FORMATS = ['frames', 'jsonl'] as const

const devicePattern = z.string()
  .regex(GATEWAY_ID_PATTERN, { error: 'must be a device id or pattern: printable ASCII without spaces, "/", "+" or "#"' })
  .max(64, { error: 'must be at most 64 characters long' })
const streamPattern = z.string().max(64)
  .regex(/^[\x21-\x7e]*$/, { error: 'must be printable ASCII without spaces' })
// A refine (a "custom" issue) rather than .regex(): the error message then does not echo the
// value, which for a near-miss typo would be most of a secret key.
const hexKey = z.string()
  .refine(k => /^(?:[0-9a-fA-F]{2}){16,64}$/.test(k), { error: 'must be an even number of hex digits, 32 to 128 (a 16 to 64 byte key); the value is not shown' })
const eventsPerSecond = z.number().min(0).max(10_000_000)
const burst = duration({ min: 1, max: 3_600_000 })
const listenAddress = z.string().refine(a => isIP(a) !== 0, { error: 'must be an IPv4 or IPv6 address' })
const port = z.number().int().min(0).max(65535)

const ingest = checkedSection({
  maxFrameSize: size({ min: 64, max: MiB }).default(16 * KiB),
  maxClockSkew: duration({ min: 1 }).default(5 * 60_000),
  allowUnknownDevices: z.boolean().default(true),
  devices: z.record(z.string(), z.strictObject({
    key: hexKey.optional(),
    rateLimit: z.strictObject({
      eventsPerSecond: eventsPerSecond.optional(),
      bytesPerSecond: size().optional(),
      burst: burst.optional(),
    }).readonly().optional(),
  }).readonly()).readonly().default({}),
  rateLimit: section({
    eventsPerSecond: eventsPerSecond.default(1000),
    bytesPerSecond: size().default(MiB),
    burst: burst.default(1000),
  }),
  rules: z.array(z.strictObject({
    device: devicePattern.optional(),
    stream: streamPattern.optional(),
    priority: z.enum(PRIORITY_NAMES).optional(),
    ttl: duration({ min: 1 }).optional(),
  }).refine(r => r.priority !== undefined || r.ttl !== undefined, { error: 'a rule must set priority, ttl or both' })
    .readonly()).readonly().default([]),
  maxTrackedDevices: z.number().int().min(16).max(1_000_000).default(1024),
  backpressure: section({
    connectionEvents: z.number().int().min(1).max(1_000_000).default(4096),
    pendingEvents: z.number().int().min(1).max(10_000_000).default(16_384),
  }),
  ackTimeout: duration({ min: 10 }).default(10_000),
  udp: z.strictObject({
    address: listenAddress.default('0.0.0.0'),
    port,
    receiveBufferSize: size({ min: 4 * KiB }).optional(),
  }).readonly().optional(),
  tcp: z.array(z.strictObject({
    address: listenAddress.default('0.0.0.0'),
    port,
    format: z.enum(TCP_FORMATS).default('frames'),
  }).readonly()).readonly().default([]),
  unix: z.strictObject({ path: z.string().min(1) }).readonly().optional(),
  serial: z.array(z.strictObject({
    path: z.string().min(1),
    baud: z.number().refine(b => (SERIAL_BAUDS as readonly number[]).includes(b),
      { error: `must be one of ${SERIAL_BAUDS.join(', ')}` }).default(115200),
  }).readonly()).readonly().default([]),
  stdin: z.boolean().default(false),
  mqtt: mqttSources,
  modbus: modbusConnections,
}, (ingest, ctx) => {
  // Checked here rather than as the record's key schema: zod reports a bad record key only as
  // "Invalid key in record", without saying what a key must look like.
  for (const id of Object.keys(ingest.devices)) {
    const checked = devicePattern.safeParse(id)
    if (!checked.success) {
      ctx.addIssue({ code: 'custom', path: ['devices', id], message: `${checked.error.issues[0]?.message ?? 'invalid'}, got ${JSON.stringify(id)}` })
    }
  }
  const modbusIds = new Set<string>()
  for (const [c, connection] of ingest.modbus.entries()) {
    for (const [d, device] of connection.devices.entries()) {
      if (modbusIds.has(device.id)) ctx.addIssue({ code: 'custom', path: ['modbus', c, 'devices', d, 'id'], message: `${JSON.stringify(device.id)} is already a Modbus device` })
      modbusIds.add(device.id)
    }
  }
  if (!ingest.allowUnknownDevices && Object.keys(ingest.devices).length === 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['allowUnknownDevices'],
      message: 'is false but ingest.devices lists no device: every frame would be rejected',
    })
  }
})

/*
 * tls: the gateway's client certificate, its key and the CA that verifies the broker
 * (docs/config.md "tls"; loaded and validated by src/pki/material.ts, watched by reloader.ts).
 * The paths are optional here: the uplink requires them when its broker URL is mqtts.
 */
const tlsPath = z.string().min(1).optional()
// The name of an environment variable, not its value: the passphrase never sits in the config.
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be an environment variable name (letters, digits, "_")' })

const tls = checkedSection({
  ca: tlsPath,
  cert: tlsPath,
  key: tlsPath,
  keyPassphraseFile: tlsPath,
  keyPassphraseEnv: envName.optional(),
  clientCa: tlsPath,
  checkClientChain: z.boolean().default(true),
  expiryWarning: duration({ min: 0 }).default(30 * 86_400_000),
  watch: z.boolean().default(true),
  reloadDebounce: duration({ min: 0, max: 60_000 }).default(500),
}, (tls, ctx) => {
  if (tls.keyPassphraseFile !== undefined && tls.keyPassphraseEnv !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['keyPassphraseEnv'], message: 'set either tls.keyPassphraseFile or tls.keyPassphraseEnv, not both' })
  }
})

export const MQTT_VERSIONS = ['5', '3.1.1'] as const
export const COMPRESSION_MODES = ['auto', 'none', 'gzip', 'deflate'] as const
export const HEARTBEAT_FORMATS = ['protobuf', 'json'] as const

const BROKER_URL = /^(mqtts|ssl|tls):\/\/[^/\s]+$/
const BROKER_URL_PROBLEM = 'must be mqtts://HOST[:PORT] (edgefwd connects with mutual TLS only)'
const brokerUrl = z.string().refine(u => BROKER_URL.test(u), { error: BROKER_URL_PROBLEM })
/** uplink.url: one broker, or the nodes of a cluster to fail over between (src/uplink/brokers.ts). */
const brokerUrls = oneOrList(u => BROKER_URL.test(u) ? undefined : `${BROKER_URL_PROBLEM}, got ${JSON.stringify(u)}`, { max: 16, what: 'mqtts://HOST[:PORT]' })
export const FAILOVER_ORDERS = ['ordered', 'random'] as const
// Topic levels edgefwd builds on: no wildcards, no empty level, no leading or trailing "/".
const topicPrefix = z.string().regex(/^[^#+/\s]+(?:\/[^#+/\s]+)*$/, { error: 'must be topic levels separated by "/", without "+", "#" or spaces' })

const uplink = checkedSection({
  url: brokerUrls.optional(),
  failover: z.enum(FAILOVER_ORDERS).default('ordered'),
  mqttVersion: z.enum(MQTT_VERSIONS).default('5'),
  topicPrefix: topicPrefix.default('edgefwd'),
  window: z.number().int().min(1).max(1000).default(8),
  batch: section({
    maxEvents: z.number().int().min(1).max(100_000).default(500),
    maxBytes: size({ min: 1024, max: 16 * MiB }).default(128 * KiB),
    linger: duration({ min: 0, max: 10_000 }).default(50),
  }),
  compression: z.enum(COMPRESSION_MODES).default('auto'),
  compressionLevel: z.number().int().min(1).max(9).default(1),
  pubackTimeout: duration({ min: 100 }).default(10_000),
  connectTimeout: duration({ min: 100 }).default(10_000),
  keepalive: duration({ min: 1000, max: 18 * 3_600_000 }).default(30_000),
  backoff: section({
    initial: duration({ min: 1 }).default(500),
    // 10 s, not 60: see src/backoff.ts (a fleet back within ~3 s of its broker, p99 9 s).
    max: duration({ min: 1 }).default(10_000),
    multiplier: z.number().min(1).max(10).default(2),
    refusedMin: duration({ min: 0 }).default(30_000),
  }),
  rateLimit: size({ min: 1024 }).optional(),
  dailyBudget: size({ min: 1024 }).optional(),
  heartbeatInterval: duration({ min: 1000 }).default(60_000),
  heartbeatFormat: z.enum(HEARTBEAT_FORMATS).default('protobuf'),
  stopTimeout: duration({ min: 0, max: 600_000 }).default(5000),
  batchSeqFile: z.string().min(1).optional(),
}, (u, ctx) => {
  if (u.backoff.max < u.backoff.initial) ctx.addIssue({ code: 'custom', path: ['backoff', 'max'], message: 'must be at least uplink.backoff.initial' })
})

/*
 * sink: the receiving side (`edgefwd sink`). From an MQTT subscription (one broker; a share
 * group on MQTT 5), or from a JetStream durable consumer that N sinks share (src/sink/jetstream.ts).
 */
export const SINK_SOURCES = ['mqtt', 'jetstream'] as const
const NATS_URL = /^(nats|tls):\/\/[^/\s]+$/
const natsUrls = oneOrList(u => NATS_URL.test(u) ? undefined : `must be nats://HOST:PORT (the sink logs in with TLS and its client certificate), got ${JSON.stringify(u)}`,
  { max: 16, what: 'nats://HOST:PORT' })

const sink = checkedSection({
  url: brokerUrl.optional(),
  mqttVersion: z.enum(MQTT_VERSIONS).default('5'),
  topic: z.string().min(1).optional(),
  shareGroup: z.string().regex(/^[^#+/\s]+$/, { error: 'must be one topic level: no "/", "+", "#" or spaces' }).optional(),
  clientId: z.string().min(1).max(128).optional(),
  out: z.string().min(1).optional(),
  source: z.enum(SINK_SOURCES).default('mqtt'),
  jetstream: section({
    servers: natsUrls.optional(),
    stream: z.string().regex(/^[^\s.*>]{1,255}$/, { error: 'must be a JetStream stream name: no spaces, ".", "*" or ">"' }).default('$MQTT_msgs'),
    consumer: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { error: 'must be 1 to 64 letters, digits, "-" or "_"' }).default('edgefwd-sinks'),
    subject: z.string().min(1).optional(),
    ackWait: duration({ min: 1000, max: 3_600_000 }).default(30_000),
    maxAckPending: z.number().int().min(1).max(100_000).default(1000),
    pullBatch: z.number().int().min(1).max(1000).default(64),
  }),
}, (s, ctx) => {
  if (s.source === 'jetstream' && s.jetstream.servers === undefined) {
    ctx.addIssue({ code: 'custom', path: ['jetstream', 'servers'], message: 'is required when sink.source is jetstream: the NATS nodes, nats://HOST:PORT' })
  }
})

/*
 * observe: the metrics and health endpoint (docs/operations.md). Loopback by default: a
 * gateway's metrics are for an agent on the gateway or a scrape over a VPN, not the LAN.
 */
const hostPort = z.string().refine(a => {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(a)
  return m !== null && (m[1] === undefined ? isIP(m[2] ?? '') === 4 : isIP(m[1]) === 6) && Number(m[3]) <= 65535
}, { error: 'must be ADDRESS:PORT, an IPv4 or [IPv6] address, e.g. 127.0.0.1:9464 or [::1]:9464' })

const observe = section({
  metrics: section({
    enabled: z.boolean().default(true),
    listen: hostPort.default('127.0.0.1:9464'),
    readyOfflineGrace: duration({ min: 0 }).default(300_000),
  }),
})

/*
 * control: signed remote configuration (src/control, docs/operations.md "Remote configuration").
 * Off unless at least one operator public key is given.
 */
const control = section({
  publicKeys: z.array(z.string().min(1)).readonly().default([]),
  fleetTopic: z.string().regex(/^[^#+\s]+$/, { error: 'must be an MQTT topic without "+", "#" or spaces' }).optional(),
  probation: duration({ min: 1000, max: 86_400_000 }).default(120_000),
  stateDir: z.string().min(1).optional(),
})

/*
 * mcp: the agent-facing interface (src/agent on the gateway's side, src/mcp for `edgefwd mcp`,
 * docs/operations.md "Agents (MCP)"). The control socket is on by default and read-only:
 * remediation exists only when this file names the actions it allows. Never set remotely
 * (control/update.ts): who may change a gateway is decided on the gateway.
 */
export const REMEDIATION_ACTIONS = ['reload_tls', 'reconnect_uplink', 'compact_store'] as const
export type RemediationAction = typeof REMEDIATION_ACTIONS[number]
const remediation = z.strictObject({
  allow: z.array(z.enum(REMEDIATION_ACTIONS)).min(1).readonly(),
  minInterval: duration({ min: 1000, max: 86_400_000 }).default(60_000),
  confirmWithin: duration({ min: 5000, max: 3_600_000 }).default(120_000),
}).readonly()
const mcp = section({
  socket: z.string().min(1).optional(),
  audit: section({
    file: z.string().min(1).optional(),
    maxBytes: size({ min: 64 * KiB, max: 1024 * MiB }).default(8 * MiB),
  }),
  objectives: section({
    delivery: z.number().gt(0).lt(1).default(0.999),
    lagP99: duration({ min: 1 }).default(60_000),
  }),
  remediation: remediation.optional(),
  http: z.strictObject({
    listen: hostPort.default('127.0.0.1:7465'),
    tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).readonly().optional(),
    tokenFile: z.string().min(1).optional(),
  }).readonly().optional(),
})

/*
 * process: what the forwarder's process may use. `memory` is the RSS budget every in-memory bound
 * is derived from (src/config/memory-budget.ts, docs/config.md "process"); `off` keeps each
 * configured bound as it is and leaves V8's heap unlimited (Node's defaults).
 */
const memory = sizeOrOff({ min: MIN_MEMORY_BUDGET, max: 64 * 1024 * MiB })
const processSection = section({
  memory: memory.default(DEFAULT_MEMORY_BUDGET),
})

export const configSchema = z.strictObject({
  gateway,
  store,
  log,
  ingest,
  tls,
  uplink,
  sink,
  observe,
  control,
  mcp,
  process: processSection,
}).readonly()

export type Config = z.output<typeof configSchema>
