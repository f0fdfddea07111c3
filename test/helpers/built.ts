import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const distRoot = fileURLToPath(new URL('../../dist/', import.meta.url))

/** Tests that run compiled code in child processes need `npm run build` first (npm test does it). */
export function assertBuilt (): void {
  if (!existsSync(`${distRoot}src/store/index.js`)) throw new Error('dist/ is missing: run `npm run build` (npm test builds first)')
}
