#!/usr/bin/env node
// `npm run build:deb`: Debian packages of the single-executable binaries made by `npm run build:sea`.
//
//   node scripts/build-deb.mjs [--bin-dir DIR] [--out DIR] [--arch amd64,arm64,armhf]
//
// One package per architecture, dist/deb/edgefwd_<version>_<arch>.deb, from dist/edgefwd-linux-
// <node arch>. The layout, the maintainer scripts and the Depends are described in
// docs/packaging.md. Two builds of the same inputs give identical files: every mtime is set to
// SOURCE_DATE_EPOCH (the environment's, else the last commit's time), modes are set explicitly
// (the umask does not matter), owners are root (--root-owner-group), and dpkg-deb sorts names.
//
// Before packaging a binary, its ELF header is checked against the architecture (a binary for
// the wrong machine would install and then fail with "Exec format error" on every gateway), and
// its dynamic section is read for the Depends: each shared library it needs maps to a package,
// and the highest GLIBC_/GLIBCXX_ symbol versions it asks for become version floors.
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, closeSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/**
 * Node's name for the architecture (the binary's suffix), Debian's, and what the ELF header of a
 * binary for it says. `libc` is the least glibc the package asks for whatever the binary's
 * symbol versions say: on armhf the LevelDB addon, which the single executable unpacks and
 * loads at run time (so it is not in the binary's own dynamic section), needs glibc 2.34.
 */
export const ARCHES = [
  { node: 'x64', deb: 'amd64', elfMachine: 62, elfClass: 64, libc: '2.28' },
  { node: 'arm64', deb: 'arm64', elfMachine: 183, elfClass: 64, libc: '2.28' },
  { node: 'armv7l', deb: 'armhf', elfMachine: 40, elfClass: 32, libc: '2.34' },
]

const MAINTAINER = 'edgefwd maintainers <maintainers@edgefwd.invalid>'
const CONFFILES = ['/etc/edgefwd/edgefwd.yaml']

/** Shared libraries a binary may need, and the Debian package that provides each. */
const LIBRARY_PACKAGES = new Map([
  ['libc.so.6', 'libc6'], ['libm.so.6', 'libc6'], ['libdl.so.2', 'libc6'], ['libpthread.so.0', 'libc6'],
  ['librt.so.1', 'libc6'], ['ld-linux-x86-64.so.2', 'libc6'], ['ld-linux-aarch64.so.1', 'libc6'],
  ['ld-linux-armhf.so.3', 'libc6'], ['ld-linux.so.3', 'libc6'],
  ['libstdc++.so.6', 'libstdc++6'], ['libatomic.so.1', 'libatomic1'],
  // libgcc1 before Debian 11 and Ubuntu 20.04; the newer libgcc-s1 provides it.
  ['libgcc_s.so.1', 'libgcc-s1 | libgcc1'],
])

/** GLIBCXX_3.4.N symbol version -> the first GCC release (= libstdc++6 version) that has it. */
const GLIBCXX_GCC = new Map([
  [19, '4.8.3'], [20, '4.9'], [21, '5'], [22, '6'], [23, '7'], [24, '7.2'], [25, '8'], [26, '9'],
  [27, '9.2'], [28, '9.3'], [29, '11'], [30, '12'], [31, '13'], [32, '13.2'], [33, '14'],
])

class BuildError extends Error {}

function usage () {
  return [
    'usage: node scripts/build-deb.mjs [--bin-dir DIR] [--out DIR] [--arch ARCH[,ARCH...]]',
    '',
    '  --bin-dir DIR   where edgefwd-linux-{x64,arm64,armv7l} are (default dist, made by npm run build:sea)',
    '  --out DIR       where the .deb files go (default dist/deb)',
    `  --arch LIST     Debian architectures to build, comma-separated (default ${ARCHES.map(a => a.deb).join(',')})`,
  ].join('\n')
}

