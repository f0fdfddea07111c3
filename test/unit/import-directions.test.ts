/**
 * The dependency direction of ../shared/DESIGN.md, checked on every import under src/ (type-only
 * imports and dynamic import() included): ingest, store and uplink never import each other (they
 * meet in src/contracts.ts), nothing imports the CLI, the parts below the forwarder never import
 * it, and src/ never reaches into simulate/, bench/ or test/. And the other way: simulate/ uses
 * src/ only through its public API, src/index.ts, as a user's program would. No exceptions.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const SRC = fileURLToPath(new URL('../../src/', import.meta.url))
const SIMULATE = fileURLToPath(new URL('../../simulate/', import.meta.url))
const PUBLIC_API = join(SRC, 'index')
const ROOT = dirname(normalize(SRC))

/** A file's part: its directory under src/, or its name for a file at the top (forwarder, contracts, ...). */
function part (file: string): string {
  const [first, second] = relative(SRC, file).split(sep)
  return second === undefined ? (first ?? '').replace(/\.[jt]s$/, '') : first ?? ''
}

/** [from part, to part] pairs that must not exist, with why. */
const FORBIDDEN: Array<{ from: (p: string) => boolean, to: (p: string) => boolean, why: string }> = [
  { from: p => p === 'ingest', to: p => p === 'store' || p === 'uplink', why: 'ingest reaches the store through contracts.ts (EventSink)' },
  { from: p => p === 'uplink', to: p => p === 'store' || p === 'ingest', why: 'the uplink reaches the store through contracts.ts (BatchSource, Lease)' },
  { from: p => p === 'store', to: p => p === 'ingest' || p === 'uplink', why: 'the store does not know its callers' },
  // The public API re-exports the shape of a command and the exit codes, for commands kept
  // outside src/ (simulate/command.ts) that bin/commands.ts adds to the CLI.
  { from: p => p !== 'cli' && p !== 'index', to: p => p === 'cli', why: 'nothing imports the CLI' },
  // The Supervisor (control/) starts and restarts forwarders, and gateway.ts starts the
  // Supervisor and the agent side (agent/): all three sit above the forwarder.
  { from: p => p !== 'cli' && p !== 'gateway' && p !== 'control' && p !== 'agent' && p !== 'forwarder' && p !== 'index', to: p => p === 'forwarder', why: 'the parts below the forwarder do not import it' },
  // `edgefwd mcp` is a client of a running gateway: it shares the agent protocol's types, nothing that runs one.
  { from: p => p === 'mcp', to: p => ['forwarder', 'gateway', 'control', 'store', 'ingest', 'uplink', 'pki'].includes(p), why: 'edgefwd mcp reaches the gateway through the agent socket only' },
  { from: () => true, to: p => p.startsWith('../'), why: 'src/ does not reach into simulate/, bench/ or test/' }
]

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm

export interface Violation { file: string, target: string, why: string }

/** Every forbidden import in `files` (path -> source text). */
export function violations (files: ReadonlyMap<string, string>): Violation[] {
  const found: Violation[] = []
  for (const [file, text] of files) {
    const from = part(file)
    for (const m of text.matchAll(IMPORT)) {
      const resolved = normalize(join(dirname(file), m[1] as string))
      const inside = resolved.startsWith(SRC)
      const to = inside ? part(resolved) : `../${relative(ROOT, resolved).split(sep)[0] ?? ''}`
      if (to === from) continue
      for (const rule of FORBIDDEN) {
        if (rule.from(from) && rule.to(to)) found.push({ file: relative(SRC, file), target: m[1] as string, why: rule.why })
      }
    }
  }
  return found
}

