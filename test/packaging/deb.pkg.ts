/**
 * The Debian packages (`npm run build:deb`, scripts/build-deb.mjs) made from the real single
 * executables in dist/ (`npm run build:sea` first; `npm run test:package` does both):
 *
 * 1. built into a temporary directory, each package is inspected with dpkg-deb: fields, file
 *    list with modes and owners, conffiles, the binary inside byte for byte the dist one and an
 *    ELF for the package's architecture (so a swapped mapping fails), the amd64 one built twice
 *    to the same bytes;
 * 2. the amd64 package is installed, removed and purged in a temporary root with
 *    `dpkg --root=T --force-script-chrootless`, as an image build would: the maintainer scripts
 *    run on this host with DPKG_ROOT=T and must change only T. The installed forwarder is run
 *    as the edgefwd user the package created, the way the unit runs it.
 *
 * Needs root (dpkg --root, chown in postinst) and dpkg. Missing binaries fail the test; they are
 * never a reason to skip it.
 */
import { spawn, type SpawnOptions } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, chownSync, closeSync, createReadStream, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'

// Building three ~100 MB packages with xz takes minutes; this resets the runner's timer too.
t.setTimeout(20 * 60_000)

const repo = fileURLToPath(new URL('../../', import.meta.url))
const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Node's architecture name (the dist binary's suffix), Debian's, the ELF e_machine, the glibc floor. */
const ARCHES = [
  { node: 'x64', deb: 'amd64', machine: 62, libc: '2.28' },
  { node: 'arm64', deb: 'arm64', machine: 183, libc: '2.28' },
  { node: 'armv7l', deb: 'armhf', machine: 40, libc: '2.34' },
] as const

