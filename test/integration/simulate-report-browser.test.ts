// report.html in a real browser: Debian's Chromium, headless, reads the file written by
// writeReport. --dump-dom shows the four charts survive HTML parsing with their paths and bars;
// --screenshot gives a PNG that we decode (zlib + PNG row filters, no dependency) to check the
// charts' colours were painted. Chromium is required: .ci/run installs it, and a missing browser
// FAILS the test with the install hint rather than skipping it.
//
// Every Chromium run is bounded (60 s, then SIGKILL to its process group, which holds only the
// browser we started), uses its own --user-data-dir in t.testdir(), and reaches no network: the
// page has no external references and background networking is disabled.
import { spawn } from 'node:child_process'
import { accessSync, constants, mkdirSync, readFileSync, statSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { inflateSync } from 'node:zlib'
import t from 'tap'
import { writeReport } from '../../simulate/report.js'
import type { PhaseSpan, Sample, SimulationResult } from '../../simulate/report.js'

const CHROMIUM_NAMES = ['chromium', 'chromium-browser']
const RUN_TIMEOUT_MS = 60_000
const WIDTH = 1200
const HEIGHT = 1600

function findOnPath (names: string[]): string | undefined {
  for (const name of names) {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (dir === '') continue
      const candidate = join(dir, name)
      try {
        accessSync(candidate, constants.X_OK)
        if (statSync(candidate).isFile()) return candidate
      } catch {}
    }
  }
  return undefined
}

interface RunResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/** Runs Chromium once; resolves when it exits, rejects after RUN_TIMEOUT_MS (having killed it). */
function runChromium (bin: string, dir: string, profile: string, args: string[]): Promise<RunResult> {
  const home = join(dir, 'home')
  mkdirSync(home, { recursive: true })
  const child = spawn(bin, [
    '--headless',
    '--no-sandbox', // root in CI containers; the page is our own file
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--no-first-run',
    '--no-default-browser-check',
    '--disable-extensions',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--hide-scrollbars',
    '--mute-audio',
    '--force-device-scale-factor=1',
    `--user-data-dir=${join(dir, 'profile', profile)}`,
    ...args
  ], {
    // Own process group: on timeout the browser and its helpers are killed together by PGID.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_CACHE_HOME: join(home, '.cache') }
  })
  return new Promise((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr = (stderr + s).slice(-8000) })
    const timer = setTimeout(() => {
      try { if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL') } catch {}
      reject(new Error(`chromium ${args.join(' ')} did not exit within ${RUN_TIMEOUT_MS} ms; stderr tail:\n${stderr}`))
    }, RUN_TIMEOUT_MS)
    child.on('error', (err) => { clearTimeout(timer); reject(err) })
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }) })
  })
}

/** An outage in the middle of 30 s: the buffer grows, delivery stops, low events are evicted. */
function result (): SimulationResult {
  const samples: Sample[] = []
  let sent = 0; let delivered = 0; let evicted = 0; let backlog = 0
  for (let i = 0; i < 120; i++) {
    const tMs = i * 250
    const outage = tMs >= 10_000 && tMs < 20_000
    sent += 40
    if (outage) {
      backlog += 40
      if (tMs >= 15_000) { backlog -= 8; evicted += 8 }
    } else {
      const drain = Math.min(backlog, 80)
      backlog -= drain
      delivered += 40 + drain
    }
    const q = backlog / 4
    samples.push({
      tMs,
      link: outage ? 'outage' : 'connected',
      uplink: outage ? 'backoff' : 'online',
      stored: [q, q, q, q],
      storedBytes: backlog * 64,
      capacityBytes: 64 * 2000,
      sent,
      delivered,
      evicted
    })
  }
  const phases: PhaseSpan[] = [
    { kind: 'connected', fromMs: 0, toMs: 10_000 },
    { kind: 'outage', fromMs: 10_000, toMs: 20_000 },
    { kind: 'connected', fromMs: 20_000, toMs: 30_000 }
  ]
  return {
    scenario: { name: 'browser-check', description: 'An outage <script>alert(1)</script> in the middle.', seed: 7, durationMs: 30_000, source: 'inline' },
    startedAt: new Date(0).toISOString(),
    wallMs: 31_000,
    samples,
    phases,
    priorities: (['low', 'normal', 'high', 'critical'] as const).map((priority) => ({
      priority, sent: 1200, delivered: priority === 'low' ? 1040 : 1200, evicted: priority === 'low' ? 160 : 0, droppedAtIngest: {}, lostBeforeGateway: 0, duplicates: 0, unexplained: 0
    })),
    latencyMs: { p50: 10, p99: 9000, max: 10_000, count: 4640 },
    wire: { bytesUp: 232_000, eventsDelivered: 4640, bytesPerEvent: 50 },
    verdict: { ok: true, reasons: [] }
  }
}

