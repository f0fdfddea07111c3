#!/usr/bin/env node
// End-to-end check of examples/posix-send against a minimal stand-in gateway written here from
// PROTOCOL.md alone (COBS, CRC32C, HMAC tag, the ack layout, and just enough protobuf to read the
// device id and seq): over UDP, TCP (with acks), and a serial line made of a socat pty pair.
// The real gateway lives in src/ingest; this one keeps the example's check free of the TS build.
//
//   node tools/examples-check.mjs PATH/TO/posix-send
import { spawn, spawnSync } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { mkdtempSync, openSync, createReadStream, createWriteStream, existsSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const bin = process.argv[2]
if (bin === undefined) {
  console.error('usage: examples-check.mjs PATH/TO/posix-send')
  process.exit(2)
}

const CRC_TABLE = Array.from({ length: 256 }, (_, i) => {
  let c = i
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
  return c >>> 0
})
function crc32c (b) {
  let c = 0xffffffff
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

function cobsDecode (src) {
  const out = []
  let i = 0
  while (i < src.length) {
    const code = src[i++]
    if (code === 0 || i + code - 1 > src.length) return undefined
    for (let k = 1; k < code; k++) out.push(src[i++])
    if (code !== 0xff && i < src.length) out.push(0)
  }
  return Buffer.from(out)
}

/** COBS + the 0x00 delimiter (acks are short: never a full 254-byte block). */
function cobsEncode (src) {
  const out = [0]
  let codeAt = 0
  for (const b of src) {
    if (b !== 0) {
      out.push(b)
    } else {
      out[codeAt] = out.length - codeAt
      codeAt = out.length
      out.push(0)
    }
  }
  out[codeAt] = out.length - codeAt
  out.push(0)
  return Buffer.from(out)
}

function varint (b, pos) {
  let v = 0n
  let shift = 0n
  for (;;) {
    const x = b[pos.at++]
    v |= BigInt(x & 0x7f) << shift
    if (x < 0x80) return v
    shift += 7n
  }
}

/** { type, deviceId, seq } of a raw frame, after checking CRC, version and (with a key) the tag. */
function parseFrame (f, key) {
  if (f.length < 6) throw new Error(`frame of ${f.length} bytes`)
  if (f.readUInt32LE(f.length - 4) !== crc32c(f.subarray(0, f.length - 4))) throw new Error('bad CRC')
  if (f[0] !== 1) throw new Error('bad version')
  const tagged = (f[1] & 0x80) !== 0
  const bodyEnd = f.length - 4 - (tagged ? 16 : 0)
  if (key !== undefined) {
    if (!tagged) throw new Error('no tag')
    const want = createHmac('sha256', key).update(f.subarray(0, bodyEnd)).digest().subarray(0, 16)
    if (!want.equals(f.subarray(bodyEnd, bodyEnd + 16))) throw new Error('wrong tag')
  }
  const body = f.subarray(2, bodyEnd)
  const out = { type: f[1] & 0x7f, deviceId: '', seq: 0n }
  const pos = { at: 0 }
  while (pos.at < body.length) {
    const k = Number(varint(body, pos))
    const field = k >> 3
    const wt = k & 7
    if (wt === 0) {
      const v = varint(body, pos)
      if (field === 2 && out.type === 1) out.seq = v
    } else if (wt === 1) {
      pos.at += 8
    } else if (wt === 2) {
      const n = Number(varint(body, pos))
      if (field === 1) out.deviceId = body.subarray(pos.at, pos.at + n).toString('latin1')
      pos.at += n
    } else {
      throw new Error(`wire type ${wt}`)
    }
  }
  return out
}

function ackFrame (deviceId, seq) {
  const id = Buffer.from(deviceId, 'latin1')
  const f = Buffer.alloc(2 + 1 + id.length + 8 + 4)
  f[0] = 1
  f[1] = 3
  f[2] = id.length
  id.copy(f, 3)
  f.writeBigUInt64LE(seq, 3 + id.length)
  f.writeUInt32LE(crc32c(f.subarray(0, f.length - 4)), f.length - 4)
  return cobsEncode(f)
}

/** Deframes a byte stream; answers every event with an ack. Returns the state it records. */
function streamGateway (write, key) {
  const state = { events: [], hellos: 0, errors: [] }
  let pending = Buffer.alloc(0)
  return {
    state,
    push (chunk) {
      pending = Buffer.concat([pending, chunk])
      let z
      while ((z = pending.indexOf(0)) >= 0) {
        const enc = pending.subarray(0, z)
        pending = pending.subarray(z + 1)
        if (enc.length === 0) continue
        try {
          const raw = cobsDecode(enc)
          if (raw === undefined) throw new Error('bad COBS')
          const f = parseFrame(raw, key)
          if (f.type === 4) state.hellos++
          if (f.type === 1) {
            state.events.push(f.seq)
            write(ackFrame(f.deviceId, f.seq))
          }
        } catch (err) {
          state.errors.push(err.message)
        }
      }
    }
  }
}

function run (args) {
  return new Promise((resolve) => {
    const child = spawn(bin, args)
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { err += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), 20000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, out, err })
    })
  })
}

