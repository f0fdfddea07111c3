/**
 * Writing and reading the PEM files of `edgefwd certs`.
 *
 * A private key file is created by open(2) with O_CREAT|O_EXCL (`'wx'`) and mode 0600, so it is
 * never readable by others, not even for a moment, and an existing file (or a symlink planted in
 * its place) is never followed or overwritten. Certificates and CSRs are public: 0644. Every file
 * is fsynced, then its directory, so a power cut right after the command cannot leave a CA with
 * an empty key. Without `force` an existing target is refused (EDGEFWD_ERR_CERTS_EXISTS) before
 * anything is written; with `force` the new file is written beside the old one (O_EXCL, its own
 * mode, so a replaced key gets 0600 even if the old file had looser permissions) and renamed over
 * it, so a failed write leaves the old file as it was. A failed write removes the files this call
 * created: all of a command's files, or none.
 */
import { constants } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { lstat, mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { EdgefwdError, fsErrorReason } from '../errors.js'
import type { PemPair } from './generate.js'

export type PemFileKind = 'private key' | 'public key' | 'certificate' | 'certificate signing request'

export interface PemFile {
  path: string
  pem: string
  kind: PemFileKind
}

export const PRIVATE_KEY_MODE = 0o600
export const PUBLIC_FILE_MODE = 0o644
/** A directory made to hold keys (the CA directory, `certs issue --out`). */
export const KEY_DIR_MODE = 0o700

/** The layout of a CA directory made by `edgefwd certs init-ca`. */
export function caPaths (dir: string): { cert: string, key: string } {
  return { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') }
}

/** Throws EDGEFWD_ERR_CERTS_EXISTS for the first path that exists, unless `force`. Call it before slow work. */
export async function refuseExisting (paths: readonly string[], force: boolean): Promise<void> {
  if (force) return
  for (const path of paths) {
    if (await exists(path)) {
      throw new EdgefwdError('EDGEFWD_ERR_CERTS_EXISTS', `${path} already exists; not overwriting it`, {
        hint: 'pass --force to replace it, or choose another name or directory',
      })
    }
  }
}

export async function makeKeyDirectory (dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: KEY_DIR_MODE })
  } catch (err) {
    throw writeError(dir, err)
  }
}

/** Writes every file or none (see the top of this module). */
export async function writePemFiles (files: readonly PemFile[], options: { force: boolean }): Promise<void> {
  await refuseExisting(files.map(f => f.path), options.force)
  const created: string[] = []
  try {
    for (const file of files) {
      if (options.force) {
        const temp = join(dirname(file.path), `.${basename(file.path)}.${randomBytes(4).toString('hex')}.tmp`)
        await writeExclusive({ ...file, path: temp })
        try {
          await rename(temp, file.path)
        } catch (err) {
          await rm(temp, { force: true }).catch(() => {})
          throw err
        }
      } else {
        await writeExclusive(file)
        created.push(file.path)
      }
    }
    for (const dir of new Set(files.map(f => dirname(f.path)))) await syncDirectory(dir)
  } catch (err) {
    await Promise.all(created.map(async path => await rm(path, { force: true }).catch(() => {})))
    if (err instanceof EdgefwdError) throw err
    const path = files[created.length]?.path ?? files[0]?.path ?? ''
    throw writeError(path, err)
  }
}

/**
 * Reads a PEM (or any small text) file; a missing or unreadable file is
 * EDGEFWD_ERR_TLS_FILE_UNREADABLE naming the file and what it was meant to be.
 */
export async function readPemFile (path: string, role: string): Promise<string> {
  return (await readTlsFile(path, role)).toString('utf8')
}

/** The bytes, for files that may be DER. */
export async function readTlsFile (path: string, role: string): Promise<Buffer> {
  try {
    return await readFile(path)
  } catch (err) {
    throw new EdgefwdError('EDGEFWD_ERR_TLS_FILE_UNREADABLE', `cannot read the ${role} ${path}: ${fsErrorReason(err)}`, { cause: err })
  }
}

/** The certificate and key of a CA directory (DIR/ca.crt, DIR/ca.key). */
export async function readCaDirectory (dir: string): Promise<PemPair> {
  const paths = caPaths(dir)
  return { certPem: await readPemFile(paths.cert, 'CA certificate'), keyPem: await readPemFile(paths.key, 'CA key') }
}

async function writeExclusive (file: PemFile): Promise<void> {
  const mode = file.kind === 'private key' ? PRIVATE_KEY_MODE : PUBLIC_FILE_MODE
  // O_NOFOLLOW as well: a symlink raced into the path must not redirect a private key elsewhere.
  const handle = await open(file.path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode)
    .catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new EdgefwdError('EDGEFWD_ERR_CERTS_EXISTS', `${file.path} already exists; not overwriting it`, {
          cause: err, hint: 'pass --force to replace it, or choose another name or directory',
        })
      }
      throw err
    })
  try {
    await handle.writeFile(file.pem, 'utf8')
    await handle.sync()
  } finally {
    await handle.close()
  }
}

async function syncDirectory (dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } catch {
    // Some file systems (and platforms) cannot fsync a directory; the files themselves are synced.
  } finally {
    await handle.close()
  }
}

async function exists (path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw writeError(path, err)
  }
}

function writeError (path: string, err: unknown): EdgefwdError {
  return new EdgefwdError('EDGEFWD_ERR_CERTS_WRITE', `cannot write ${path}: ${fsErrorReason(err)}`, {
    cause: err, hint: 'choose a directory the edgefwd user can write to, on a file system with free space'
  })
}