function parseOptions (argv) {
  let values
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'bin-dir': { type: 'string', default: 'dist' },
        out: { type: 'string', default: join('dist', 'deb') },
        arch: { type: 'string', default: ARCHES.map(a => a.deb).join(',') },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }))
  } catch (err) {
    throw new BuildError(`${err.message}\n${usage()}`)
  }
  const arches = values.arch.split(',').filter(Boolean).map(name => {
    const arch = ARCHES.find(a => a.deb === name)
    if (arch === undefined) throw new BuildError(`unknown architecture "${name}": expected ${ARCHES.map(a => a.deb).join(', ')}`)
    return arch
  })
  if (arches.length === 0) throw new BuildError('--arch names no architecture')
  return { help: values.help, binDir: resolve(values['bin-dir']), out: resolve(values.out), arches: [...new Set(arches)] }
}

// --- ELF -----------------------------------------------------------------------------------

function readAt (fd, position, length) {
  const buf = Buffer.alloc(length)
  const n = readSync(fd, buf, 0, length, position)
  if (n !== length) throw new BuildError(`truncated ELF file (wanted ${length} bytes at ${position})`)
  return buf
}

/**
 * What packaging needs from an ELF file: class, machine, DT_NEEDED libraries and the symbol
 * versions required from each (.gnu.version_r). Little-endian only, as all three targets are.
 * A file without section headers (a static stand-in) has no needs.
 */
export function readElf (file) {
  const fd = openSync(file, 'r')
  try {
    const size = statSync(file).size
    if (size < 52) throw new BuildError(`${file} is not an ELF executable (${size} bytes)`)
    const ident = readAt(fd, 0, 64 > size ? 52 : 64)
    if (ident.readUInt32BE(0) !== 0x7f454c46) throw new BuildError(`${file} is not an ELF executable (no ELF magic)`)
    const elfClass = ident[4] === 2 ? 64 : ident[4] === 1 ? 32 : undefined
    if (elfClass === undefined) throw new BuildError(`${file}: unknown ELF class ${ident[4]}`)
    if (ident[5] !== 1) throw new BuildError(`${file}: big-endian ELF files are not supported`)
    const machine = ident.readUInt16LE(18)
    const is64 = elfClass === 64
    const word = (buf, at) => is64 ? Number(buf.readBigUInt64LE(at)) : buf.readUInt32LE(at)
    const shoff = word(ident, is64 ? 0x28 : 0x20)
    const shentsize = ident.readUInt16LE(is64 ? 0x3a : 0x2e)
    const shnum = ident.readUInt16LE(is64 ? 0x3c : 0x30)
    const elf = { elfClass, machine, needed: [], versions: new Map() }
    if (shoff === 0 || shnum === 0) return elf
    const table = readAt(fd, shoff, shentsize * shnum)
    const sections = Array.from({ length: shnum }, (_, i) => {
      const at = i * shentsize
      return {
        type: table.readUInt32LE(at + 4),
        offset: word(table, at + (is64 ? 24 : 16)),
        size: word(table, at + (is64 ? 32 : 20)),
        link: table.readUInt32LE(at + (is64 ? 40 : 24)),
        info: table.readUInt32LE(at + (is64 ? 44 : 28)),
      }
    })
    const contents = s => readAt(fd, s.offset, s.size)
    const cstring = (buf, at) => buf.toString('latin1', at, buf.indexOf(0, at))
    for (const s of sections) {
      if (s.type === 6) { // SHT_DYNAMIC: DT_NEEDED (1) entries name libraries in the linked string table
        const dyn = contents(s)
        const strtab = contents(sections[s.link])
        const entry = is64 ? 16 : 8
        for (let at = 0; at + entry <= dyn.length; at += entry) {
          const tag = word(dyn, at)
          if (tag === 0) break
          if (tag === 1) elf.needed.push(cstring(strtab, word(dyn, at + entry / 2)))
        }
      } else if (s.type === 0x6ffffffe) { // SHT_GNU_verneed: Elf_Verneed records, each with Elf_Vernaux
        const vn = contents(s)
        const strtab = contents(sections[s.link])
        let at = 0
        for (let i = 0; i < s.info; i++) {
          const file = cstring(strtab, vn.readUInt32LE(at + 4))
          const names = elf.versions.get(file) ?? []
          let aux = at + vn.readUInt32LE(at + 8)
          for (let j = 0; j < vn.readUInt16LE(at + 2); j++) {
            names.push(cstring(strtab, vn.readUInt32LE(aux + 8)))
            aux += vn.readUInt32LE(aux + 12)
          }
          elf.versions.set(file, names)
          at += vn.readUInt32LE(at + 12)
        }
      }
    }
    return elf
  } finally {
    closeSync(fd)
  }
}

