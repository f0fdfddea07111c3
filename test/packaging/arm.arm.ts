/**
 * The linux-arm64 and linux-armv7l single executables, run under qemu-user on this x86_64
 * machine (Debian qemu-user-static, with the cross C libraries as the sysroot): --version,
 * config check, and a short simulation (a light scenario: emulation is 10-20x slower than a
 * gateway) that must pass. The simulation starts its forwarder as a second copy of the binary,
 * which without binfmt_misc needs EDGEFWD_SIMULATE_EXEC_PREFIX to go through qemu as well.
 *
 * `npm run test:arm`, after `npm run build:sea`: about 2 minutes here.
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const dist = fileURLToPath(new URL('../../dist/', import.meta.url))
const scenario = fileURLToPath(new URL('./fixtures/qemu-smoke.yaml', import.meta.url))
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version

const TARGETS = [
  { arch: 'arm64', qemu: 'qemu-aarch64-static', sysroot: '/usr/aarch64-linux-gnu', packages: 'qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross' },
  { arch: 'armv7l', qemu: 'qemu-arm-static', sysroot: '/usr/arm-linux-gnueabihf', packages: 'qemu-user-static libc6-armhf-cross libstdc++6-armhf-cross libatomic1-armhf-cross' },
] as const

for (const target of TARGETS) {
  t.test(`linux-${target.arch} under ${target.qemu}`, async t => {
    const bin = join(dist, `edgefwd-linux-${target.arch}`)
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm run build:sea first`)
    if (spawnSync('/bin/sh', ['-c', `command -v ${target.qemu}`]).status !== 0 || !existsSync(target.sysroot)) {
      throw new Error(`${target.qemu} or ${target.sysroot} is missing: apt-get install ${target.packages}`)
    }
    const root = mkdtempSync(join(tmpdir(), `edgefwd-${target.arch}-`))
    t.teardown(() => { rmSync(root, { recursive: true, force: true }) })
    const exe = join(root, 'edgefwd')
    copyFileSync(bin, exe)
    mkdirSync(join(root, 'home'))
    const env = {
      PATH: '/usr/bin:/bin', // the qemu binary; the arm binary itself needs nothing from PATH
      HOME: join(root, 'home'),
      QEMU_LD_PREFIX: target.sysroot,
      EDGEFWD_SIMULATE_EXEC_PREFIX: target.qemu,
    }
    const edgefwd = (args: string[], timeoutMs: number): { code: number | null, stdout: string, stderr: string } => {
      const r = spawnSync(target.qemu, [exe, ...args], { cwd: root, env, encoding: 'utf8', timeout: timeoutMs })
      if (r.error !== undefined) throw r.error
      return { code: r.status, stdout: r.stdout, stderr: r.stderr }
    }

    t.same(edgefwd(['--version'], 60_000), { code: 0, stdout: `${VERSION}\n`, stderr: '' })
    writeFileSync(join(root, 'good.yaml'), 'gateway: { id: gw-arm }\nstore: { path: ./store, capacity: 8MiB }\nuplink: { url: "mqtts://broker.example:8883" }\ntls: { ca: ca.pem, cert: gw.pem, key: gw-key.pem }\n')
    t.same(edgefwd(['config', 'check', 'good.yaml'], 60_000), { code: 0, stdout: 'ok\n', stderr: '' })
    const sim = edgefwd(['simulate', '--scenario', scenario, '--json'], 300_000)
    t.equal(sim.code, 0, sim.code === 0 ? 'exit 0' : sim.stderr.slice(-2000))
    const summary = JSON.parse(sim.stdout) as { verdict: { ok: boolean, reasons: string[] } }
    t.same(summary.verdict, { ok: true, reasons: [] })
  })
}
