/**
 * A Tasmota-like energy plug for the simulation: an MQTT client of the local broker
 * (local-broker.ts) publishing telemetry as Tasmota does, `tele/<topic>/SENSOR` with
 *
 *   {"Time":"2024-05-01T12:00:00","ENERGY":{"TotalStartTime":"...","Total":1234.567,"Yesterday":2.345,
 *    "Today":0.042,"Period":1,"Power":412,"ApparentPower":433,"ReactivePower":134,"Factor":0.95,
 *    "Voltage":231,"Current":1.874}}
 *
 * at QoS 1 (Tasmota's default is QoS 0; QoS 1 is what lets the broker and the forwarder
 * acknowledge each message, and what `ingest.mqtt` is built for). The forwarder maps the ENERGY
 * object to an event's numbers (`path: ENERGY`; the strings, TotalStartTime, are left out).
 *
 * Message numbers: Tasmota numbers nothing, and the forwarder gives these events its own seqs, so
 * the simulation needs something in the message that says which one it is. Here it is the energy
 * counter itself: every message reports exactly one more watt-hour, so `Total` (kWh, three
 * decimals, as Tasmota prints it) is `(baseWh + n) / 1000` for message n, `Today` is n / 1000 and
 * `Period` (Wh since the last telemetry) is 1. That is a plausible plug (1 Wh between reports),
 * the counter only ever grows as a real one does, and numberOf() reads n back exactly from the
 * double the event carries (Math.round(Total × 1000) − baseWh; exact far beyond any run's count).
 *
 * "Sent" is what the broker took: a message counts once its PUBACK came back (acked()).
 */
import { connect, type MqttClient } from 'mqtt'

export interface TasmotaSpec { id: string, ratePerSecond: number }

export interface TasmotaOptions {
  now?: () => number
  timeoutMs?: number
  /** Called with each message number the broker acknowledged. */
  onAcked?: (n: number) => void
}

/** The topic of a device's telemetry, and the forwarder's filter for it. */
export const tasmotaTopic = (id: string): string => `tele/${id}/SENSOR`
export const TASMOTA_FILTER = 'tele/{device}/SENSOR'
/** The device id in a telemetry topic, or undefined. */
export function tasmotaDeviceOf (topic: string): string | undefined {
  const m = /^tele\/([^/]+)\/SENSOR$/.exec(topic)
  return m?.[1]
}

/** Tasmota's `Time`: local time, seconds, no zone. UTC here, so runs read the same anywhere. */
function tasmotaTime (ms: number): string {
  return new Date(ms).toISOString().slice(0, 19)
}

const round = (v: number, digits: number): number => Math.round(v * 10 ** digits) / 10 ** digits

export class TasmotaDevice {
  readonly id: string
  readonly ratePerSecond: number
  /** When message n was produced is producedAt[n - 1]. */
  private readonly producedAt: number[] = []
  private readonly acked = new Set<number>()
  private failed = 0
  private readonly baseWh: number
  private readonly yesterdayKwh: number
  private readonly startTime: string
  private powerW: number

  private constructor (spec: TasmotaSpec, private readonly client: MqttClient, private readonly random: () => number, private readonly now: () => number,
    private readonly onAcked: (n: number) => void) {
    this.id = spec.id
    this.ratePerSecond = spec.ratePerSecond
    this.baseWh = 100_000 + Math.floor(random() * 9_000_000)
    this.yesterdayKwh = round(1 + random() * 9, 3)
    this.powerW = 20 + Math.floor(random() * 2000)
    this.startTime = tasmotaTime(now() - Math.floor(random() * 400 * 86_400_000))
  }

  /** Connects to the broker; resolves once connected (rejects after timeoutMs). */
  static async connect (spec: TasmotaSpec, url: string, random: () => number, options: TasmotaOptions = {}): Promise<TasmotaDevice> {
    const timeoutMs = options.timeoutMs ?? 10_000
    const client = connect(url, { clientId: `sim-tasmota-${spec.id}`, protocolVersion: 4, clean: true, keepalive: 30, reconnectPeriod: 250, connectTimeout: timeoutMs })
    client.on('error', () => {})
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { reject(new Error(`${spec.id}: no connection to the local broker within ${timeoutMs} ms`)) }, timeoutMs)
        client.once('connect', () => { clearTimeout(timer); resolve() })
      })
    } catch (err) {
      client.end(true)
      throw err
    }
    return new TasmotaDevice(spec, client, random, options.now ?? Date.now, options.onAcked ?? (() => {}))
  }

  /** The SENSOR payload of message n at time t (and the plug's power moves on a little). */
  payload (n: number, t: number): string {
    this.powerW = Math.min(3500, Math.max(5, this.powerW + (this.random() - 0.5) * 30))
    const voltage = Math.round(229 + this.random() * 4)
    const factor = round(0.9 + this.random() * 0.09, 2)
    const apparent = this.powerW / factor
    return JSON.stringify({
      Time: tasmotaTime(t),
      ENERGY: {
        TotalStartTime: this.startTime,
        Total: (this.baseWh + n) / 1000,
        Yesterday: this.yesterdayKwh,
        Today: n / 1000,
        Period: 1,
        Power: Math.round(this.powerW),
        ApparentPower: Math.round(apparent),
        ReactivePower: Math.round(Math.sqrt(Math.max(0, apparent ** 2 - this.powerW ** 2))),
        Factor: factor,
        Voltage: voltage,
        Current: round(apparent / voltage, 3),
      },
    })
  }

  /** The message number of an event's ENERGY numbers (or of a SENSOR payload's ENERGY object), or undefined. */
  numberOf (energy: Readonly<Record<string, unknown>> | undefined): number | undefined {
    const total = energy?.Total
    if (typeof total !== 'number' || !Number.isFinite(total)) return undefined
    const n = Math.round(total * 1000) - this.baseWh
    return n >= 1 && n <= this.producedAt.length ? n : undefined
  }

  /** Publishes the next message at QoS 1. */
  produce (): void {
    const t = Math.floor(this.now())
    this.producedAt.push(t)
    const n = this.producedAt.length
    this.client.publish(tasmotaTopic(this.id), this.payload(n, t), { qos: 1 }, (err) => {
      if (err === undefined || err === null) {
        this.acked.add(n)
        this.onAcked(n)
      } else {
        this.failed++
      }
    })
  }

  /** Messages published so far. */
  published (): number { return this.producedAt.length }
  producedAtMs (n: number): number | undefined { return this.producedAt[n - 1] }
  /** The numbers the broker acknowledged (PUBACK), in order. */
  ackedNumbers (): number[] { return [...this.acked].sort((a, b) => a - b) }
  ackedCount (): number { return this.acked.size }
  /** Published, neither acknowledged nor failed yet. */
  unacked (): number { return this.producedAt.length - this.acked.size - this.failed }

  async close (): Promise<void> {
    await new Promise<void>(resolve => {
      const timer = setTimeout(resolve, 2000)
      this.client.end(true, {}, () => { clearTimeout(timer); resolve() })
    })
  }
}
