/**
 * Loads the LevelDB addon embedded in the single executable. classic-level finds its addon with
 * node-gyp-build next to its own files; a single executable has no such files, so the bundle
 * replaces classic-level's `./binding` module with `loadEmbeddedAddon(EDGEFWD_ADDON)`
 * (scripts/build-sea.mjs). A shared library can only be loaded from a file, so the addon is
 * written once to a cache directory, checked by its SHA-256 on every start, and loaded with
 * process.dlopen.
 *
 * Where the file goes, first that works:
 *   $CACHE_DIRECTORY       systemd's CacheDirectory= (the unit sets it; HOME may be read-only)
 *   $XDG_CACHE_HOME/edgefwd
 *   ~/.cache/edgefwd       ($HOME, else the home directory in the user database)
 *   $TMPDIR/edgefwd-<uid>  (or /tmp/edgefwd-<uid>)
 * A directory is used only when it is ours (owner = this uid, no group or world write), so no
 * other user can swap the file between the hash check and the load. A directory that cannot be
 * written or a file system mounted noexec (dlopen fails) moves on to the next one. Directories
 * are made one level at a time: Node 20's recursive mkdirSync was seen to spin on impossible
 * paths. The file is written to a temporary name and renamed, so a crash or a second process
 * starting at the same time never loads a half-written library.
 */
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { userInfo } from 'node:os'
import { isAbsolute, join } from 'node:path'

export interface EmbeddedAddon {
  /** SHA-256 of the addon, hex. */
  sha256: string
  /** The single-executable asset holding it (Node ≥ 20.12). */
  asset?: string
  /** Or the addon itself, base64 (Node 20.11, which has no assets: the armv7l binary). */
  base64?: string
}

export class AddonLoadError extends Error {
  override readonly name = 'AddonLoadError'
  readonly code = 'EDGEFWD_ERR_ADDON'
}

export function loadEmbeddedAddon (addon: EmbeddedAddon, env: NodeJS.ProcessEnv = process.env): unknown {
  const fileName = `leveldb-${addon.sha256.slice(0, 16)}.node`
  const tried: string[] = []
  let bytes: Buffer | undefined
  for (const dir of cacheDirs(env)) {
    try {
      ensureOwnDir(dir.path, dir.parents)
      const file = join(dir.path, fileName)
      if (!hasContent(file, addon.sha256)) {
        bytes ??= addonBytes(addon)
        writeAtomically(file, bytes)
      }
      const module = { exports: {} as unknown }
      process.dlopen(module, file)
      return module.exports
    } catch (err) {
      tried.push(`${dir.path}: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  throw new AddonLoadError(`cannot load the embedded LevelDB addon; tried ${tried.join('; ')}`)
}

interface CacheDir {
  path: string
  /** Directories above `path` that may be created first (innermost last). */
  parents: string[]
}

function cacheDirs (env: NodeJS.ProcessEnv): CacheDir[] {
  const dirs: CacheDir[] = []
  const systemd = env.CACHE_DIRECTORY?.split(':')[0]
  if (systemd !== undefined && isAbsolute(systemd)) dirs.push({ path: systemd, parents: [] })
  const xdg = env.XDG_CACHE_HOME
  if (xdg !== undefined && isAbsolute(xdg)) dirs.push({ path: join(xdg, 'edgefwd'), parents: [xdg] })
  const home = env.HOME ?? passwdHome()
  if (home !== undefined && isAbsolute(home)) dirs.push({ path: join(home, '.cache', 'edgefwd'), parents: [join(home, '.cache')] })
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user'
  const tmp = env.TMPDIR !== undefined && isAbsolute(env.TMPDIR) ? env.TMPDIR : '/tmp'
  dirs.push({ path: join(tmp, `edgefwd-${uid}`), parents: [] })
  return dirs
}

function passwdHome (): string | undefined {
  try {
    return userInfo().homedir
  } catch {
    return undefined
  }
}

function ensureOwnDir (path: string, parents: string[]): void {
  for (const dir of [...parents, path]) {
    try {
      mkdirSync(dir, { mode: 0o700 })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
  }
  const st = lstatSync(path)
  if (!st.isDirectory()) throw new Error('not a directory')
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new Error(`owned by uid ${st.uid}, not ours`)
  if ((st.mode & 0o022) !== 0) throw new Error(`writable by others (mode ${(st.mode & 0o777).toString(8)})`)
}

function hasContent (file: string, sha256: string): boolean {
  let content: Buffer
  try {
    content = readFileSync(file)
  } catch {
    return false
  }
  return createHash('sha256').update(content).digest('hex') === sha256
}

function addonBytes (addon: EmbeddedAddon): Buffer {
  let bytes: Buffer
  if (addon.asset !== undefined) {
    // node:sea exists from Node 20.12 on; the bundle only sets `asset` for binaries that have it.
    const sea = require('node:sea') as { getAsset: (key: string) => ArrayBuffer }
    bytes = Buffer.from(sea.getAsset(addon.asset))
  } else if (addon.base64 !== undefined) {
    bytes = Buffer.from(addon.base64, 'base64')
  } else {
    throw new Error('the bundle carries no addon')
  }
  const actual = createHash('sha256').update(bytes).digest('hex')
  if (actual !== addon.sha256) throw new Error(`the embedded addon is damaged (sha256 ${actual}, expected ${addon.sha256})`)
  return bytes
}

function writeAtomically (file: string, bytes: Buffer): void {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const fd = openSync(temp, 'wx', 0o500)
  try {
    writeSync(fd, bytes)
    fsyncSync(fd)
  } catch (err) {
    closeSync(fd)
    removeQuietly(temp)
    throw err
  }
  closeSync(fd)
  try {
    renameSync(temp, file)
  } catch (err) {
    removeQuietly(temp)
    throw err
  }
}

function removeQuietly (file: string): void {
  try {
    unlinkSync(file)
  } catch {
    // Already gone, or the directory went read-only: the error that matters is the one thrown.
  }
}
