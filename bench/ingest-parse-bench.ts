/**
 * `npm run bench:ingest-parse`: frames/s through StreamDeframer + parseFrame on this machine, for
 * a typical 67-byte event frame (device id, seq, device time, uptime, priority, stream, one
 * number, one tag) arriving in 64 KiB reads, as a busy TCP or unix-socket connection delivers it.
 * Also the same frame as UDP datagrams (parseFrame alone), and the msgpack and JSON-line paths.
 * Prints a table, then one JSON line (the last line): {"parse_eps": N} and the other figures.
 *
 * Environment: BENCH_FRAMES (default 3000000, for the main figure), BENCH_ROUNDS (default 5; the
 * best round counts, as a shared VM's neighbours make single rounds noisy).
 */
import { Buffer } from 'node:buffer'
import {
  StreamDeframer, encodeDeviceFrame, encodeFrame, encodeJsonEvent, encodeMsgpackEvent, encodeStreamFrame, parseFrame, parseJsonLine,
  DEFAULT_MAX_FRAME_SIZE, type DeviceEvent, type FrameResult
} from '../src/ingest/index.js'

const FRAMES = Number(process.env.BENCH_FRAMES ?? 3_000_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const CHUNK = 64 * 1024

const event: DeviceEvent = {
  deviceId: 'sensor-42',
  seq: 123_456,
  deviceTimeMs: 1_700_000_000_000,
  uptimeMs: 86_400_000,
  priority: 1,
  stream: 'telemetry',
  value: { kind: 'number', number: 21.5 },
  tags: { site: 'p7' }
}
const opts = { maxFrameSize: DEFAULT_MAX_FRAME_SIZE }

let accepted = 0
let rejected = 0
function count (r: FrameResult): void {
  if (r.ok) accepted++
  else rejected++
}

/** Best rate over ROUNDS runs of `run`, which handles `n` frames. */
function best (n: number, run: () => void): number {
  let rate = 0
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = process.hrtime.bigint()
    run()
    const s = Number(process.hrtime.bigint() - t0) / 1e9
    rate = Math.max(rate, n / s)
  }
  return rate
}

function streamRate (): { rate: number, frameBytes: number } {
  const one = encodeStreamFrame({ type: 'event', body: encodeDeviceFrame(event) })
  // Chunks cut at arbitrary offsets, so about one frame per chunk spans two reads.
  const perChunk = Math.floor(CHUNK / one.length)
  const stream = Buffer.concat(Array.from({ length: perChunk * 16 }, () => one))
  const chunks: Uint8Array[] = []
  for (let p = 0; p < stream.length; p += CHUNK - 7) chunks.push(stream.subarray(p, Math.min(stream.length, p + CHUNK - 7)))
  const perPass = perChunk * 16
  const passes = Math.max(1, Math.round(FRAMES / perPass))
  const deframer = new StreamDeframer(opts, count)
  const rate = best(passes * perPass, () => {
    for (let i = 0; i < passes; i++) for (const c of chunks) deframer.push(c)
  })
  return { rate, frameBytes: one.length }
}

function datagramRate (): number {
  const frame = encodeFrame({ type: 'event', body: encodeDeviceFrame(event) })
  const n = Math.round(FRAMES / 3)
  return best(n, () => {
    for (let i = 0; i < n; i++) count(parseFrame(frame, opts))
  })
}

function msgpackRate (): number {
  const frame = encodeFrame({ type: 'event-msgpack', body: encodeMsgpackEvent(event) })
  const n = Math.round(FRAMES / 10)
  return best(n, () => {
    for (let i = 0; i < n; i++) count(parseFrame(frame, opts))
  })
}

function jsonRate (): number {
  const line = encodeJsonEvent(event)
  const n = Math.round(FRAMES / 10)
  return best(n, () => {
    for (let i = 0; i < n; i++) count(parseJsonLine(line, opts))
  })
}

const stream = streamRate()
const datagram = datagramRate()
const msgpack = msgpackRate()
const json = jsonRate()
if (rejected !== 0) throw new Error(`${rejected} benchmark frames were rejected`)

const rows: Array<[string, string]> = [
  [`stream (COBS, ${stream.frameBytes} bytes with 0x00, 64 KiB reads)`, `${Math.round(stream.rate).toLocaleString()} frames/s`],
  ['datagram (parseFrame)', `${Math.round(datagram).toLocaleString()} frames/s`],
  ['event-msgpack datagram', `${Math.round(msgpack).toLocaleString()} frames/s`],
  ['JSON line', `${Math.round(json).toLocaleString()} lines/s`]
]
const width = Math.max(...rows.map(([k]) => k.length))
console.log(`edgefwd ingest parse benchmark — Node ${process.version}, best of ${ROUNDS} rounds, ${accepted.toLocaleString()} frames accepted in all`)
for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`)
console.log(JSON.stringify({
  parse_eps: Math.round(stream.rate),
  datagram_eps: Math.round(datagram),
  msgpack_eps: Math.round(msgpack),
  jsonl_eps: Math.round(json)
}))
