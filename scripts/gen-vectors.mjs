#!/usr/bin/env node
// Writes the golden vectors of the device protocol (firmware-bridge/PROTOCOL.md §8):
// test/vectors/NAME.bin (bytes as a device sends them: COBS + 0x00 for "stream", raw for
// "datagram") and test/vectors/vectors.json (what each must decode to, or why it is rejected).
//
//   npm run build && node scripts/gen-vectors.mjs           write the files
//   npm run build && node scripts/gen-vectors.mjs --check   exit 1 when the committed files differ
//
// The bytes come from the gateway's own encoders (dist/src/ingest), never from code here: this
// file only says which events to encode and how to damage them. Expectations are written from
// the inputs, never by running the decoder, so the vectors test the decoder rather than echo it.
// test/unit/ingest-vectors.test.ts calls buildVectors() with the TypeScript sources and fails
// when the committed files are stale.
//
// vectors.json (version 1), which the C encoder's tests read:
//   { "version": 1, "vectors": [ { "name", "transport": "stream" | "datagram", "file",
//       "input"?:   present when an encoder must reproduce the file byte for byte:
//                   { "type": "event", "keyHex"?, "event": EVENT } | { "type": "hello", "keyHex"?, "hello": {...} }
//                   | { "type": "ack", "ack": { "deviceId", "seq" } }
//       "gateway"?: { "keys": { DEVICE_ID: KEY_HEX } }   the gateway's configuration for this vector
//       "direction"?: "gateway-to-device"               (acks; absent means device to gateway)
//       "expect":   { "ok": true, "event": EVENT, "authenticated": bool } | { "ok": true, "hello": {...}, "authenticated": bool }
//                   | { "ok": true, "ack": {...} } | { "ok": false, "reason": REASON }
//                   | { "frames": [ one of the above per frame ] }    (files holding several frames)
//       "note"? } ] }
//   EVENT: { "deviceId", "seq", "deviceTimeMs"?, "uptimeMs"?, "priority", "stream",
//            "value"?: { "number": n } | { "numbers": [[name, n], ...] } | { "text": s } | { "rawHex": h },
//            "tags"?: [[key, value], ...] }   (absent optional fields are absent, in order given)
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..')
const vectorsDir = join(repoRoot, 'test', 'vectors')

const hex = (bytes) => Buffer.from(bytes).toString('hex')
const fromHex = (h) => new Uint8Array(Buffer.from(h, 'hex'))
const concat = (...parts) => new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p))))

/** The vector JSON shape of an event → the DeviceEvent the encoders take. */
export function eventFromJson (j) {
  const e = { deviceId: j.deviceId, seq: j.seq, priority: j.priority ?? 0, stream: j.stream ?? '' }
  if (j.deviceTimeMs !== undefined) e.deviceTimeMs = j.deviceTimeMs
  if (j.uptimeMs !== undefined) e.uptimeMs = j.uptimeMs
  if (j.value !== undefined) {
    const v = j.value
    if ('number' in v) e.value = { kind: 'number', number: v.number }
    else if ('numbers' in v) e.value = { kind: 'numbers', numbers: Object.fromEntries(v.numbers) }
    else if ('text' in v) e.value = { kind: 'text', text: v.text }
    else e.value = { kind: 'raw', raw: fromHex(v.rawHex) }
  }
  if (j.tags !== undefined) e.tags = Object.fromEntries(j.tags)
  return e
}

/** A DeviceEvent → the vector JSON shape (key order fixed, so the JSON text is stable). */
export function eventToJson (e) {
  const j = { deviceId: e.deviceId, seq: e.seq }
  if (e.deviceTimeMs !== undefined) j.deviceTimeMs = e.deviceTimeMs
  if (e.uptimeMs !== undefined) j.uptimeMs = e.uptimeMs
  j.priority = e.priority
  j.stream = e.stream
  if (e.value !== undefined) {
    const v = e.value
    if (v.kind === 'number') j.value = { number: v.number }
    else if (v.kind === 'numbers') j.value = { numbers: Object.entries(v.numbers) }
    else if (v.kind === 'text') j.value = { text: v.text }
    else j.value = { rawHex: hex(v.raw) }
  }
  if (e.tags !== undefined) j.tags = Object.entries(e.tags)
  return j
}

