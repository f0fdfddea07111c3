/** IngestOptions for tests: everything allowed, no rate limit, no rules; `over` changes what a test needs. */
import type { IngestOptions } from '../../src/ingest/options.js'

export function ingestTestOptions (over: Partial<IngestOptions> = {}): IngestOptions {
  return {
    maxFrameSize: 16384,
    maxClockSkewMs: 300_000,
    allowUnknownDevices: true,
    devices: [],
    rateLimit: { eventsPerSecond: 0, bytesPerSecond: 0, burstMs: 1000 },
    rules: [],
    maxTrackedDevices: 1024,
    ...over
  }
}