interface Run { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/** Runs a command to its end, killed (and failing) after `timeoutMs`: no wait here is unbounded. */
async function run (command: string, args: string[], options: SpawnOptions & { timeoutMs: number, input?: string }): Promise<Run> {
  const { timeoutMs, input, ...spawnOptions } = options
  const child = spawn(command, args, { env: { PATH, LANG: 'C' }, ...spawnOptions, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  child.stdin?.end(input)
  const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
  try {
    return await new Promise<Run>((resolve, reject) => {
      child.on('error', reject)
      child.on('close', (code, signal) => {
        if (signal === 'SIGKILL' && code === null) stderr += `\n(killed after ${timeoutMs} ms)`
        resolve({ code, signal, stdout, stderr })
      })
    })
  } finally {
    clearTimeout(timer)
  }
}

async function sha256 (file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** e_machine of an ELF file (offset 18, little-endian on all three targets), or a reason it is none. */
function elfMachine (file: string): number | string {
  const fd = openSync(file, 'r')
  try {
    const head = Buffer.alloc(20)
    if (readSync(fd, head, 0, 20, 0) < 20 || head.readUInt32BE(0) !== 0x7f454c46) return 'not an ELF file'
    return head.readUInt16LE(18)
  } finally {
    closeSync(fd)
  }
}

function tempDir (t: Test, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

function mode (path: string): string {
  return (lstatSync(path).mode & 0o7777).toString(8).padStart(4, '0')
}

const debName = (deb: string): string => `edgefwd_${version}_${deb}.deb`

/** Every file and directory in the package, as `dpkg-deb --contents` shows mode and owner. */
const EXPECTED_CONTENTS = [
  'drwxr-xr-x root/root ./',
  'drwxr-xr-x root/root ./etc/',
  'drwxr-x--- root/root ./etc/edgefwd/',
  '-rw-r----- root/root ./etc/edgefwd/edgefwd.yaml',
  'drwxr-x--- root/root ./etc/edgefwd/tls/',
  'drwxr-xr-x root/root ./usr/',
  'drwxr-xr-x root/root ./usr/bin/',
  '-rwxr-xr-x root/root ./usr/bin/edgefwd',
  'drwxr-xr-x root/root ./usr/lib/',
  'drwxr-xr-x root/root ./usr/lib/systemd/',
  'drwxr-xr-x root/root ./usr/lib/systemd/system/',
  '-rw-r--r-- root/root ./usr/lib/systemd/system/edgefwd.service',
  'drwxr-xr-x root/root ./usr/share/',
  'drwxr-xr-x root/root ./usr/share/doc/',
  'drwxr-xr-x root/root ./usr/share/doc/edgefwd/',
  '-rw-r--r-- root/root ./usr/share/doc/edgefwd/README.Debian',
  '-rw-r--r-- root/root ./usr/share/doc/edgefwd/config.md',
  '-rw-r--r-- root/root ./usr/share/doc/edgefwd/copyright',
]

const missing = ARCHES.map(a => join(repo, 'dist', `edgefwd-linux-${a.node}`)).filter(f => !existsSync(f))

t.test('the Debian packages, built, inspected, installed, removed and purged', async t => {
  if (missing.length > 0) {
    t.fail(`missing ${missing.join(', ')}: run \`npm run build:sea\` first (\`npm run test:package\` does it)`)
    return
  }
  if (process.getuid?.() !== 0) {
    t.fail('this test must run as root: dpkg --root and the maintainer scripts chown files')
    return
  }
  const out = tempDir(t, 'edgefwd-deb-out-')
  // One epoch for both builds: a commit made while the test runs must not look like a difference.
  const epoch = (await run('git', ['log', '-1', '--format=%ct'], { cwd: repo, timeoutMs: 60_000 })).stdout.trim() || '1700000000'
  const buildEnv = { ...process.env, PATH, SOURCE_DATE_EPOCH: epoch }
  const x64Before = await sha256(join(repo, 'dist/edgefwd-linux-x64'))
  const built = await run(process.execPath, ['scripts/build-deb.mjs', '--out', out], { cwd: repo, env: buildEnv, timeoutMs: 15 * 60_000 })
  t.equal(built.code, 0, `build-deb succeeds\n${built.stderr}`)
  if (built.code !== 0) return
  t.same(readdirSync(out).sort(), ARCHES.map(a => debName(a.deb)).sort(), 'one package per architecture, named edgefwd_<version>_<arch>.deb, nothing else left in --out')

  for (const arch of ARCHES) {
    await t.test(`${arch.deb}: fields, contents, conffiles and the ${arch.node} binary`, t => inspectPackage(t, join(out, debName(arch.deb)), arch))
  }

  await t.test('a second build of the same inputs gives the same bytes', async t => {
    const again = tempDir(t, 'edgefwd-deb-again-')
    const rebuilt = await run(process.execPath, ['scripts/build-deb.mjs', '--arch', 'amd64', '--out', again], { cwd: repo, env: buildEnv, timeoutMs: 10 * 60_000 })
    t.equal(rebuilt.code, 0, `build-deb --arch amd64 succeeds\n${rebuilt.stderr}`)
    t.same(readdirSync(again), [debName('amd64')], '--arch builds only the architecture asked for')
    t.equal(await sha256(join(repo, 'dist/edgefwd-linux-x64')), x64Before, 'dist/edgefwd-linux-x64 did not change meanwhile (else a build:sea ran during the test, and the next line proves nothing)')
    t.equal(await sha256(join(again, debName('amd64'))), await sha256(join(out, debName('amd64'))), 'identical .deb files')
  })

  await t.test('amd64 installed, removed and purged with dpkg --root', t => installRemovePurge(t, join(out, debName('amd64'))))
})

t.test('a missing binary is a clear error that says to run build:sea', async t => {
  const binDir = tempDir(t, 'edgefwd-deb-nobin-')
  const res = await run(process.execPath, ['scripts/build-deb.mjs', '--bin-dir', binDir, '--out', join(binDir, 'out'), '--arch', 'arm64'], { cwd: repo, timeoutMs: 60_000 })
  t.equal(res.code, 1)
  t.equal(res.stderr, `build-deb: ${join(binDir, 'edgefwd-linux-arm64')} is missing: run \`npm run build:sea\` first (or give --bin-dir)\n`)
  t.notOk(existsSync(join(binDir, 'out')), 'nothing is written')
})

t.test('a binary for another machine is refused', async t => {
  if (missing.length > 0) {
    t.fail(`missing ${missing.join(', ')}: run \`npm run build:sea\` first`)
    return
  }
  const binDir = tempDir(t, 'edgefwd-deb-wrongbin-')
  // The x64 executable where the arm64 one belongs.
  writeFileSync(join(binDir, 'edgefwd-linux-arm64'), readFileSync(join(repo, 'dist', 'edgefwd-linux-x64')))
  const res = await run(process.execPath, ['scripts/build-deb.mjs', '--bin-dir', binDir, '--out', join(binDir, 'out'), '--arch', 'arm64'], { cwd: repo, timeoutMs: 60_000 })
  t.equal(res.code, 1)
  t.match(res.stderr, /edgefwd-linux-arm64 is an ELF64 file for machine 62, not for arm64 \(ELF64, machine 183\)/)
})

async function inspectPackage (t: Test, deb: string, arch: typeof ARCHES[number]): Promise<void> {
  const field = async (name: string): Promise<string> => (await run('dpkg-deb', ['--field', deb, name], { timeoutMs: 60_000 })).stdout.trim()
  t.equal(await field('Package'), 'edgefwd')
  t.equal(await field('Version'), version, 'the version of package.json')
  t.equal(await field('Architecture'), arch.deb)
  t.equal(await field('Section'), 'net')
  t.equal(await field('Priority'), 'optional')
  t.match(await field('Maintainer'), /^.+ <.+@.+>$/)
  t.match(await field('Description'), /^edge telemetry forwarder/)
  const depends = (await field('Depends')).split(/,\s*/)
  t.equal(depends[0], `libc6 (>= ${arch.libc})`, 'glibc floor')
  t.ok(depends.includes('passwd'), 'passwd, for useradd in postinst')
  t.ok(depends.some(d => d.startsWith('libstdc++6')), 'libstdc++6: Node.js links it dynamically')
  const installedKiB = Number(await field('Installed-Size'))
  const binaryKiB = lstatSync(join(repo, 'dist', `edgefwd-linux-${arch.node}`)).size / 1024
  t.ok(installedKiB > binaryKiB && installedKiB < binaryKiB + 1024, `Installed-Size ${installedKiB} KiB covers the binary (${Math.ceil(binaryKiB)} KiB) and a little more`)

  const contents = (await run('dpkg-deb', ['--contents', deb], { timeoutMs: 60_000 })).stdout.trim().split('\n').map(line => line.split(/\s+/))
  t.same(contents.map(([perm, owner, , , , path]) => `${perm} ${owner} ${path}`), EXPECTED_CONTENTS, 'file list, modes and root:root owners')
  t.equal(new Set(contents.map(([, , , date, time]) => `${date} ${time}`)).size, 1, 'one mtime for every entry (SOURCE_DATE_EPOCH)')

  const conffiles = await run('dpkg-deb', ['--info', deb, 'conffiles'], { timeoutMs: 60_000 })
  t.equal(conffiles.stdout, '/etc/edgefwd/edgefwd.yaml\n', 'the configuration is the one conffile')
  for (const script of ['postinst', 'prerm', 'postrm']) {
    const inDeb = await run('dpkg-deb', ['--info', deb, script], { timeoutMs: 60_000 })
    t.equal(inDeb.stdout, readFileSync(join(repo, 'packaging/deb', script), 'utf8'), `${script} is packaging/deb/${script}`)
  }

  const root = tempDir(t, `edgefwd-deb-x-${arch.deb}-`)
  const extracted = await run('dpkg-deb', ['-x', deb, root], { timeoutMs: 5 * 60_000 })
  t.equal(extracted.code, 0, extracted.stderr)
  const binary = join(root, 'usr/bin/edgefwd')
  t.equal(elfMachine(binary), arch.machine, `/usr/bin/edgefwd is an ELF for ${arch.deb} (e_machine ${arch.machine})`)
  t.equal(await sha256(binary), await sha256(join(repo, 'dist', `edgefwd-linux-${arch.node}`)), `/usr/bin/edgefwd is dist/edgefwd-linux-${arch.node}, byte for byte`)
  t.same(readFileSync(join(root, 'usr/lib/systemd/system/edgefwd.service')), readFileSync(join(repo, 'packaging/edgefwd.service')), 'the unit is packaging/edgefwd.service')
  const config = readFileSync(join(root, 'etc/edgefwd/edgefwd.yaml'), 'utf8')
  t.equal(config, readFileSync(join(repo, 'packaging/edgefwd.yaml'), 'utf8'), 'the configuration is packaging/edgefwd.yaml')
  t.same(config.split('\n').filter(line => line !== '' && !line.startsWith('#')), [], 'every line of the default configuration is a comment')
  t.match(readFileSync(join(root, 'usr/share/doc/edgefwd/copyright'), 'utf8'), /^Format: https:\/\/www\.debian\.org\/doc\/packaging-manuals\/copyright-format\/1\.0\/\n[^]*License: Apache-2\.0\n/)
}

/** What dpkg and useradd need in an empty root, plus stand-ins for the packages edgefwd depends on. */
function seedRoot (root: string, dependencies: string[]): void {
  mkdirSync(join(root, 'var/lib/dpkg/info'), { recursive: true })
  mkdirSync(join(root, 'var/lib/dpkg/updates'), { recursive: true })
  writeFileSync(join(root, 'var/lib/dpkg/available'), '')
  // Installed stand-ins, so dpkg checks the Depends for real instead of being forced past them.
  writeFileSync(join(root, 'var/lib/dpkg/status'), dependencies.map(name => [
    `Package: ${name}`, 'Status: install ok installed', 'Priority: optional', 'Architecture: amd64',
    'Version: 999', 'Maintainer: test <test@example.invalid>', 'Description: stand-in for the deb.pkg.ts test', '',
  ].join('\n')).join('\n'))
  for (const name of dependencies) writeFileSync(join(root, `var/lib/dpkg/info/${name}.list`), '')
  mkdirSync(join(root, 'etc'), { recursive: true })
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n')
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\n')
  writeFileSync(join(root, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o640 })
  writeFileSync(join(root, 'etc/gshadow'), 'root:*::\n', { mode: 0o640 })
}

/** systemctl and deb-systemd-invoke that only log their arguments: with DPKG_ROOT set the scripts must call neither. */
function systemdShims (dir: string, log: string): void {
  for (const name of ['systemctl', 'deb-systemd-invoke']) {
    writeFileSync(join(dir, name), `#!/bin/sh\necho "${name} $*" >> '${log}'\nexit 0\n`, { mode: 0o755 })
  }
}

/** Processes whose executable is `binary` (/proc/PID/exe). */
function processesOf (binary: string): string[] {
  return readdirSync('/proc').filter(pid => /^\d+$/.test(pid)).filter(pid => {
    try { return readlinkSync(`/proc/${pid}/exe`) === binary } catch { return false }
  })
}

function entry (file: string, name: string): string[] | undefined {
  return readFileSync(file, 'utf8').split('\n').map(line => line.split(':')).find(fields => fields[0] === name)
}

async function installRemovePurge (t: Test, deb: string): Promise<void> {
  const root = tempDir(t, 'edgefwd-deb-root-')
  // The installed forwarder runs as the edgefwd user below: it must be able to reach root's files.
  chmodSync(root, 0o755)
  const depends = (await run('dpkg-deb', ['--field', deb, 'Depends'], { timeoutMs: 60_000 })).stdout.trim()
  seedRoot(root, [...new Set(depends.split(/,\s*/).map(d => d.split(/[\s|(]/)[0] ?? ''))])
  const shims = tempDir(t, 'edgefwd-deb-shims-')
  const systemdLog = join(shims, 'calls.log')
  systemdShims(shims, systemdLog)
  const dpkg = async (...args: string[]): Promise<Run> => await run('dpkg', [`--root=${root}`, '--force-script-chrootless', ...args], { env: { PATH: `${shims}:${PATH}`, LANG: 'C' }, timeoutMs: 5 * 60_000 })
  const at = (path: string): string => join(root, path)

  const installed = await dpkg('--install', deb)
  t.equal(installed.code, 0, `dpkg --install succeeds\n${installed.stderr}`)
  if (installed.code !== 0) return
  t.match(installed.stdout, /edgefwd is installed and enabled at boot, but not started/, 'postinst tells the operator what to do')
  t.match(installed.stdout, /systemctl start edgefwd/)

  t.equal(mode(at('usr/bin/edgefwd')), '0755')
  t.equal(mode(at('usr/lib/systemd/system/edgefwd.service')), '0644')
  t.equal(mode(at('usr/share/doc/edgefwd/copyright')), '0644')
  const user = entry(at('etc/passwd'), 'edgefwd')
  const group = entry(at('etc/group'), 'edgefwd')
  t.ok(user, 'the edgefwd user is in T/etc/passwd')
  t.ok(group, 'the edgefwd group is in T/etc/group')
  t.notOk(entry('/etc/passwd', 'edgefwd'), 'and not in the host\'s /etc/passwd')
  if (user === undefined || group === undefined) return
  const [, , uid, gid, , home, shell] = user
  t.equal(gid, group[2], 'its primary group is edgefwd')
  t.ok(Number(uid) > 0 && Number(uid) < 1000, `a system uid (${uid})`)
  t.equal(home, '/var/lib/edgefwd')
  t.equal(shell, '/usr/sbin/nologin', 'no login shell')
  t.ok(entry(at('etc/shadow'), 'edgefwd'), 'and a locked shadow entry')
  for (const [path, wanted] of [['etc/edgefwd', '0750'], ['etc/edgefwd/tls', '0750'], ['etc/edgefwd/edgefwd.yaml', '0640']] as const) {
    const st = lstatSync(at(path))
    t.same({ mode: mode(at(path)), uid: st.uid, gid: st.gid }, { mode: wanted, uid: 0, gid: Number(gid) }, `/${path}: ${wanted} root:edgefwd`)
  }
  t.equal(readlinkSync(at('etc/systemd/system/multi-user.target.wants/edgefwd.service')), '/usr/lib/systemd/system/edgefwd.service', 'enabled: the multi-user.target.wants link')
  t.notOk(existsSync(systemdLog), 'neither systemctl nor deb-systemd-invoke was run: nothing started')
  t.same(processesOf(at('usr/bin/edgefwd')), [], 'no edgefwd process is running')
  t.notOk(existsSync(at('var/lib/edgefwd')), 'the home directory is not created (systemd makes it, StateDirectory=)')

  await t.test('the installed forwarder runs as the unit runs it', async t => {
    const unit = readFileSync(at('usr/lib/systemd/system/edgefwd.service'), 'utf8')
    t.match(unit, /^RestartPreventExitStatus=78$/m, 'the unit does not restart on exit 78')
    // What systemd gives the service: its user and group, the state and cache directories made
    // for it (StateDirectory=, CacheDirectory=), and the unit's working directory ("/" by default).
    const workingDirectory = /^WorkingDirectory=(.+)$/m.exec(unit)?.[1] ?? '/'
    const ids = { uid: Number(uid), gid: Number(gid) }
    for (const dir of ['var/lib/edgefwd', 'var/cache/edgefwd']) {
      mkdirSync(at(dir), { recursive: true, mode: 0o750 })
      chownSync(at(dir), ids.uid, ids.gid)
    }
    const env = { PATH, LANG: 'C', HOME: at('var/lib/edgefwd'), XDG_CACHE_HOME: at('var/cache/edgefwd'), CACHE_DIRECTORY: at('var/cache/edgefwd') }
    const cwd = workingDirectory === '/' ? '/' : at(workingDirectory)
    const edgefwd = async (...args: string[]): Promise<Run> => await run(at('usr/bin/edgefwd'), args, { ...ids, cwd, env, timeoutMs: 60_000 })

    t.same(await edgefwd('--version'), { code: 0, signal: null, stdout: `${version}\n`, stderr: '' }, '--version prints the package version')
    const started = await edgefwd('run', '--config', at('etc/edgefwd/edgefwd.yaml'))
    t.equal(started.code, 78, `the unconfigured default refuses to start with exit 78 (EX_CONFIG)\n${started.stderr}`)
    t.match(started.stderr, /tls\.ca: is required/, 'and says what is missing')

    // Uncommented, the default configuration is valid as it stands (the examples are real keys).
    const config = readFileSync(at('etc/edgefwd/edgefwd.yaml'), 'utf8')
    const uncommented = config.slice(config.indexOf('# gateway:')).replace(/^# ?/gm, '')
    const sample = join(tempDir(t, 'edgefwd-deb-sample-'), 'sample.yaml')
    writeFileSync(sample, uncommented)
    t.same(await run(at('usr/bin/edgefwd'), ['config', 'check', sample], { env, cwd: '/', timeoutMs: 60_000 }), { code: 0, signal: null, stdout: 'ok\n', stderr: '' }, 'the uncommented sample passes config check')
  })

  const removed = await dpkg('--remove', 'edgefwd')
  t.equal(removed.code, 0, `dpkg --remove succeeds\n${removed.stderr}`)
  for (const path of ['usr/bin/edgefwd', 'usr/lib/systemd/system/edgefwd.service', 'usr/share/doc/edgefwd']) t.notOk(existsSync(at(path)), `removed: /${path}`)
  t.ok(existsSync(at('etc/edgefwd/edgefwd.yaml')), 'remove keeps the configuration')
  t.ok(existsSync(at('var/lib/edgefwd')), 'remove keeps the buffered events')

  const purged = await dpkg('--purge', 'edgefwd')
  t.equal(purged.code, 0, `dpkg --purge succeeds\n${purged.stderr}`)
  for (const path of ['etc/edgefwd', 'var/lib/edgefwd', 'var/cache/edgefwd', 'etc/systemd/system/multi-user.target.wants/edgefwd.service', 'etc/systemd/system/edgefwd.service', 'var/lib/systemd/deb-systemd-helper-enabled/edgefwd.service.dsh-also']) {
    t.notOk(existsSync(at(path)), `purged: /${path}`)
  }
  t.ok(entry(at('etc/passwd'), 'edgefwd'), 'purge keeps the edgefwd user (Debian practice, see postrm)')
  t.notOk(existsSync(systemdLog), 'no systemd call in remove and purge either')
  const status = await run('dpkg-query', [`--admindir=${at('var/lib/dpkg')}`, '--show', '--showformat=${db:Status-Status}', 'edgefwd'], { timeoutMs: 60_000 })
  t.match(`${status.stdout}${status.stderr}`, /not-installed|no packages found/, 'dpkg knows it is gone')
}