// A 32-byte key, printable so it is easy to type into a device's configuration.
const KEY = new TextEncoder().encode('edgefwd-golden-vector-key-000001')
const KEY_HEX = hex(KEY)
const GATEWAY_WITH_KEY = { keys: { 'sensor-1': KEY_HEX } }

const base = {
  deviceId: 'sensor-1', seq: 1, deviceTimeMs: 1700000000000, uptimeMs: 5, priority: 1, stream: 'telemetry',
  value: { number: 21.5 }, tags: [['site', 'a']]
}

/**
 * Builds every vector with the encoders of `ingest` (the module src/ingest/index.ts, compiled or
 * not). Returns the vectors.json object and the .bin files by name.
 */
export function buildVectors (ingest) {
  const vectors = []
  const files = new Map()
  const add = (v, bytes) => {
    if (files.has(v.file)) throw new Error(`duplicate vector file ${v.file}`)
    files.set(v.file, bytes)
    vectors.push(v)
  }
  const wire = (transport, frame) => transport === 'stream' ? ingest.toStreamFrame(frame) : frame
  const eventFrame = (j, key, type = 'event') => ingest.encodeFrame({ type, body: ingest.encodeDeviceFrame(eventFromJson(j)), ...(key === undefined ? {} : { key }) })
  /** Sets the CRC of a hand-damaged raw frame right again, so only the intended fault remains. */
  const fixCrc = (frame) => {
    ingest.writeCrc(frame, frame.length - ingest.CRC_LENGTH)
    return frame
  }
  const okEvent = (j, authenticated = false) => ({ ok: true, event: eventToJson(eventFromJson(j)), authenticated })

  /** A valid event an encoder must reproduce. */
  const event = (name, j, { transport = 'stream', key, gateway, authenticated = false, note } = {}) => {
    const input = key === undefined ? { type: 'event', event: j } : { type: 'event', keyHex: hex(key), event: j }
    add({ name, transport, file: `${name}.bin`, input, ...(gateway === undefined ? {} : { gateway }), expect: okEvent(j, authenticated), ...(note === undefined ? {} : { note }) },
      wire(transport, eventFrame(j, key)))
  }
  /** Bytes that must be rejected with `reason`. */
  const bad = (name, reason, bytes, note, { transport = 'stream', gateway } = {}) => {
    add({ name, transport, file: `${name}.bin`, ...(gateway === undefined ? {} : { gateway }), expect: { ok: false, reason }, note }, bytes)
  }
  /** A raw frame with a hand-made body (valid CRC), to be rejected as bad_field. */
  const badBody = (name, body, note, type = 'event') => bad(name, 'bad_field', ingest.toStreamFrame(ingest.encodeFrame({ type, body })), note)

  // Valid events, one feature each.
  event('event-number', base)
  event('event-numbers', { ...base, seq: 2, value: { numbers: [['t', 21.5], ['rh', 40], ['p', -1013.25]] } })
  event('event-text', { ...base, seq: 3, value: { text: 'door open, 21.5 °C ✓' } }, { note: 'UTF-8 text with 2- and 3-byte characters' })
  event('event-raw', { ...base, seq: 4, value: { rawHex: '00ff0001fe00' } }, { note: 'zero bytes in the body: several COBS blocks' })
  event('event-no-value', { deviceId: 'sensor-1', seq: 5, deviceTimeMs: 1700000000005, priority: 1, stream: 'heartbeat' })
  event('event-times-absent', { deviceId: 'sensor-1', seq: 6, priority: 1, stream: 'telemetry', value: { number: 20 } }, { note: 'no device time and no uptime: fields 3 and 4 are absent' })
  event('event-times-zero', { deviceId: 'sensor-1', seq: 7, deviceTimeMs: 0, uptimeMs: 0, priority: 1, stream: 'telemetry', value: { number: 20 } }, { note: 'optional times present and 0: written on the wire (18 00 20 00)' })
  event('event-minimal', { deviceId: 'sensor-1', seq: 0, priority: 0, stream: '' }, { note: 'seq 0, priority low and empty stream are omitted on the wire: the body is only the device id' })
  event('event-number-zero', { deviceId: 'sensor-1', seq: 8, priority: 1, stream: 'telemetry', value: { number: 0 } }, { note: 'a number value of 0 is still written (oneof member)' })
  event('event-priority-critical', { ...base, seq: 9, priority: 3, stream: 'alarm', value: { text: 'overheat' } })
  event('event-seq-big', { ...base, seq: 2 ** 40 + 7 })
  event('event-seq-max', { ...base, seq: Number.MAX_SAFE_INTEGER }, { note: 'seq 2^53-1, the largest accepted' })
  event('event-device-id-64', { ...base, deviceId: 'd'.repeat(29) + '-' + '0123456789'.repeat(3) + '-ABC', seq: 10 }, { note: 'a device id of 64 bytes, the longest accepted' })
  event('event-tags-8', {
    ...base,
    seq: 11,
    tags: [['site', 'plant-7'], ['k'.repeat(32), 'v'.repeat(64)], ['fw', '1.4.2'], ['room', ''], ['a', '1'], ['b', '2'], ['c', '3'], ['zone', 'ü']]
  }, { note: '8 tags (the most accepted) in this order; a 32-byte key, a 64-byte value, an empty value' })
  event('event-cobs-long-block', { ...base, seq: 12, value: { text: 'x'.repeat(400) } }, { note: 'more than 254 bytes without a zero: a COBS block of code 0xFF' })
  event('datagram-event', { ...base, seq: 13 }, { transport: 'datagram', note: 'a UDP datagram: the raw frame, no COBS, no 0x00' })
  event('datagram-event-auth', { ...base, seq: 14 }, { transport: 'datagram', key: KEY, gateway: GATEWAY_WITH_KEY, authenticated: true, note: 'type 0x81: a 16-byte HMAC-SHA256 tag between body and CRC (PROTOCOL.md §5)' })
  event('datagram-event-tag-no-key', { ...base, deviceId: 'sensor-2', seq: 15 }, { transport: 'datagram', key: KEY, gateway: GATEWAY_WITH_KEY, note: 'a tag from a device the gateway has no key for: accepted, not authenticated (PROTOCOL.md §5)' })

  // Hello and ack.
  const hello = { deviceId: 'sensor-1', firmwareVersion: '1.4.2', capabilities: 1 }
  add({ name: 'hello', transport: 'stream', file: 'hello.bin', input: { type: 'hello', hello }, expect: { ok: true, hello, authenticated: false } },
    ingest.encodeStreamFrame({ type: 'hello', body: ingest.encodeDeviceHello(hello) }))
  const ack = { deviceId: 'sensor-1', seq: 2 ** 40 + 7 }
  add({ name: 'ack', transport: 'stream', file: 'ack.bin', direction: 'gateway-to-device', input: { type: 'ack', ack }, expect: { ok: true, ack }, note: 'what a gateway sends; a gateway that receives it rejects it (bad-field-ack-to-gateway)' },
    ingest.encodeStreamAck(ack.deviceId, ack.seq))

  // event-msgpack: not reproduced byte for byte (msgpack has several encodings of one value).
  const msgpackEvent = { ...base, seq: 16, deviceTimeMs: 2 ** 40 + 7, value: { numbers: [['t', 21.5], ['rh', 40]] } }
  add({ name: 'event-msgpack', transport: 'stream', file: 'event-msgpack.bin', expect: okEvent(msgpackEvent), note: 'type 0x02, keys id seq t up s v tags (p omitted: 1 is the default)' },
    ingest.encodeStreamFrame({ type: 'event-msgpack', body: ingest.encodeMsgpackEvent(eventFromJson(msgpackEvent)) }))
  const msgpackMinimal = { deviceId: 'sensor-1', seq: 17, priority: 1, stream: '' }
  add({ name: 'event-msgpack-defaults', transport: 'stream', file: 'event-msgpack-defaults.bin', expect: okEvent(msgpackMinimal), note: 'only id and seq: priority defaults to 1 (normal) in msgpack, unlike protobuf' },
    ingest.encodeStreamFrame({ type: 'event-msgpack', body: ingest.encodeMsgpackEvent(eventFromJson(msgpackMinimal)) }))

  // Several frames in one stream, with garbage and empty frames between them.
  const first = { ...base, seq: 18 }
  const second = { ...base, seq: 19, value: { text: 'after garbage' } }
  add({
    name: 'stream-two-frames-garbage',
    transport: 'stream',
    file: 'stream-two-frames-garbage.bin',
    expect: { frames: [okEvent(first), { ok: false, reason: 'bad_cobs' }, okEvent(second)] },
    note: '0x00 0x00 (empty frames, ignored), an event, garbage 05 01 02 0x00 (a COBS block cut short), an event'
  }, concat([0, 0], wire('stream', eventFrame(first)), [0x05, 0x01, 0x02, 0x00], wire('stream', eventFrame(second))))

  // Rejected frames, one fault each, for every reason decidable from the bytes.
  const good = eventFrame(base)
  const goodStream = ingest.toStreamFrame(good)
  const cobsBroken = goodStream.slice()
  cobsBroken[0] = 0xff
  bad('bad-cobs', 'bad_cobs', cobsBroken, 'event-number with its first COBS code byte set to 0xFF: the block runs past the 0x00')
  const crcFlipped = good.slice()
  crcFlipped[crcFlipped.length - 1] ^= 0xff
  bad('bad-crc', 'bad_crc', ingest.toStreamFrame(crcFlipped), 'event-number with its last CRC byte flipped')
  const v2 = good.slice()
  v2[0] = 0x02
  bad('bad-version', 'bad_version', ingest.toStreamFrame(fixCrc(v2)), 'event-number with version byte 2 (CRC valid)')
  bad('oversize', 'oversize', ingest.toStreamFrame(oversizeFrame(ingest)), 'a frame of 16385 bytes, one more than the default maxFrameSize (CRC valid)')
  bad('bad-field-short', 'bad_field', ingest.toStreamFrame(Uint8Array.of(0x01, 0x01, 0x12, 0x34, 0x56)), 'a 5-byte frame: shorter than version, type and CRC')
  const type5 = good.slice()
  type5[1] = 0x05
  bad('bad-field-unknown-type', 'bad_field', ingest.toStreamFrame(fixCrc(type5)), 'event-number with type 0x05 (CRC valid)')
  const ackToGateway = ingest.encodeAck('sensor-1', 1)
  bad('bad-field-ack-to-gateway', 'bad_field', ingest.toStreamFrame(ackToGateway), 'an ack (type 0x03) sent to a gateway')
  const body = ingest.encodeDeviceFrame(eventFromJson(base))
  badBody('bad-field-protobuf', Uint8Array.of(0x0a, 0x10, 0x61, 0x62), 'device_id claims 16 bytes, 2 follow')
  badBody('bad-field-device-id-slash', ingest.encodeDeviceFrame(eventFromJson({ ...base, deviceId: 'sensor/1' })), "device id 'sensor/1': '/' would split the MQTT topic")
  badBody('bad-field-device-id-empty', ingest.encodeDeviceFrame(eventFromJson({ ...base, deviceId: '' })), 'no device id')
  badBody('bad-field-device-id-65', ingest.encodeDeviceFrame(eventFromJson({ ...base, deviceId: 'd'.repeat(65) })), 'a device id of 65 bytes')
  // seq = 2^53: the encoders refuse it, so the field is appended by hand (the last value wins).
  badBody('bad-field-seq-too-big', concat(body, [0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]), 'event-number then field 2 again as 2^53 (the last value of a field wins)')
  badBody('bad-field-priority', concat(body, [0x28, 0x04]), 'event-number then priority 4')
  badBody('bad-field-too-many-tags', ingest.encodeDeviceFrame(eventFromJson({ ...base, tags: Array.from({ length: 9 }, (_, i) => [`t${i}`, 'x']) })), '9 tags')
  badBody('bad-field-stream-too-long', ingest.encodeDeviceFrame(eventFromJson({ ...base, stream: 's'.repeat(65) })), 'a stream of 65 bytes')
  badBody('bad-field-text-too-long', ingest.encodeDeviceFrame(eventFromJson({ ...base, value: { text: 't'.repeat(1025) } })), 'a text value of 1025 bytes')
  badBody('bad-field-invalid-utf8', concat(body, [0x4a, 0x02, 0xc3, 0x28]), 'event-number then a text value of bytes c3 28 (not UTF-8)')
  badBody('bad-field-msgpack-unknown-key', msgpackWithUnknownKey(ingest), 'an event-msgpack map with an unknown key "x"', 'event-msgpack')
  bad('bad-auth-missing-tag', 'bad_auth', eventFrame({ ...base, seq: 20 }), 'event-number (seq 20) without a tag; sensor-1 has a key at the gateway', { transport: 'datagram', gateway: GATEWAY_WITH_KEY })
  const wrongTag = eventFrame({ ...base, seq: 21 }, KEY)
  wrongTag[wrongTag.length - ingest.CRC_LENGTH - 1] ^= 0x01
  bad('bad-auth-wrong-tag', 'bad_auth', fixCrc(wrongTag), 'event-number (seq 21) with a tag whose last byte is flipped (CRC valid)', { transport: 'datagram', gateway: GATEWAY_WITH_KEY })

  return { json: { version: 1, vectors }, files }
}

