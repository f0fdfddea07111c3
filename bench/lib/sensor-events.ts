/**
 * A backlog of stored events for the drain benches ("random-looking", ~200 bytes stored each):
 * deviceId one of 50 chosen at random, deviceSeq increasing per device, gatewayTimeMs increasing,
 * stream 'telemetry', an 8-number map of which 4 are uniform random readings at sensor resolution
 * (t 2 decimals, rh 1, p 2, v 3), co2 a random integer and 3 slowly varying values, tags
 * site/line. Not raw random bytes, which no compression shrinks.
 */
import type { EventStore } from '../../src/store/index.js'
import type { EventRecord } from '../../src/types.js'

const DEVICES = 50
const round = (x: number, decimals: number): number => Math.round(x * 10 ** decimals) / 10 ** decimals

/** The events' state across fills: each device's last seq and the gateway clock go on counting. */
export class SensorEventSource {
  private readonly seqs = new Array<number>(DEVICES).fill(0)
  private clock = Date.now()

  event (i: number): EventRecord {
    const d = Math.floor(Math.random() * DEVICES)
    this.seqs[d] = (this.seqs[d] ?? 0) + 1
    this.clock += Math.random() < 0.1 ? 1 : 0
    return {
      deviceId: `sensor-${String(d).padStart(4, '0')}`,
      deviceSeq: this.seqs[d] ?? 0,
      gatewayTimeMs: this.clock,
      priority: 1,
      stream: 'telemetry',
      value: {
        kind: 'numbers',
        numbers: {
          t: round(15 + Math.random() * 15, 2),
          rh: round(30 + Math.random() * 40, 1),
          p: round(990 + Math.random() * 40, 2),
          v: round(3.1 + Math.random() * 0.3, 3),
          co2: 400 + Math.floor(Math.random() * 400),
          pm25: 7.5 + (i % 5),
          i: 0.12,
          lux: 300 + (i % 100)
        }
      },
      tags: { site: 'plant-7', line: 'L3' }
    }
  }
}

/** Appends `total` events from `source` to the store. */
export async function appendSensorEvents (store: EventStore, source: SensorEventSource, total: number): Promise<void> {
  // Appends of 1000 from 8 writers: the store's fast path (bench/store-bench.ts).
  let left = total
  let i = 0
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (left > 0) {
      const n = Math.min(1000, left)
      left -= n
      const batch: EventRecord[] = []
      for (let k = 0; k < n; k++) batch.push(source.event(i++))
      await store.append(batch)
    }
  }))
}
