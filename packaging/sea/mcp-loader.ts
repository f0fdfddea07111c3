/**
 * `edgefwd mcp` in the single executable. The MCP server (src/mcp/server.ts with the MCP SDK and
 * its own copy of zod) is bundled apart, by scripts/build-sea.mjs, and carried as an asset: it
 * is not part of the main script, so `edgefwd run` neither parses it nor carries its code cache
 * (measured: ~1.3 MB of idle RSS when it was). It is compiled here, once, when `mcp` (or
 * `simulate --mcp`) first needs it. Node 20.11 (armv7l) has no assets: there the bundle carries
 * the source as a string instead.
 */
import { compileFunction } from 'node:vm'

export interface EmbeddedMcp {
  /** The asset's key (Node >= 20.12). */
  asset?: string
  /** Or the source itself (Node 20.11). */
  source?: string
}

let loaded: unknown

export function loadEmbeddedMcp (mcp: EmbeddedMcp): unknown {
  if (loaded !== undefined) return loaded
  let source: string
  if (mcp.asset !== undefined) {
    const sea = require('node:sea') as { getAsset: (key: string, encoding: string) => string }
    source = sea.getAsset(mcp.asset, 'utf8')
  } else if (mcp.source !== undefined) {
    source = mcp.source
  } else {
    throw new Error('the single executable carries no MCP server')
  }
  const module = { exports: {} as unknown }
  // The asset only requires Node's built-in modules, which the executable's require() provides.
  const run = compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: 'edgefwd-mcp.cjs' })
  run(module.exports, require, module, 'edgefwd-mcp.cjs', '.')
  loaded = module.exports
  return loaded
}
