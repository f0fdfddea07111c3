#!/usr/bin/env node
/**
 * npm run build:sea [-- --target x64,arm64,armv7l] [--no-xz]
 *
 * Makes the single-executable binaries dist/edgefwd-linux-{x64,arm64,armv7l}, their .xz copies
 * and dist/SHA256SUMS. Per target (packaging/sea/targets.json):
 *   1. the base Node binary: `npm pack` of the pinned node-linux-<arch> package (from the npm
 *      cache when it is there, so the build runs offline once fetched), tarball integrity
 *      checked, bin/node extracted and stripped (binutils for that architecture);
 *   2. the bundle: esbuild of packaging/sea/entry.ts into one CommonJS file, with the version,
 *      the built-in simulation scenarios and the LevelDB addon's hash defined in, classic-level's
 *      addon lookup replaced by packaging/sea/addon-loader.ts, and the optional packages some
 *      libraries probe for (long, bufferutil, …) answered "not found" inside the bundle;
 *   3. the preparation blob, made by the target's own node (under qemu-user for arm: a blob is
 *      only valid for the node that made it), with V8's code cache where that node supports it
 *      and the addon as an asset (or inlined in the bundle where assets do not exist: Node 20.11);
 *   4. postject puts the blob into the stripped node; xz -9 (with the x86 filter for x64) makes
 *      the compressed copy (~100 s per binary here: one block, one thread).
 * Intermediate files go to dist/sea/. Needs: binutils (+ binutils-aarch64-linux-gnu,
 * binutils-arm-linux-gnueabihf), qemu-user-static and the cross C libraries for the arm targets;
 * a missing tool is named with its Debian package.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'
import postject from 'postject'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist')
const work = join(dist, 'sea')
const FORWARDER_COMMAND = '__edgefwd-simulation-forwarder'
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'
const ADDON_ASSET = 'leveldb.node'
/** The MCP server, bundled apart (packaging/sea/mcp-loader.ts). */
const MCP_ASSET = 'mcp.cjs'
/**
 * Packages that libraries in the bundle probe for with require() and do without. serialport:
 * modbus-serial requires it (in a try) for its own serial ports; edgefwd's Modbus RTU uses the
 * tty directly (src/ingest/sources/modbus/tty-port.ts), and serialport's native addon could not
 * load from the executable anyway.
 */
const ABSENT_PACKAGES = ['long', 'supports-color', 'bufferutil', 'utf-8-validate', 'msgpackr-extract', 'serialport']

const targets = JSON.parse(readFileSync(join(root, 'packaging/sea/targets.json'), 'utf8'))
const { values: options } = parseArgs({ options: { target: { type: 'string' }, 'no-xz': { type: 'boolean' } } })
const wanted = options.target === undefined ? ['x64', 'arm64', 'armv7l'] : options.target.split(',')
for (const name of wanted) if (targets[name] === undefined || name.startsWith('_')) fail(`unknown target ${name}; the targets are x64, arm64, armv7l`)
const withXz = options['no-xz'] !== true
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version

mkdirSync(work, { recursive: true })
const made = []
for (const name of wanted) made.push(await buildTarget(name, targets[name]))
writeSums()
console.log('\ntarget   node      binary     xz')
for (const m of made) console.log(`${m.name.padEnd(8)} ${m.node.padEnd(9)} ${mb(m.size).padStart(8)}  ${m.xzSize === undefined ? '-' : mb(m.xzSize).padStart(8)}`)