/** Compares dotted version numbers ("2.28" < "2.34"). */
function compareVersions (a, b) {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

function highest (versions, prefix) {
  return versions.filter(v => v.startsWith(prefix)).map(v => v.slice(prefix.length))
    .filter(v => /^\d+(\.\d+)*$/.test(v)).sort(compareVersions).at(-1)
}

/**
 * The Depends field: the packages of the libraries the binary and the LevelDB addon it unpacks at
 * run time need, with version floors from their symbol versions, and passwd (postinst's useradd).
 */
export function dependsFor (elves, arch) {
  const allVersions = elves.flatMap(({ elf }) => [...elf.versions.values()].flat())
  const packages = new Set(['libc6'])
  for (const { file, elf } of elves) {
    for (const lib of elf.needed) {
      const pkg = LIBRARY_PACKAGES.get(lib)
      if (pkg === undefined) throw new BuildError(`${file} needs ${lib}, which scripts/build-deb.mjs maps to no Debian package: add it to LIBRARY_PACKAGES`)
      packages.add(pkg)
    }
  }
  const glibc = [arch.libc, highest(allVersions, 'GLIBC_')].filter(Boolean).sort(compareVersions).at(-1)
  const depends = [`libc6 (>= ${glibc})`]
  for (const pkg of [...packages].filter(p => p !== 'libc6').sort()) {
    if (pkg === 'libstdc++6') {
      const minor = highest(allVersions, 'GLIBCXX_3.4.')
      const gcc = minor === undefined ? undefined : GLIBCXX_GCC.get(Number(minor))
      if (minor !== undefined && Number(minor) > 19 && gcc === undefined) throw new BuildError(`GLIBCXX_3.4.${minor} is needed: add the GCC release that brought it to GLIBCXX_GCC in scripts/build-deb.mjs`)
      depends.push(gcc === undefined ? pkg : `${pkg} (>= ${gcc})`)
    } else {
      depends.push(pkg)
    }
  }
  depends.push('passwd')
  return depends.join(', ')
}

// --- Staging -------------------------------------------------------------------------------

function sourceDateEpoch () {
  const fromEnv = process.env.SOURCE_DATE_EPOCH
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!/^\d+$/.test(fromEnv)) throw new BuildError(`SOURCE_DATE_EPOCH must be a number of seconds, got "${fromEnv}"`)
    return Number(fromEnv)
  }
  const git = spawnSync('git', ['log', '-1', '--format=%ct'], { cwd: repo, encoding: 'utf8' })
  if (git.status === 0 && /^\d+\s*$/.test(git.stdout)) return Number(git.stdout.trim())
  // No git (a source tarball): the newest of the packaging inputs, still the same on every build.
  return Math.max(...['package.json', 'packaging/edgefwd.service', 'packaging/edgefwd.yaml'].map(f => Math.floor(statSync(join(repo, f)).mtimeMs / 1000)))
}

function readInput (path, hint) {
  const file = join(repo, path)
  if (!existsSync(file)) throw new BuildError(`${path} is missing${hint === undefined ? '' : ` (${hint})`}`)
  return readFileSync(file)
}

/** The npm packages bundled into the executable (production dependencies in package-lock.json), one line each. */
function bundledPackages () {
  const lock = JSON.parse(readInput('package-lock.json').toString('utf8'))
  const lines = new Set()
  for (const [path, entry] of Object.entries(lock.packages ?? {})) {
    if (path === '' || entry.dev === true || entry.devOptional === true || entry.link === true) continue
    lines.add(` ${path.replace(/^.*node_modules\//, '')} ${entry.version}: ${entry.license ?? 'see the package'}`)
  }
  return [...lines].sort().join('\n')
}

function fill (template, values) {
  return template.replace(/@([A-Z_]+)@/g, (match, key) => {
    if (!(key in values)) throw new BuildError(`no value for ${match} in a packaging template`)
    return values[key]
  })
}