/** A valid event frame of exactly 16385 bytes (a raw value far above the §3 limit, but oversize is checked first). */
function oversizeFrame (ingest) {
  const target = ingest.DEFAULT_MAX_FRAME_SIZE + 1
  for (let n = target - 200; n < target; n++) {
    const raw = new Uint8Array(n).map((_, i) => 1 + (i % 251))
    const frame = ingest.encodeFrame({ type: 'event', body: ingest.encodeDeviceFrame(eventFromJson({ ...base, value: { rawHex: hex(raw) } })) })
    if (frame.length === target) return frame
  }
  throw new Error('no raw length gives a frame of exactly maxFrameSize + 1 bytes')
}

/** An event-msgpack body with an extra key: encodeMsgpackEvent's map with "x": 1 added. */
function msgpackWithUnknownKey (ingest) {
  const body = ingest.encodeMsgpackEvent(eventFromJson({ deviceId: 'sensor-1', seq: 22, priority: 1, stream: '' }))
  // fixmap of 2 entries (id, seq) → 3 entries, then "x": 1 appended.
  if (body[0] !== 0x82) throw new Error(`expected a fixmap of 2 entries, got 0x${body[0].toString(16)}`)
  return concat([0x83], body.subarray(1), [0xa1, 0x78, 0x01])
}

