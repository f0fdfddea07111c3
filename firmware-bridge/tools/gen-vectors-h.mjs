#!/usr/bin/env node
// Turns the golden vectors (test/vectors/vectors.json + *.bin, PROTOCOL.md section 8) into a C
// header for the host tests (test/golden.c): each vector's .bin bytes, what it must decode to or be
// rejected for, and, for vectors with an "input", the edgefwd_event_t / edgefwd_hello_t / ack to
// encode. Doubles become C99 hexadecimal floating constants, so they are exact; strings become
// literals with every byte outside a safe set as a three-digit octal escape.
//
//   node tools/gen-vectors-h.mjs VECTORS_JSON OUT_H
//
// A missing vectors.json gives a header with no vectors (and a warning), unless REQUIRE_VECTORS=1.
// Anything in the JSON this script does not understand is an error naming the vector: an encoder
// must know every input field. The header is rewritten only when its content changes.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

const [jsonPath, outPath] = process.argv.slice(2)
if (jsonPath === undefined || outPath === undefined) {
  console.error('usage: gen-vectors-h.mjs VECTORS_JSON OUT_H')
  process.exit(2)
}

const fail = (msg) => {
  console.error(`gen-vectors-h: ${jsonPath}: ${msg}`)
  process.exit(1)
}

const SAFE = /[A-Za-z0-9 _.,:;!#$%&'()*+\-/<=>@[\]^`{|}~]/
function cString (value) {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value
  let s = '"'
  for (const b of bytes) {
    const ch = String.fromCharCode(b)
    s += b < 0x80 && SAFE.test(ch) ? ch : '\\' + b.toString(8).padStart(3, '0')
  }
  return s + '"'
}

function cBytes (bytes) {
  if (bytes.length === 0) return '{0}'
  const parts = []
  for (let i = 0; i < bytes.length; i += 16) {
    parts.push(Array.from(bytes.subarray(i, i + 16), (b) => '0x' + b.toString(16).padStart(2, '0')).join(', '))
  }
  return '{\n    ' + parts.join(',\n    ') + '\n}'
}

/** An exact C99 hexadecimal floating constant for a JS number. */
function cDouble (x, where) {
  if (typeof x !== 'number' || !Number.isFinite(x)) fail(`${where}: not a finite number: ${JSON.stringify(x)}`)
  const b = Buffer.alloc(8)
  b.writeDoubleLE(x)
  const bits = b.readBigUInt64LE()
  const sign = (bits >> 63n) === 1n ? '-' : ''
  const exp = Number((bits >> 52n) & 0x7ffn)
  const man = (bits & ((1n << 52n) - 1n)).toString(16).padStart(13, '0')
  const c = exp === 0 ? `${sign}0x0.${man}p-1022` : `${sign}0x1.${man}p${exp - 1023}`
  return `${c} /* ${Object.is(x, -0) ? '-0' : String(x)} */`
}

function cU64 (x, where) {
  let v
  try { v = BigInt(x) } catch { fail(`${where}: not an integer: ${JSON.stringify(x)}`) }
  if (typeof x === 'number' && !Number.isSafeInteger(x)) fail(`${where}: ${x} is not a safe integer; give it as a string`)
  if (v < 0n || v >= (1n << 64n)) fail(`${where}: out of uint64 range: ${x}`)
  return `${v}ull`
}

function hexBytes (hex, where) {
  if (typeof hex !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(hex)) fail(`${where}: not hex: ${JSON.stringify(hex)}`)
  return Buffer.from(hex, 'hex')
}

function checkKeys (obj, allowed, where) {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) fail(`${where}: not an object`)
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) fail(`${where}: unknown field "${k}"`)
}

function pairs (list, where, valueOf) {
  if (!Array.isArray(list)) fail(`${where}: not an array of pairs`)
  return list.map((p, i) => {
    if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'string') fail(`${where}[${i}]: not a [key, value] pair`)
    return [p[0], valueOf(p[1], `${where}[${i}]`)]
  })
}

const decls = []
const entries = []

