/**
 * The single executable's LevelDB addon loader (packaging/sea/addon-loader.ts), with the real
 * linux-x64 prebuilt addon carried as base64 as the armv7l binary carries it: it is written once
 * to the first usable cache directory and loaded from there, checked by hash on every start (a
 * damaged copy is replaced, a damaged embedded copy refused), and directories that are not ours
 * or cannot be written are passed over for the next one, with each reason in the final error.
 */
import { createHash } from 'node:crypto'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { AddonLoadError, loadEmbeddedAddon, type EmbeddedAddon } from '../../packaging/sea/addon-loader.js'

const ADDON = readFileSync(new URL('../../node_modules/classic-level/prebuilds/linux-x64/classic-level.node', import.meta.url))
const SHA = createHash('sha256').update(ADDON).digest('hex')
const EMBEDDED: EmbeddedAddon = { sha256: SHA, base64: ADDON.toString('base64') }
const FILE = `leveldb-${SHA.slice(0, 16)}.node`

function sandbox (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgefwd-addon-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

function isLevelBinding (binding: unknown): boolean {
  return typeof (binding as { db_init?: unknown }).db_init === 'function' && typeof (binding as { db_open?: unknown }).db_open === 'function'
}

t.test('the addon is written once to $XDG_CACHE_HOME/edgefwd and loaded from there; later starts reuse the copy', async t => {
  const dir = sandbox(t)
  const env = { XDG_CACHE_HOME: join(dir, 'xdg'), HOME: join(dir, 'home'), TMPDIR: dir }
  t.ok(isLevelBinding(loadEmbeddedAddon(EMBEDDED, env)), 'the exports are classic-level\'s binding')
  const file = join(dir, 'xdg', 'edgefwd', FILE)
  const first = statSync(file)
  t.same(readFileSync(file), ADDON)
  t.equal(first.mode & 0o777, 0o500, 'owner read and execute only')
  t.equal(statSync(join(dir, 'xdg', 'edgefwd')).mode & 0o777, 0o700)
  t.ok(isLevelBinding(loadEmbeddedAddon(EMBEDDED, env)))
  t.equal(statSync(file).ino, first.ino, 'the same file: not written again')
})

t.test('systemd\'s $CACHE_DIRECTORY comes first', async t => {
  const dir = sandbox(t)
  mkdirSync(join(dir, 'cache'))
  t.ok(isLevelBinding(loadEmbeddedAddon(EMBEDDED, { CACHE_DIRECTORY: join(dir, 'cache'), XDG_CACHE_HOME: join(dir, 'xdg'), HOME: join(dir, 'home'), TMPDIR: dir })))
  t.same(readFileSync(join(dir, 'cache', FILE)), ADDON)
})

t.test('a damaged cached copy is replaced before it is loaded', async t => {
  const dir = sandbox(t)
  const env = { XDG_CACHE_HOME: dir, HOME: join(dir, 'home'), TMPDIR: dir }
  mkdirSync(join(dir, 'edgefwd'), { mode: 0o700 })
  const file = join(dir, 'edgefwd', FILE)
  writeFileSync(file, ADDON.subarray(0, 4096))
  t.ok(isLevelBinding(loadEmbeddedAddon(EMBEDDED, env)))
  t.same(readFileSync(file), ADDON)
})

t.test('a damaged embedded addon is refused, naming both hashes', async t => {
  const dir = sandbox(t)
  const bad = Buffer.from(ADDON)
  bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1)
  const err = t.throws(() => loadEmbeddedAddon({ sha256: SHA, base64: bad.toString('base64') }, { XDG_CACHE_HOME: dir, HOME: join(dir, 'home'), TMPDIR: dir })) as Error
  t.type(err, AddonLoadError)
  t.match(err.message, /the embedded addon is damaged \(sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\)/)
})

t.test('unusable directories are passed over for the next, and the error lists every reason', async t => {
  const dir = sandbox(t)
  writeFileSync(join(dir, 'a-file'), '')
  const foreign = join(dir, 'foreign')
  mkdirSync(join(foreign, 'edgefwd'), { recursive: true })
  const shared = join(dir, 'shared')
  mkdirSync(shared)
  const env = { CACHE_DIRECTORY: shared, XDG_CACHE_HOME: join(dir, 'a-file'), HOME: foreign, TMPDIR: join(dir, 'tmp') }
  chmodSync(shared, 0o777)
  mkdirSync(join(foreign, '.cache'))
  mkdirSync(join(foreign, '.cache', 'edgefwd'))
  if (process.getuid?.() === 0) chownSync(join(foreign, '.cache', 'edgefwd'), 65534, 65534)
  else chmodSync(join(foreign, '.cache', 'edgefwd'), 0o777)
  mkdirSync(join(dir, 'tmp'))
  t.ok(isLevelBinding(loadEmbeddedAddon(EMBEDDED, env)), 'loaded from the last candidate, $TMPDIR/edgefwd-<uid>')
  t.same(readFileSync(join(dir, 'tmp', `edgefwd-${process.getuid?.() ?? 'user'}`, FILE)), ADDON)

  rmSync(join(dir, 'tmp'), { recursive: true })
  writeFileSync(join(dir, 'tmp'), '')
  const err = t.throws(() => loadEmbeddedAddon(EMBEDDED, env)) as Error
  t.type(err, AddonLoadError)
  t.match(err.message, /^cannot load the embedded LevelDB addon; tried /)
  t.match(err.message, `${shared}: writable by others (mode 777)`)
  t.match(err.message, `${join(dir, 'a-file', 'edgefwd')}: ENOTDIR`)
  t.match(err.message, process.getuid?.() === 0 ? `${join(foreign, '.cache', 'edgefwd')}: owned by uid 65534, not ours` : 'writable by others')
  t.match(err.message, `${join(dir, 'tmp', `edgefwd-${process.getuid?.() ?? 'user'}`)}: ENOTDIR`)
})