/** Every import of src/ other than src/index.js in `files` (path under simulate/ -> source text). */
export function publicApiViolations (files: ReadonlyMap<string, string>): Violation[] {
  const found: Violation[] = []
  for (const [file, text] of files) {
    for (const m of text.matchAll(IMPORT)) {
      const resolved = normalize(join(dirname(file), m[1] as string))
      if (resolved.startsWith(SRC) && resolved.replace(/\.[jt]s$/, '') !== PUBLIC_API) {
        found.push({ file: relative(ROOT, file), target: m[1] as string, why: 'simulate/ uses src/ only through its public API, src/index.ts' })
      }
    }
  }
  return found
}

function sources (dir: string, out = new Map<string, string>()): Map<string, string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) sources(path, out)
    else if (entry.name.endsWith('.ts')) out.set(path, readFileSync(path, 'utf8'))
  }
  return out
}

const CHECKS = [
  { name: 'no import under src/ goes against the design\'s direction', dir: SRC, atLeast: 50, check: violations },
  { name: 'simulate/ imports nothing of src/ but its public API, src/index.js', dir: SIMULATE, atLeast: 10, check: publicApiViolations }
]

for (const { name, dir, atLeast, check } of CHECKS) {
  t.test(name, async t => {
    const files = sources(dir)
    t.ok(files.size > atLeast, `${files.size} files read`)
    const found = check(files)
    t.same(found, [], found.map(v => `${v.file} imports ${v.target}: ${v.why}`).join('\n'))
  })
}

t.test('the check finds a forbidden import of each kind (type-only and dynamic ones too)', async t => {
  const file = (path: string, text: string): [string, string] => [join(SRC, path), text]
  const found = violations(new Map([
    file('ingest/pipeline.ts', "import type { EventStore } from '../store/index.js'\n"),
    file('uplink/session.ts', "const x = await import('../store/ring-buffer.js')\n"),
    file('store/ring-buffer.ts', "import { Uplink } from '../uplink/session.js'\n"),
    file('observe/log.ts', "import { main } from '../cli/program.js'\n"),
    file('store/index.ts', "import { Forwarder } from '../forwarder.js'\n"),
    file('uplink/connect.ts', "import { startEmbeddedBroker } from '../../simulate/embedded-broker.js'\n"),
    file('ingest/frame.ts', "import type { EventSink } from '../contracts.js'\nimport { x } from './cobs.js'\n")
  ]))
  t.same(found.map(v => `${v.file} -> ${v.target}`), [
    'ingest/pipeline.ts -> ../store/index.js',
    'uplink/session.ts -> ../store/ring-buffer.js',
    'store/ring-buffer.ts -> ../uplink/session.js',
    'observe/log.ts -> ../cli/program.js',
    'store/index.ts -> ../forwarder.js',
    'uplink/connect.ts -> ../../simulate/embedded-broker.js'
  ])
})

t.test('the simulate/ check finds an internal import of each kind (type-only and dynamic ones too)', async t => {
  const file = (path: string, text: string): [string, string] => [join(SIMULATE, path), text]
  const found = publicApiViolations(new Map([
    file('devices.ts', "import { parseAck } from '../src/ingest/ack.js'\nimport { encodeFrame } from '../src/index.js'\n"),
    file('simulation.ts', "import type { Forwarder } from '../src/forwarder.js'\nimport { seededRandom } from './random.js'\n"),
    file('command-run.ts', "const cli = await import('../src/cli/program.js')\n"),
    file('report.ts', "import type { Config } from '../src/index.js'\nexport { x } from '../src/config/index.js'\n"),
    file('nested/x.ts', "import { startGateway } from '../../src/index.js'\nimport { y } from '../../src/gateway.js'\n")
  ]))
  t.same(found.map(v => `${v.file} -> ${v.target}`), [
    'simulate/devices.ts -> ../src/ingest/ack.js',
    'simulate/simulation.ts -> ../src/forwarder.js',
    'simulate/command-run.ts -> ../src/cli/program.js',
    'simulate/report.ts -> ../src/config/index.js',
    'simulate/nested/x.ts -> ../../src/gateway.js'
  ])
})