interface Png { width: number, height: number, idatBytes: number, pixels: Buffer, channels: number }

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

/** Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes) to raw pixels. */
function decodePng (file: Buffer): Png {
  if (!file.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error('not a PNG: bad signature')
  let width = 0; let height = 0; let channels = 0
  const idat: Buffer[] = []
  for (let off = 8; off + 8 <= file.length;) {
    const len = file.readUInt32BE(off)
    const type = file.toString('latin1', off + 4, off + 8)
    const data = file.subarray(off + 8, off + 8 + len)
    if (type === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4)
      const depth = data[8]; const colour = data[9]; const interlace = data[12]
      if (depth !== 8 || interlace !== 0 || (colour !== 2 && colour !== 6)) throw new Error(`unsupported PNG: depth ${depth}, colour ${colour}, interlace ${interlace}`)
      channels = colour === 6 ? 4 : 3
    } else if (type === 'IDAT') idat.push(data)
    else if (type === 'IEND') break
    off += 12 + len
  }
  const raw = inflateSync(Buffer.concat(idat))
  const stride = width * channels
  if (raw.length !== height * (stride + 1)) throw new Error(`PNG data is ${raw.length} bytes, expected ${height * (stride + 1)}`)
  const pixels = Buffer.alloc(height * stride)
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x] ?? 0
      const a = x >= channels ? pixels[y * stride + x - channels] ?? 0 : 0
      const b = y > 0 ? pixels[(y - 1) * stride + x] ?? 0 : 0
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels] ?? 0 : 0
      let pred = 0
      if (filter === 1) pred = a
      else if (filter === 2) pred = b
      else if (filter === 3) pred = (a + b) >> 1
      else if (filter === 4) {
        const p = a + b - c
        const pa = Math.abs(p - a); const pb = Math.abs(p - b); const pc = Math.abs(p - c)
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
      } else if (filter !== 0) throw new Error(`bad PNG filter ${filter} on row ${y}`)
      pixels[y * stride + x] = (v + pred) & 0xff
    }
  }
  return { width, height, idatBytes: Buffer.concat(idat).length, pixels, channels }
}

function colourCounts (png: Png): Map<number, number> {
  const counts = new Map<number, number>()
  for (let i = 0; i < png.pixels.length; i += png.channels) {
    const rgb = ((png.pixels[i] ?? 0) << 16) | ((png.pixels[i + 1] ?? 0) << 8) | (png.pixels[i + 2] ?? 0)
    counts.set(rgb, (counts.get(rgb) ?? 0) + 1)
  }
  return counts
}

/** Pixels within a small tolerance of `hex` (colour management may shift a channel by a step). */
function pixelsNear (counts: Map<number, number>, hex: string, tolerance = 4): number {
  const want = parseInt(hex.slice(1), 16)
  let n = 0
  for (const [rgb, c] of counts) {
    if (Math.abs((rgb >> 16) - (want >> 16)) <= tolerance && Math.abs(((rgb >> 8) & 0xff) - ((want >> 8) & 0xff)) <= tolerance && Math.abs((rgb & 0xff) - (want & 0xff)) <= tolerance) n += c
  }
  return n
}

function svgOf (dom: string, kind: string): string {
  const start = dom.search(new RegExp(`<svg\\b[^>]*data-chart="${kind}"`))
  if (start === -1) return ''
  return dom.slice(start, dom.indexOf('</svg>', start))
}