function writeStaged (root, path, content, mode) {
  const file = join(root, path)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, content)
  chmodSync(file, mode)
}

/** Walks the tree depth-first, children before their directory, so setting a child's time does not disturb its parent's. */
function walk (dir, visit) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name)
    if (lstatSync(path).isDirectory()) walk(path, visit)
    visit(path)
  }
}

function stage (root, arch, { binary, addon }, inputs) {
  copyFileSync(binary, join(mkdirp(root, 'usr/bin'), 'edgefwd'))
  chmodSync(join(root, 'usr/bin/edgefwd'), 0o755)
  writeStaged(root, 'usr/lib/systemd/system/edgefwd.service', inputs.unit, 0o644)
  // 0640 and 0750 already in the package: an upgrade that replaces the conffile never leaves it
  // readable by others before postinst gives it to the edgefwd group.
  writeStaged(root, 'etc/edgefwd/edgefwd.yaml', inputs.config, 0o640)
  mkdirp(root, 'etc/edgefwd/tls')
  writeStaged(root, 'usr/share/doc/edgefwd/copyright', inputs.copyright, 0o644)
  writeStaged(root, 'usr/share/doc/edgefwd/README.Debian', inputs.readme, 0o644)
  writeStaged(root, 'usr/share/doc/edgefwd/config.md', inputs.configDoc, 0o644)

  let installedKiB = 0
  const sums = []
  walk(root, path => {
    const st = lstatSync(path)
    const rel = relative(root, path)
    if (st.isDirectory()) {
      chmodSync(path, rel === 'etc/edgefwd' || rel === 'etc/edgefwd/tls' ? 0o750 : 0o755)
      installedKiB += 1
    } else {
      installedKiB += Math.ceil(st.size / 1024)
      if (!CONFFILES.includes(`/${rel}`)) sums.push(`${createHash('md5').update(readFileSync(path)).digest('hex')}  ${rel}`)
    }
  })
  chmodSync(root, 0o755)

  const control = fill(inputs.controlTemplate, {
    VERSION: inputs.version,
    ARCH: arch.deb,
    MAINTAINER,
    INSTALLED_SIZE: String(installedKiB),
    DEPENDS: dependsFor([binary, addon].map(file => ({ file, elf: readElf(file) })), arch),
  })
  writeStaged(root, 'DEBIAN/control', control, 0o644)
  writeStaged(root, 'DEBIAN/conffiles', CONFFILES.map(f => `${f}\n`).join(''), 0o644)
  writeStaged(root, 'DEBIAN/md5sums', sums.sort((a, b) => a.slice(34) < b.slice(34) ? -1 : 1).map(l => `${l}\n`).join(''), 0o644)
  for (const script of ['postinst', 'prerm', 'postrm']) writeStaged(root, `DEBIAN/${script}`, inputs.scripts[script], 0o755)
  chmodSync(join(root, 'DEBIAN'), 0o755)
}

function mkdirp (root, path) {
  const dir = join(root, path)
  mkdirSync(dir, { recursive: true })
  return dir
}

function checkElf (file, arch) {
  const elf = readElf(file)
  if (elf.machine !== arch.elfMachine || elf.elfClass !== arch.elfClass) {
    throw new BuildError(`${file} is an ELF${elf.elfClass} file for machine ${elf.machine}, not for ${arch.deb} (ELF${arch.elfClass}, machine ${arch.elfMachine})`)
  }
}

/**
 * The binary for ARCH and the LevelDB addon packaging/sea/targets.json says build-sea embedded in
 * it (its libraries are needed at run time too), both checked to be for ARCH.
 */
function inputFiles (arch, options, targets) {
  const binary = join(options.binDir, `edgefwd-linux-${arch.node}`)
  if (!existsSync(binary)) throw new BuildError(`${binary} is missing: run \`npm run build:sea\` first (or give --bin-dir)`)
  checkElf(binary, arch)
  const addonPath = targets[arch.node]?.addon
  if (typeof addonPath !== 'string') throw new BuildError(`packaging/sea/targets.json names no "addon" for ${arch.node}`)
  const addon = join(repo, addonPath)
  if (!existsSync(addon)) throw new BuildError(`${addon} (the LevelDB addon for ${arch.node}, from packaging/sea/targets.json) is missing: run \`npm ci\``)
  checkElf(addon, arch)
  return { binary, addon }
}