function eventInit (id, ev, where) {
  checkKeys(ev, ['deviceId', 'seq', 'deviceTimeMs', 'uptimeMs', 'priority', 'stream', 'value', 'tags'], where)
  const f = []
  if (typeof ev.deviceId !== 'string') fail(`${where}.deviceId: missing or not a string`)
  f.push(`.device_id = ${cString(ev.deviceId)}`)
  if (ev.seq !== undefined) f.push(`.seq = ${cU64(ev.seq, `${where}.seq`)}`)
  if (ev.deviceTimeMs !== undefined) f.push('.has_device_time = true', `.device_time_ms = ${cU64(ev.deviceTimeMs, `${where}.deviceTimeMs`)}`)
  if (ev.uptimeMs !== undefined) f.push('.has_uptime = true', `.uptime_ms = ${cU64(ev.uptimeMs, `${where}.uptimeMs`)}`)
  if (ev.priority !== undefined) {
    if (!Number.isInteger(ev.priority) || ev.priority < 0 || ev.priority > 255) fail(`${where}.priority: ${JSON.stringify(ev.priority)}`)
    f.push(`.priority = ${ev.priority}`)
  }
  if (ev.stream !== undefined) {
    if (typeof ev.stream !== 'string') fail(`${where}.stream: not a string`)
    f.push(`.stream = ${cString(ev.stream)}`)
  }
  if (ev.value !== undefined) {
    const v = ev.value
    if (v === null || typeof v !== 'object' || Object.keys(v).length !== 1) fail(`${where}.value: must have exactly one of number, numbers, text, rawHex`)
    if ('number' in v) {
      f.push('.value_kind = EDGEFWD_VALUE_NUMBER', `.number = ${cDouble(v.number, `${where}.value.number`)}`)
    } else if ('numbers' in v) {
      const list = pairs(v.numbers, `${where}.value.numbers`, cDouble)
      if (list.length > 0) {
        decls.push(`static const edgefwd_number_t ${id}_numbers[] = {\n${list.map(([k, d]) => `    {${cString(k)}, ${d}}`).join(',\n')}\n};`)
        f.push(`.numbers = ${id}_numbers`, `.numbers_len = ${list.length}`)
      }
      f.push('.value_kind = EDGEFWD_VALUE_NUMBERS')
    } else if ('text' in v) {
      if (typeof v.text !== 'string') fail(`${where}.value.text: not a string`)
      f.push('.value_kind = EDGEFWD_VALUE_TEXT', `.text = ${cString(v.text)}`, `.text_len = ${Buffer.byteLength(v.text, 'utf8')}`)
    } else if ('rawHex' in v) {
      const raw = hexBytes(v.rawHex, `${where}.value.rawHex`)
      decls.push(`static const uint8_t ${id}_raw[] = ${cBytes(raw)};`)
      f.push('.value_kind = EDGEFWD_VALUE_RAW', `.raw = ${id}_raw`, `.raw_len = ${raw.length}`)
    } else {
      fail(`${where}.value: unknown kind ${Object.keys(v)[0]}`)
    }
  }
  if (ev.tags !== undefined) {
    const list = pairs(ev.tags, `${where}.tags`, (s, w) => {
      if (typeof s !== 'string') fail(`${w}: tag value not a string`)
      return cString(s)
    })
    if (list.length > 0) {
      decls.push(`static const edgefwd_tag_t ${id}_tags[] = {\n${list.map(([k, s]) => `    {${cString(k)}, ${s}}`).join(',\n')}\n};`)
      f.push(`.tags = ${id}_tags`, `.tags_len = ${list.length}`)
    }
  }
  return `{${f.join(', ')}}`
}

