/**
 * Keeps mqtt-packet's cache of encoded packet lengths out of Node's shared Buffer pool.
 *
 * mqtt-packet's writer (writeToStream.js) caches, for every remaining length below 16384 it has
 * written, the 1-2 byte Variable Byte Integer that encodes it, and never evicts. Each entry is made
 * by `numbers.genBufVariableByteInt` with `Buffer.allocUnsafe(4)`: a slice of the shared Buffer
 * pool, which keeps its whole pool block alive (Buffer.poolSize: 8 KiB on Node 20, 64 KiB on
 * Node 24). A forwarder publishes batches of every size, so each new length pins the block that
 * happened to be current: measured here in a heap snapshot after 100 s of the footprint soak on
 * Node 24, 761 cache entries held 47.6 MB of pool blocks, and it would go on to 16384 x 64 KiB
 * (1 GiB) over a long run (upstream: mqttjs/mqtt-packet#163, unfixed in 9.0.2).
 *
 * The writer takes `numbers.genBufVariableByteInt` once, when it loads. This module replaces it
 * before then (it is imported ahead of `mqtt` or `mqtt-packet` wherever either is imported: the
 * uplink, the sink, the ingest MQTT source) with one that returns,
 * for each length the writer caches, one buffer carved from small unpooled blocks: the whole
 * cache then holds at most 32 KiB of data (16384 lengths x 2 bytes) in 1 KiB blocks.
 * `lengthCacheUnpooled()` tells whether the writer in use got it (a test checks it).
 */
import type { writeToStream } from 'mqtt-packet'
// Nothing from mqtt-packet's entry point here: loading it loads the writer, which must come after.
import numbers from 'mqtt-packet/numbers.js'

/** The writer caches the encodings of lengths below this (writeToStream.js, writeVarByteInt). */
const CACHED_BELOW = 16384
/** Carved blocks: a length below 16384 takes at most 2 bytes. */
const BLOCK_BYTES = 1024

const original = numbers.genBufVariableByteInt
const encoded: Array<Buffer | undefined> = []
let block = Buffer.allocUnsafeSlow(0)
let used = 0

function unpooled (num: number): Buffer {
  if (!(Number.isInteger(num) && num >= 0 && num < CACHED_BELOW)) return original(num)
  let buf = encoded[num]
  if (buf === undefined) {
    const bytes = original(num)
    if (used + bytes.length > block.length) {
      block = Buffer.allocUnsafeSlow(BLOCK_BYTES)
      used = 0
    }
    buf = block.subarray(used, used + bytes.length)
    bytes.copy(buf)
    used += bytes.length
    encoded[num] = buf
  }
  return buf
}

numbers.genBufVariableByteInt = unpooled

/**
 * Whether `writer` (mqtt-packet's writeToStream, as mqtt.js uses it) encodes lengths with the
 * unpooled cache: false when something loaded `mqtt` or `mqtt-packet` before this module (the
 * writer then kept the original).
 */
export function lengthCacheUnpooled (writer: typeof writeToStream): boolean {
  const written: Buffer[] = []
  const sink = { write: (b: Buffer) => { written.push(b); return true } }
  // A PUBACK of MQTT 3.1.1 has remaining length 2, which the writer encodes through its cache.
  writer({ cmd: 'puback', messageId: 1 }, sink as unknown as Parameters<typeof writeToStream>[1], { protocolVersion: 4 })
  return written.some(b => b === encoded[2])
}