async function buildTarget (name, target) {
  const started = Date.now()
  const dir = join(work, name)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const run = runnerFor(target)
  const baseNode = await fetchNode(target)
  const node = join(dir, 'node')
  copyFileSync(baseNode, node)
  need(target.strip, target.stripPackage)
  exec(target.strip, [node])
  const nodeVersion = exec(...run(node, ['--version'])).trim()
  if (nodeVersion !== `v${target.version}`) fail(`${name}: the base node says ${nodeVersion}, expected v${target.version}`)
  const [major, minor] = target.version.split('.').map(Number)
  const hasAssets = major > 20 || (major === 20 && minor >= 12)

  const addon = readFileSync(join(root, target.addon))
  const addonSpec = { sha256: sha256(addon), ...(hasAssets ? { asset: ADDON_ASSET } : { base64: addon.toString('base64') }) }
  const mcpBundle = join(dir, MCP_ASSET)
  await bundleMcp(mcpBundle, major)
  const mcpSpec = hasAssets ? { asset: MCP_ASSET } : { source: readFileSync(mcpBundle, 'utf8') }
  const bundle = join(dir, 'edgefwd.cjs')
  await bundleFor(bundle, { node: major, addon: addonSpec, mcp: mcpSpec })

  const blob = join(dir, 'sea-prep.blob')
  const config = {
    main: relative(dir, bundle),
    output: relative(dir, blob),
    disableExperimentalSEAWarning: true,
    ...(hasAssets ? { useSnapshot: false, useCodeCache: true, assets: { [ADDON_ASSET]: join(root, target.addon), [MCP_ASSET]: mcpBundle } } : {}),
    ...(target.execArgv !== undefined && major >= 24 ? { execArgv: target.execArgv } : {})
  }
  writeFileSync(join(dir, 'sea-config.json'), JSON.stringify(config, null, 2))
  exec(...run(node, ['--experimental-sea-config', 'sea-config.json']), { cwd: dir })

  const out = join(dist, `edgefwd-linux-${name}`)
  const temp = `${out}.tmp`
  copyFileSync(node, temp)
  await postject.inject(temp, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE })
  chmodSync(temp, 0o755)
  renameSync(temp, out)
  const printed = exec(...run(out, ['--version'])).trim()
  if (printed !== version) fail(`${name}: the new binary printed ${JSON.stringify(printed)} for --version, expected ${version}`)

  let xzSize
  if (withXz) {
    need('xz', 'xz-utils')
    rmSync(`${out}.xz`, { force: true })
    exec('xz', [...(target.xzFilters ?? []), '--lzma2=preset=9', '--keep', '--force', out])
    xzSize = statSync(`${out}.xz`).size
  } else {
    rmSync(`${out}.xz`, { force: true })
  }
  console.log(`${basename(out)}: node ${nodeVersion}, ${mb(statSync(out).size)}${xzSize === undefined ? '' : `, xz ${mb(xzSize)}`} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
  return { name, node: nodeVersion, size: statSync(out).size, xzSize }
}

/** How to run a binary of this target here: natively, or under qemu-user with the cross libraries. */
function runnerFor (target) {
  if (target.qemu === undefined) return (file, args) => [file, args]
  need(target.qemu, 'qemu-user-static')
  if (!existsSync(target.sysroot)) fail(`${target.sysroot} is missing: apt-get install ${target.sysrootPackages}`)
  return (file, args) => [target.qemu, ['-L', target.sysroot, file, ...args]]
}

/** bin/node of the pinned package, from dist/sea/base/ or fetched with npm pack (cache first). */
async function fetchNode (target) {
  const dir = join(work, 'base', `${target.package}-${target.version}`)
  const node = join(dir, 'node')
  const stamp = join(dir, 'node.sha256')
  if (existsSync(node) && existsSync(stamp) && readFileSync(stamp, 'utf8') === sha256(readFileSync(node))) return node
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const spec = `${target.package}@${target.version}`
  const packed = JSON.parse(exec('npm', ['pack', spec, '--prefer-offline', '--json', '--pack-destination', dir], { stdio: ['ignore', 'pipe', 'inherit'] }))
  const tarball = join(dir, packed[0].filename)
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`
  if (integrity !== target.integrity) fail(`${spec}: tarball integrity ${integrity} does not match the pinned ${target.integrity}`)
  exec('tar', ['-xzf', tarball, '-C', dir, 'package/bin/node'])
  renameSync(join(dir, 'package/bin/node'), node)
  rmSync(join(dir, 'package'), { recursive: true, force: true })
  rmSync(tarball)
  writeFileSync(stamp, sha256(readFileSync(node)))
  return node
}