let failures = 0
function check (ok, what, detail = '') {
  if (ok) console.log(`ok - ${what}`)
  else {
    failures++
    console.log(`not ok - ${what} ${detail}`)
  }
}

const KEY = '000102030405060708090a0b0c0d0e0f10111213'
const key = Buffer.from(KEY, 'hex')

// UDP: raw datagrams, tagged.
{
  const sock = createSocket('udp4')
  const seqs = []
  const errors = []
  sock.on('message', (m) => {
    try { seqs.push(parseFrame(m, key).seq) } catch (err) { errors.push(err.message) }
  })
  await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve))
  const r = await run(['-d', 'udp-dev', '-n', '5', '-r', '0', '-k', KEY, 'udp', '127.0.0.1', String(sock.address().port)])
  await new Promise((resolve) => setTimeout(resolve, 200))
  sock.close()
  check(r.code === 0, 'udp: exit 0', JSON.stringify(r))
  check(seqs.join(',') === '1,2,3,4,5' && errors.length === 0, 'udp: 5 tagged datagrams, seqs 1-5', `${seqs} ${errors}`)
}

// TCP: COBS frames, a hello, acks back.
{
  let gw
  const server = createServer((sock) => {
    gw = streamGateway((b) => sock.write(b))
    sock.on('data', (d) => gw.push(d))
    sock.on('error', () => {})
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const r = await run(['-d', 'tcp-dev', '-n', '20', '-r', '200', '-S', '100', '-p', '3', 'tcp', '127.0.0.1', String(server.address().port)])
  server.close()
  check(r.code === 0, 'tcp: exit 0 (every event acknowledged)', JSON.stringify(r))
  check(gw?.state.hellos === 1 && gw.state.events.length === 20 && gw.state.errors.length === 0, 'tcp: one hello, 20 events, no bad frame', JSON.stringify(gw?.state, (_, v) => typeof v === 'bigint' ? String(v) : v))
  check(/acked seq 119\n/.test(r.out) && /highest acked seq 119/.test(r.out), 'tcp: acks printed up to seq 119', r.out)
}

// TCP without acks: exit 3 after -w.
{
  const server = createServer((sock) => { sock.on('data', () => {}) })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const r = await run(['-n', '2', '-r', '0', '-w', '300', 'tcp', '127.0.0.1', String(server.address().port)])
  server.close()
  check(r.code === 3, 'tcp: exit 3 when no ack comes', JSON.stringify(r))
}

// Serial: a pty pair from socat.
if (spawnSync('socat', ['-V']).error !== undefined) {
  console.log('not ok - tty: socat not installed (apt-get install socat)')
  failures++
} else {
  const dir = mkdtempSync(join(tmpdir(), 'edgefwd-tty-'))
  const dev = join(dir, 'dev')
  const gwPath = join(dir, 'gw')
  const socat = spawn('socat', [`pty,raw,echo=0,link=${dev}`, `pty,raw,echo=0,link=${gwPath}`])
  for (let i = 0; i < 100 && !(existsSync(dev) && existsSync(gwPath)); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  const fd = openSync(gwPath, 'r+')
  const out = createWriteStream('', { fd, autoClose: false })
  const input = createReadStream('', { fd, autoClose: false })
  const gw = streamGateway((b) => out.write(b), key)
  input.on('data', (d) => gw.push(d))
  input.on('error', () => {})
  const r = await run(['-d', 'tty-dev', '-n', '10', '-r', '100', '-k', KEY, 'tty', dev])
  check(r.code === 0, 'tty: exit 0 (every event acknowledged)', JSON.stringify(r))
  check(gw.state.hellos === 1 && gw.state.events.length === 10 && gw.state.errors.length === 0, 'tty: one hello, 10 tagged events, no bad frame', JSON.stringify(gw.state, (_, v) => typeof v === 'bigint' ? String(v) : v))
  check(/highest acked seq 10/.test(r.out), 'tty: acks up to seq 10', r.out)
  input.destroy()
  socat.kill('SIGTERM')
  rmSync(dir, { recursive: true, force: true })
}

console.log(failures === 0 ? 'examples check: all passed' : `examples check: ${failures} failed`)
process.exit(failures === 0 ? 0 : 1)