/** dpkg-deb, its stderr collected; xz of a 100 MB binary takes about a minute of one CPU. */
function dpkgDeb (args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn('dpkg-deb', args, { env, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', chunk => { stderr += chunk })
    child.on('error', err => { reject(new BuildError(`cannot run dpkg-deb (${err.message}): install dpkg`)) })
    child.on('close', status => { resolve({ status, stderr }) })
  })
}

async function buildOne (arch, options, inputs, epoch) {
  const files = inputFiles(arch, options, inputs.targets)
  const name = `edgefwd_${inputs.version}_${arch.deb}.deb`
  const root = mkdtempSync(join(tmpdir(), `edgefwd-deb-${arch.deb}-`))
  const partial = join(options.out, `.${name}.partial`)
  try {
    stage(root, arch, files, inputs)
    walk(root, path => { utimesSync(path, epoch, epoch) })
    utimesSync(root, epoch, epoch)
    const env = { ...process.env, SOURCE_DATE_EPOCH: String(epoch) }
    // One xz thread per package (packages are built in parallel instead): xz's multi-threaded
    // output depends on its block layout, single-threaded output only on the input.
    const built = await dpkgDeb(['--root-owner-group', '-Zxz', '--threads-max=1', '--build', root, partial], env)
    if (built.status !== 0) throw new BuildError(`dpkg-deb failed for ${name}:\n${built.stderr}`)
    renameSync(partial, join(options.out, name))
  } finally {
    rmSync(root, { recursive: true, force: true })
    rmSync(partial, { force: true })
  }
  const file = join(options.out, name)
  const sha256 = createHash('sha256').update(readFileSync(file)).digest('hex')
  return `wrote ${relative(process.cwd(), file) || file} (${(statSync(file).size / 1048576).toFixed(1)} MiB, sha256 ${sha256})`
}

async function main (argv) {
  const options = parseOptions(argv)
  if (options.help) {
    process.stdout.write(`${usage()}\n`)
    return
  }
  const pkg = JSON.parse(readInput('package.json').toString('utf8'))
  const inputs = {
    version: pkg.version,
    unit: readInput('packaging/edgefwd.service', 'the systemd unit'),
    config: readInput('packaging/edgefwd.yaml', 'the default configuration'),
    readme: readInput('packaging/deb/README.Debian'),
    configDoc: readInput('docs/config.md'),
    copyright: fill(readInput('packaging/deb/copyright.in').toString('utf8'), { BUNDLED: bundledPackages() }),
    controlTemplate: readInput('packaging/deb/control.in').toString('utf8'),
    targets: JSON.parse(readInput('packaging/sea/targets.json', 'written with scripts/build-sea.mjs').toString('utf8')),
    scripts: Object.fromEntries(['postinst', 'prerm', 'postrm'].map(s => [s, readInput(`packaging/deb/${s}`)])),
  }
  if (typeof pkg.version !== 'string' || !/^[0-9][A-Za-z0-9.+~-]*$/.test(pkg.version)) throw new BuildError(`package.json version "${pkg.version}" is not a Debian version`)
  const epoch = sourceDateEpoch()
  // Every binary is checked before anything is built, so a missing one fails at once, not after minutes of xz.
  for (const arch of options.arches) inputFiles(arch, options, inputs.targets)
  mkdirSync(options.out, { recursive: true })
  const queue = [...options.arches]
  const worker = async () => {
    for (let arch = queue.shift(); arch !== undefined; arch = queue.shift()) console.log(await buildOne(arch, options, inputs, epoch))
  }
  await Promise.all(Array.from({ length: Math.min(queue.length, availableParallelism()) }, worker))
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch(err => {
    if (!(err instanceof BuildError)) throw err
    process.stderr.write(`build-deb: ${err.message}\n`)
    process.exitCode = 1
  })
}