const source = jsonPath
let present = false
if (!existsSync(jsonPath)) {
  if (process.env.REQUIRE_VECTORS === '1') fail('not found (REQUIRE_VECTORS=1): the golden vectors are generated by scripts/gen-vectors.mjs')
  console.error(`gen-vectors-h: warning: ${jsonPath} not found: no golden vectors in this build`)
} else {
  present = true
  let doc
  try { doc = JSON.parse(readFileSync(jsonPath, 'utf8')) } catch (err) { fail(`not valid JSON: ${err.message}`) }
  if (doc.version !== 1 || !Array.isArray(doc.vectors)) fail('expected { "version": 1, "vectors": [...] }')
  const names = new Set()
  doc.vectors.forEach((v, i) => {
    const where = `vectors[${i}] (${v?.name ?? '?'})`
    checkKeys(v, ['name', 'description', 'transport', 'file', 'input', 'expect', 'gateway', 'direction', 'notes', 'note'], where)
    if (typeof v.name !== 'string' || names.has(v.name)) fail(`${where}: missing or duplicate name`)
    names.add(v.name)
    if (v.transport !== 'stream' && v.transport !== 'datagram') fail(`${where}: transport must be stream or datagram`)
    if (typeof v.file !== 'string') fail(`${where}: no file`)
    const binPath = join(dirname(jsonPath), v.file)
    if (!existsSync(binPath)) fail(`${where}: ${v.file} not found`)
    const bin = readFileSync(binPath)
    // expect: one outcome, or { frames: [...] } with one outcome per frame of a stream file.
    if (v.expect === null || typeof v.expect !== 'object') fail(`${where}: expect missing`)
    const outcomes = Array.isArray(v.expect.frames) ? v.expect.frames : [v.expect]
    if (outcomes.length === 0) fail(`${where}: expect.frames is empty`)
    outcomes.forEach((o, k) => {
      if (o === null || typeof o !== 'object' || typeof o.ok !== 'boolean') fail(`${where}: expect${outcomes.length > 1 ? `.frames[${k}]` : ''}.ok missing`)
      if (!o.ok && typeof o.reason !== 'string') fail(`${where}: expect reason missing`)
    })
    if (v.input !== undefined && outcomes.length !== 1) fail(`${where}: an input with several expected frames`)
    const id = `gv${i}`
    decls.push(`static const uint8_t ${id}_file[] = ${cBytes(bin)};`)
    decls.push(`static const golden_outcome_t ${id}_outcomes[] = {${outcomes.map((o) => `{${o.ok ? 1 : 0}, ${cString(o.ok ? '' : o.reason)}}`).join(', ')}};`)
    const f = [
      `.name = ${cString(v.name)}`,
      `.datagram = ${v.transport === 'datagram' ? 1 : 0}`,
      `.file = ${id}_file`,
      `.file_len = ${bin.length}`,
      `.expect_ok = ${outcomes[0].ok ? 1 : 0}`,
      `.reason = ${cString(outcomes[0].ok ? '' : outcomes[0].reason)}`,
      `.outcomes = ${id}_outcomes`,
      `.outcomes_len = ${outcomes.length}`
    ]
    if (v.input !== undefined) {
      const inp = v.input
      checkKeys(inp, ['type', 'keyHex', 'event', 'hello', 'ack'], `${where}.input`)
      if (inp.keyHex !== undefined) {
        const key = hexBytes(inp.keyHex, `${where}.input.keyHex`)
        decls.push(`static const uint8_t ${id}_key[] = ${cBytes(key)};`)
        f.push(`.key = ${id}_key`, `.key_len = ${key.length}`)
      }
      if (inp.type === 'event') {
        f.push('.input = GV_EVENT', `.event = ${eventInit(id, inp.event, `${where}.input.event`)}`)
      } else if (inp.type === 'hello') {
        const h = inp.hello
        checkKeys(h, ['deviceId', 'firmwareVersion', 'capabilities'], `${where}.input.hello`)
        const hf = [`.device_id = ${cString(String(h.deviceId))}`]
        if (h.firmwareVersion !== undefined) hf.push(`.firmware_version = ${cString(String(h.firmwareVersion))}`)
        if (h.capabilities !== undefined) {
          if (!Number.isInteger(h.capabilities) || h.capabilities < 0 || h.capabilities > 0xffffffff) fail(`${where}.input.hello.capabilities`)
          hf.push(`.capabilities = ${h.capabilities}u`)
        }
        f.push('.input = GV_HELLO', `.hello = {${hf.join(', ')}}`)
      } else if (inp.type === 'ack') {
        const a = inp.ack
        checkKeys(a, ['deviceId', 'seq'], `${where}.input.ack`)
        f.push('.input = GV_ACK', `.ack_id = ${cString(String(a.deviceId))}`, `.ack_seq = ${cU64(a.seq, `${where}.input.ack.seq`)}`)
      } else {
        fail(`${where}.input.type: unknown ${JSON.stringify(inp.type)}`)
      }
    }
    entries.push(`    {${f.join(',\n     ')}}`)
  })
}

const header = `/* Generated by firmware-bridge/tools/gen-vectors-h.mjs from ${source}. Do not edit. */
#define GOLDEN_SOURCE ${cString(source)}
#define GOLDEN_PRESENT ${present ? 1 : 0}
${decls.join('\n')}
static const golden_t golden_vectors[] = {
${entries.length > 0 ? entries.join(',\n') : '    {.name = "none"}'}
};
static const size_t golden_count = ${entries.length};
`
if (!existsSync(outPath) || readFileSync(outPath, 'utf8') !== header) writeFileSync(outPath, header)
