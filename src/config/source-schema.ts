/**
 * The ingest sources: `ingest.mqtt` (topics of a local broker) and `ingest.modbus` (polled
 * registers), documented in docs/config.md "ingest.mqtt" and "ingest.modbus". Kept apart from
 * schema.ts, which includes them in the `ingest` section.
 */
import { z } from 'zod'
import { duration, size } from './fields.js'

const KiB = 1024
const MiB = 1024 * KiB

export const MQTT_SOURCE_VERSIONS = ['5', '3.1.1'] as const
export const MQTT_PAYLOADS = ['json', 'number', 'text', 'raw'] as const
export const MODBUS_TABLES = ['holding', 'input', 'coil', 'discrete'] as const
export const MODBUS_TYPES = ['int16', 'uint16', 'int32', 'uint32', 'float32', 'bool'] as const
export const WORD_ORDERS = ['big', 'little'] as const
export const PARITIES = ['none', 'even', 'odd'] as const
/** The rates stty(1) on Linux accepts by number (ingest.serial, ingest.modbus rtu). */
export const SERIAL_BAUDS = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800,
  500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000] as const
export const serialBaud = z.number().refine(b => (SERIAL_BAUDS as readonly number[]).includes(b),
  { error: `must be one of ${SERIAL_BAUDS.join(', ')}` })

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be an environment variable name (letters, digits, "_")' })
/** A device id: 1-64 printable ASCII bytes without "/", "+", "#" (PROTOCOL.md §3). */
const deviceId = z.string().regex(/^[\x21-\x7e]{1,64}$/, { error: 'must be 1 to 64 printable ASCII characters' })
  .refine(s => !/[/+#]/.test(s), { error: 'must not contain "/", "+" or "#" (it becomes an MQTT topic level)' })
const streamName = z.string().regex(/^[\x21-\x7e]{0,64}$/, { error: 'must be at most 64 printable ASCII characters, no spaces' })

/** `{name}` in a topic filter or a device/stream template. */
export const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g

/**
 * A topic filter whose levels may be `{name}` (one level, captured), `+`, or a last `#`; the
 * subscription uses `+` for each `{name}`. Undefined when fine, else the problem.
 */
export function topicFilterProblem (filter: string): string | undefined {
  if (filter.length === 0) return 'is empty'
  if (filter.length > 1024) return 'is longer than 1024 characters'
  const levels = filter.split('/')
  const names = new Set<string>()
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string
    if (level === '#') {
      if (i !== levels.length - 1) return '"#" must be the last level'
      continue
    }
    if (level === '+') continue
    const placeholder = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(level)
    if (placeholder !== null) {
      const name = placeholder[1] as string
      if (names.has(name)) return `{${name}} appears twice`
      names.add(name)
      continue
    }
    if (/[#+{}]/.test(level)) return `level ${JSON.stringify(level)}: "+", "#" and {name} must be a whole level`
  }
  return undefined
}

export function placeholders (s: string): string[] {
  return Array.from(s.matchAll(PLACEHOLDER), m => m[1] as string)
}

const mqttTopic = z.strictObject({
  filter: z.string().superRefine((f, ctx) => {
    const problem = topicFilterProblem(f)
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem })
  }),
  device: z.string().min(1).max(256).default('{device}'),
  stream: z.string().max(256).default('{stream}'),
  payload: z.enum(MQTT_PAYLOADS).default('json'),
  path: z.string().min(1).max(256).optional(),
  tags: z.record(z.string().min(1).max(32), z.string().min(1).max(256)).readonly().optional(),
  qos: z.union([z.literal(0), z.literal(1)]).default(1),
}).superRefine((topic, ctx) => {
  const captured = new Set(placeholders(topic.filter))
  for (const key of ['device', 'stream'] as const) {
    for (const name of placeholders(topic[key])) {
      if (!captured.has(name)) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `uses {${name}}, which the filter ${JSON.stringify(topic.filter)} does not capture` +
            (topic[key] === `{${key}}` ? `: set ${key} (e.g. ${key}: ${key === 'device' ? 'my-device' : 'readings'}) or put {${key}} in the filter` : ''),
        })
      }
    }
  }
  if (topic.payload !== 'json') {
    if (topic.path !== undefined) ctx.addIssue({ code: 'custom', path: ['path'], message: `applies to payload json only, not ${topic.payload}` })
    if (topic.tags !== undefined) ctx.addIssue({ code: 'custom', path: ['tags'], message: `applies to payload json only, not ${topic.payload}` })
  }
  if (topic.tags !== undefined && Object.keys(topic.tags).length > 8) {
    ctx.addIssue({ code: 'custom', path: ['tags'], message: 'an event has at most 8 tags' })
  }
}).readonly()

