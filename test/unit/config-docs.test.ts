import { readFileSync } from 'node:fs'
import t from 'tap'
import { configSchema, leafPaths, schemaTree } from '../../src/config/index.js'

const docs = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8')

t.test('every configuration key is documented in docs/config.md', async t => {
  const keys = leafPaths(schemaTree(configSchema))
  t.ok(keys.includes('store.groupCommit.maxEvents') && keys.includes('store.ttl.critical') && keys.includes('log.redact'),
    'the walk reaches nested keys through defaults, optionals and read-only wrappers')
  for (const key of keys) {
    t.ok(docs.includes(`| \`${key}\` |`), `${key} has a row in a key table of docs/config.md`)
  }
})

t.test('docs/config.md documents no key the schema does not have', async t => {
  const keys = new Set(leafPaths(schemaTree(configSchema)))
  const documented = [...docs.matchAll(/^\| `([a-zA-Z.]+)` \|/gm)].map(match => match[1] ?? '')
  for (const key of documented.filter(k => k.includes('.') && !k.startsWith('EDGEFWD_'))) {
    t.ok(keys.has(key), `${key} (in docs/config.md) is a schema key`)
  }
})