t.test('report.html renders its charts in headless Chromium', async (t) => {
  const bin = findOnPath(CHROMIUM_NAMES)
  if (bin === undefined) {
    t.fail(`no Chromium found on PATH (tried ${CHROMIUM_NAMES.join(', ')}); install it with ` +
      '`apt-get install -y chromium` (.ci/run does this on CI)')
    return
  }
  const version = await runChromium(bin, t.testdir(), 'version', ['--version'])
  t.comment(`using ${bin}: ${version.stdout.trim()}`)

  const dir = t.testdir({ 'empty.html': '<!DOCTYPE html><html><body style="background:#fafafa"></body></html>' })
  const { html } = await writeReport(join(dir, 'out'), result())
  const url = pathToFileURL(html).href

  await t.test('the DOM holds the four charts with their paths, lines and bars', async (t) => {
    const run = await runChromium(bin, dir, 'dom', ['--dump-dom', url])
    t.equal(run.code, 0, `chromium exit code (stderr tail: ${run.stderr.slice(-500)})`)
    const dom = run.stdout
    t.match(dom, /<h1>edgefwd simulation: browser-check<\/h1>/)
    t.notMatch(dom, /<script/i, 'the description stayed text')
    t.match(dom, /An outage &lt;script&gt;alert\(1\)&lt;\/script&gt; in the middle\./)
    t.same([...dom.matchAll(/<svg\b[^>]*data-chart="([a-z]+)"/g)].map((m) => m[1]), ['timeline', 'buffer', 'delivery', 'evictions'])
    t.same([...svgOf(dom, 'buffer').matchAll(/<path data-priority="([a-z]+)" d="M/g)].map((m) => m[1]), ['low', 'normal', 'high', 'critical'])
    t.match(svgOf(dom, 'buffer'), /data-series="fill"/)
    t.same([...svgOf(dom, 'delivery').matchAll(/<polyline data-series="([a-z]+)"/g)].map((m) => m[1]).sort(), ['delivered', 'sent'])
    t.ok([...svgOf(dom, 'evictions').matchAll(/<rect data-bar=/g)].length > 0, 'eviction bars')
    t.ok([...svgOf(dom, 'timeline').matchAll(/<rect data-band="link"/g)].length >= 3, 'link bands')
    t.match(svgOf(dom, 'timeline'), /data-state="outage"/)
  })

  await t.test('the screenshot is a PNG with the charts painted', async (t) => {
    const shot = join(dir, 'report.png')
    const blank = join(dir, 'empty.png')
    for (const [file, page, profile] of [[shot, url, 'shot'], [blank, pathToFileURL(join(dir, 'empty.html')).href, 'blank']] as const) {
      const run = await runChromium(bin, dir, profile, [`--screenshot=${file}`, `--window-size=${WIDTH},${HEIGHT}`, page])
      t.equal(run.code, 0, `chromium exit code for ${profile} (stderr tail: ${run.stderr.slice(-500)})`)
    }
    const bytes = readFileSync(shot)
    t.ok(bytes.subarray(0, 8).equals(PNG_SIGNATURE), 'PNG signature')
    t.ok(bytes.length > 20_000, `screenshot is ${bytes.length} bytes (> 20 KB)`)
    const png = decodePng(bytes)
    const empty = decodePng(readFileSync(blank))
    t.same([png.width, png.height], [WIDTH, HEIGHT], 'window size')
    t.ok(png.idatBytes > 3 * empty.idatBytes, `image data ${png.idatBytes} bytes vs an empty page's ${empty.idatBytes}`)
    t.ok(colourCounts(empty).size <= 4, 'the empty page is (nearly) one colour')
    const counts = colourCounts(png)
    t.ok(counts.size > 50, `${counts.size} distinct colours`)
    // Opaque fills of the report: timeline bands and eviction bars (outage red), connected
    // bands and the verdict banner (dark green), the uplink lane (online green).
    t.ok(pixelsNear(counts, '#c62828') > 2000, 'outage red painted')
    t.ok(pixelsNear(counts, '#2e7d32') > 5000, 'connected green painted')
    t.ok(pixelsNear(counts, '#43a047') > 2000, 'uplink online green painted')
  })
})
