/**
 * The one configuration schema: it is both the TypeScript type (`Config`) and the validation.
 * Every key here must be documented in docs/config.md (test/unit/config-docs.test.ts checks).
 *
 * To add a section (ingest, uplink, tls, ...): declare it with `section({...})` below and add it
 * to `configSchema`. Environment variables and `--set` pick it up from the schema's shape.
 */
import { z } from 'zod'
import { checkedSection, duration, section, size } from './fields.js'
import { defaultGatewayId, GATEWAY_ID_MAX_LENGTH, GATEWAY_ID_PATTERN } from './gateway-id.js'
import { formatSize } from './units.js'

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

export const configSchema = z.strictObject({
  gateway,
  store,
  log,
}).readonly()

export type Config = z.output<typeof configSchema>