/** The options both bundles share. */
function bundleOptions (node) {
  return {
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${node}`,
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'eof',
    external: ['node:sea'],
    logLevel: 'warning',
    // import.meta is empty in CommonJS; the places that read it (version.ts, scenario.ts,
    // forwarder-child.ts) use the defines instead when bundled.
    logOverride: { 'empty-import-meta': 'silent' },
  }
}

/** src/mcp/server.ts with the MCP SDK, as a CommonJS module for packaging/sea/mcp-loader.ts. */
async function bundleMcp (outfile, node) {
  const result = await build({
    ...bundleOptions(node),
    // Only `mcp` loads it, and its size is the single executable's: short names, but the classes
    // keep theirs (the logs name an error's class).
    minifyIdentifiers: true,
    keepNames: true,
    entryPoints: [join(root, 'src/mcp/server.ts')],
    outfile,
    define: { EDGEFWD_VERSION: JSON.stringify(version) },
    plugins: [{ name: 'edgefwd-sea-mcp', setup (b) { sharedPlugins(b) } }]
  })
  if (result.errors.length > 0) fail('esbuild failed (the MCP bundle)')
}

async function bundleFor (outfile, { node, addon, mcp }) {
  const loader = join(root, 'packaging/sea/addon-loader.ts')
  const mcpLoader = join(root, 'packaging/sea/mcp-loader.ts')
  const result = await build({
    ...bundleOptions(node),
    entryPoints: [join(root, 'packaging/sea/entry.ts')],
    outfile,
    define: {
      EDGEFWD_VERSION: JSON.stringify(version),
      EDGEFWD_SCENARIOS: JSON.stringify(builtinScenarios()),
      EDGEFWD_FORWARDER_COMMAND: JSON.stringify(FORWARDER_COMMAND),
      EDGEFWD_ADDON: JSON.stringify(addon),
      EDGEFWD_MCP: JSON.stringify(mcp)
    },
    plugins: [{
      name: 'edgefwd-sea',
      setup (b) {
        b.onResolve({ filter: /^\.\/binding(\.js)?$/ }, args => args.importer.includes(`${sep}classic-level${sep}`) ? { path: 'leveldb-binding', namespace: 'edgefwd-sea' } : undefined)
        b.onLoad({ filter: /^leveldb-binding$/, namespace: 'edgefwd-sea' }, () => ({
          contents: `module.exports = require(${JSON.stringify(loader)}).loadEmbeddedAddon(EDGEFWD_ADDON)`,
          loader: 'js',
          resolveDir: root
        }))
        // The MCP server is the asset (bundleMcp), not part of this script.
        b.onResolve({ filter: /\/mcp\/server\.js$/ }, args => args.importer.startsWith(join(root, 'src')) ? { path: 'mcp-server', namespace: 'edgefwd-sea' } : undefined)
        b.onLoad({ filter: /^mcp-server$/, namespace: 'edgefwd-sea' }, () => ({
          contents: `module.exports = require(${JSON.stringify(mcpLoader)}).loadEmbeddedMcp(EDGEFWD_MCP)`,
          loader: 'js',
          resolveDir: root
        }))
        sharedPlugins(b)
      }
    }]
  })
  if (result.errors.length > 0) fail('esbuild failed')
}

/** What both bundles do alike: zod's English locale only, and the optional packages answered "not found". */
function sharedPlugins (b) {
  // zod re-exports all of its ~60 locales (`z.locales`), ~16 ms of every start; edgefwd's
  // messages are its own or zod's English ones, so the bundle keeps only `en`.
  b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, args => args.importer.includes(`${sep}zod${sep}`)
    ? { path: join(dirname(args.importer), '../locales/index.js'), namespace: 'edgefwd-zod-locales' }
    : undefined)
  b.onLoad({ filter: /.*/, namespace: 'edgefwd-zod-locales' }, args => ({
    contents: `export { default as en } from ${JSON.stringify(join(dirname(args.path), 'en.js'))}`,
    loader: 'js',
    resolveDir: dirname(args.path)
  }))
  const absent = new RegExp(`^(${ABSENT_PACKAGES.join('|')})$`)
  b.onResolve({ filter: absent }, args => ({ path: args.path, namespace: 'edgefwd-absent' }))
  b.onLoad({ filter: /.*/, namespace: 'edgefwd-absent' }, args => ({
    contents: `const e = new Error(${JSON.stringify(`Cannot find module '${args.path}' (not part of the single executable)`)}); e.code = 'MODULE_NOT_FOUND'; throw e`,
    loader: 'js'
  }))
}

function builtinScenarios () {
  const dir = join(root, 'simulate/scenarios')
  const scenarios = {}
  for (const file of readdirSync(dir).sort()) {
    if (['.yaml', '.yml', '.json'].includes(extname(file))) scenarios[file.slice(0, -extname(file).length)] = readFileSync(join(dir, file), 'utf8')
  }
  return scenarios
}

function writeSums () {
  const files = readdirSync(dist).filter(f => /^edgefwd-linux-[a-z0-9]+(\.xz)?$/.test(f)).sort()
  writeFileSync(join(dist, 'SHA256SUMS'), files.map(f => `${sha256(readFileSync(join(dist, f)))}  ${f}\n`).join(''))
}

function exec (command, args, opts = {}) {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'], ...opts })
  if (r.error !== undefined) fail(`${command}: ${r.error.message}`)
  if (r.status !== 0) fail(`${command} ${args.join(' ')} exited ${r.status ?? r.signal}\n${r.stderr ?? ''}`)
  return r.stdout ?? ''
}

function need (command, debianPackage) {
  const r = spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' })
  if (r.status !== 0) fail(`${command} not found: apt-get install ${debianPackage}`)
}

function sha256 (bytes) { return createHash('sha256').update(bytes).digest('hex') }
function mb (bytes) { return `${(bytes / 1e6).toFixed(1)} MB` }
function fail (message) {
  console.error(`build:sea: ${message}`)
  process.exit(1)
}