const mqttSource = z.strictObject({
  url: z.string().regex(/^(mqtts?|tcp|ssl|tls):\/\/[^/\s]+$/, { error: 'must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT]' }),
  mqttVersion: z.enum(MQTT_SOURCE_VERSIONS).default('5'),
  clientId: z.string().min(1).max(128).optional(),
  username: z.string().min(1).optional(),
  passwordEnv: envName.optional(),
  tls: z.strictObject({
    ca: z.string().min(1).optional(),
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
  }).readonly().optional(),
  keepalive: duration({ min: 1000, max: 65_535_000 }).default(30_000),
  sessionExpiry: duration({ min: 0, max: 4_294_967_295_000 }).default(7 * 86_400_000),
  inFlight: z.number().int().min(1).max(65_535).default(256),
  maxPayload: size({ min: 64, max: 16 * MiB }).default(64 * KiB),
  topics: z.array(mqttTopic).min(1).max(64).readonly(),
}).superRefine((s, ctx) => {
  if ((s.tls?.cert === undefined) !== (s.tls?.key === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['tls'], message: 'a client certificate needs both cert and key' })
  }
  if (s.tls !== undefined && !/^(mqtts|ssl|tls):/.test(s.url)) {
    ctx.addIssue({ code: 'custom', path: ['tls'], message: `is set but url ${JSON.stringify(s.url)} is not mqtts://` })
  }
}).readonly()

export const mqttSources = z.array(mqttSource).max(16).readonly().default([])

const modbusRegister = z.strictObject({
  name: z.string().min(1).max(64),
  stream: streamName.optional(),
  table: z.enum(MODBUS_TABLES).default('holding'),
  address: z.number().int().min(0).max(65_535),
  type: z.enum(MODBUS_TYPES).optional(),
  wordOrder: z.enum(WORD_ORDERS).optional(),
  scale: z.number().finite().default(1),
  offset: z.number().finite().default(0),
}).superRefine((r, ctx) => {
  const bits = r.table === 'coil' || r.table === 'discrete'
  if (bits && r.type !== undefined && r.type !== 'bool') {
    ctx.addIssue({ code: 'custom', path: ['type'], message: `a ${r.table} is one bit: its type is bool, got ${r.type}` })
  }
  if (!bits && r.type === 'bool') {
    ctx.addIssue({ code: 'custom', path: ['type'], message: `bool is for coil and discrete; a ${r.table} register is int16, uint16, int32, uint32 or float32` })
  }
  const words = r.type === 'int32' || r.type === 'uint32' || r.type === 'float32' ? 2 : 1
  if (r.address + words > 65_536) ctx.addIssue({ code: 'custom', path: ['address'], message: `a ${r.type ?? 'uint16'} at ${r.address} runs past address 65535` })
}).readonly()

const modbusDevice = z.strictObject({
  id: deviceId,
  unitId: z.number().int().min(0).max(255).default(1),
  interval: duration({ min: 100, max: 86_400_000 }).default(10_000),
  stream: streamName.default('modbus'),
  wordOrder: z.enum(WORD_ORDERS).default('big'),
  registers: z.array(modbusRegister).min(1).max(32).readonly(),
}).superRefine((d, ctx) => {
  const names = new Set<string>()
  for (const [i, r] of d.registers.entries()) {
    const key = `${r.stream ?? d.stream}\u0000${r.name}`
    if (names.has(key)) ctx.addIssue({ code: 'custom', path: ['registers', i, 'name'], message: `${JSON.stringify(r.name)} is already a register of stream ${JSON.stringify(r.stream ?? d.stream)}` })
    names.add(key)
  }
}).readonly()

const modbusConnection = z.strictObject({
  tcp: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65_535).default(502),
  }).readonly().optional(),
  rtu: z.strictObject({
    path: z.string().min(1),
    baud: serialBaud.default(9600),
    parity: z.enum(PARITIES).default('none'),
    dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
    stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
  }).readonly().optional(),
  timeout: duration({ min: 10, max: 60_000 }).default(1000),
  devices: z.array(modbusDevice).min(1).max(247).readonly(),
}).superRefine((c, ctx) => {
  if ((c.tcp === undefined) === (c.rtu === undefined)) {
    ctx.addIssue({ code: 'custom', path: [], message: 'set exactly one of tcp and rtu' })
  }
}).readonly()

export const modbusConnections = z.array(modbusConnection).max(64).readonly().default([])