/** JSON with 2-space indentation, where anything that fits on a line of 110 characters stays on one. */
export function renderVectorsJson (json) {
  const render = (value, indent, prefix = 0) => {
    const flat = JSON.stringify(value)
    if (typeof value !== 'object' || value === null || indent.length + prefix + flat.length <= 110) return flat
    const inner = indent + '  '
    const items = Array.isArray(value)
      ? value.map((v) => inner + render(v, inner))
      : Object.entries(value).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${render(v, inner, k.length + 4)}`)
    const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}']
    return `${open}\n${items.join(',\n')}\n${indent}${close}`
  }
  return render(json, '') + '\n'
}

async function main () {
  const check = process.argv.includes('--check')
  const ingest = await import(pathToFileURL(join(repoRoot, 'dist', 'src', 'ingest', 'index.js')).href).catch((err) => {
    process.stderr.write(`cannot load dist/src/ingest/index.js (run \`npm run build\` first): ${err.message}\n`)
    process.exit(1)
  })
  const { json, files } = buildVectors(ingest)
  const text = renderVectorsJson(json)
  mkdirSync(vectorsDir, { recursive: true })
  const onDisk = readdirSync(vectorsDir).filter((f) => f.endsWith('.bin'))
  if (check) {
    const stale = []
    if (readOr(join(vectorsDir, 'vectors.json'))?.toString('utf8') !== text) stale.push('vectors.json')
    for (const [name, bytes] of files) if (!Buffer.from(bytes).equals(readOr(join(vectorsDir, name)) ?? Buffer.alloc(0))) stale.push(name)
    for (const name of onDisk) if (!files.has(name)) stale.push(`${name} (no longer generated)`)
    if (stale.length > 0) {
      process.stderr.write(`test/vectors is out of step with the encoders: ${stale.join(', ')}\nrun \`npm run gen:vectors\` and commit test/vectors\n`)
      process.exit(1)
    }
    return
  }
  for (const name of onDisk) if (!files.has(name)) rmSync(join(vectorsDir, name))
  for (const [name, bytes] of files) writeFileSync(join(vectorsDir, name), bytes)
  writeFileSync(join(vectorsDir, 'vectors.json'), text)
  process.stdout.write(`wrote ${files.size} vectors to test/vectors\n`)
}

function readOr (path) {
  try { return readFileSync(path) } catch { return undefined }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
