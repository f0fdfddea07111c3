/**
 * The version printed by `edgefwd --version`. It is looked up in one place so that the
 * single-executable bundle (DESIGN.md §10) can replace this function with a constant.
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

let cached: string | undefined

/** Set by the single-executable build (scripts/build-sea.mjs, esbuild `define`); undeclared otherwise. */
declare const EDGEFWD_VERSION: string | undefined

/**
 * Walks up from this module to the nearest package.json named "edgefwd": the module sits at a
 * different depth in src/ (tests) and in dist/src/ (the built bin).
 */
export function packageVersion (): string {
  if (typeof EDGEFWD_VERSION === 'string') return EDGEFWD_VERSION
  cached ??= findVersion(dirname(fileURLToPath(import.meta.url)))
  return cached
}

function findVersion (start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const version = versionIn(join(dir, 'package.json'))
    if (version !== undefined) return version
    if (dirname(dir) === dir) return 'unknown'
  }
}

function versionIn (file: string): string | undefined {
  let pkg: unknown
  try {
    pkg = JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    return undefined
  }
  if (pkg === null || typeof pkg !== 'object') return undefined
  const { name, version } = pkg as { name?: unknown, version?: unknown }
  return name === 'edgefwd' && typeof version === 'string' ? version : undefined
}
