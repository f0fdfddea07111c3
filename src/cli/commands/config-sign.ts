/** `edgefwd config sign --key KEY [--out FILE] DOCUMENT`: the signed message for a remote configuration update. */
import { readFile, writeFile } from 'node:fs/promises'
import { parseDocument as parseYaml } from 'yaml'
import { defineCommand } from '../command.js'
import { ExitCode } from '../exit-codes.js'
import { requireOption } from './certs-options.js'

const NAME = ['config', 'sign'] as const

export const configSignCommand = defineCommand({
  name: NAME,
  summary: 'Sign a remote configuration update for gateways (control.publicKeys)',
  description: [
    'Reads DOCUMENT, an update of the form {"version": N, "restart": false, "comment": "...",',
    '"config": {...}} in JSON or YAML, and prints the message to publish (retained) on',
    '<prefix>/<gateway>/config or the fleet topic. YAML is converted to JSON with a 2-space indent',
    'before signing: what is signed, and what gateways parse, is always JSON.',
    'The document\'s shape is checked first (version a positive whole number, config an object',
    'without "gateway" or "control"), and a bad one is refused with exit 1. Whether the config',
    'is valid is decided by each gateway against its own local configuration: check it there with',
    '"edgefwd config check" first. The key is an Ed25519 or RSA (2048 bits or more) PKCS#8 PEM',
    'private key, as made by "edgefwd config keygen".',
  ].join('\n'),
  options: {
    key: { type: 'string', valueName: 'PRIVATE_KEY_PEM', description: 'the operator private key (required)' },
    out: { type: 'string', valueName: 'FILE', description: 'write the message to FILE (mode 0644) instead of stdout' },
  },
  positionals: [{ name: 'DOCUMENT', description: 'the update document (JSON or YAML)' }],
  async run ({ values, positionals: [file = ''] }, { io }) {
    const keyPath = requireOption(values.key, '--key PRIVATE_KEY_PEM', NAME)
    const fail = (message: string): number => {
      io.stderr.write(`edgefwd: ${message}\n`)
      return ExitCode.failure
    }

    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      return fail(`cannot read the document ${file}: ${describe(err)}`)
    }
    const json = toJson(text)
    if (!json.ok) return fail(`${file}: ${json.detail}`)
    const bytes = new TextEncoder().encode(json.text)
    const { parseDocument } = await import('../../control/update.js')
    const parsed = parseDocument(bytes)
    if (!parsed.ok) return fail(`${file}: ${parsed.detail}`)

    const { loadPrivateKey, signDocument, encodeMessage } = await import('../../control/signing.js')
    const signed = signDocument(bytes, await loadPrivateKey(keyPath))
    const message = `${encodeMessage(signed)}\n`
    const summary = `version ${parsed.doc.version}${parsed.doc.restart ? ' (restart: true)' : ''}, ${signed.algorithm}, key ${signed.keyId}`
    if (values.out === undefined) {
      io.stdout.write(message)
      io.stderr.write(`signed ${summary}\n`)
      return ExitCode.ok
    }
    try {
      await writeFile(values.out, message, { mode: 0o644 })
    } catch (err) {
      return fail(`cannot write ${values.out}: ${describe(err)}`)
    }
    io.stdout.write(`wrote ${values.out} (signed ${summary})\n`)
    return ExitCode.ok
  },
})

/** The document as JSON text: YAML (and so JSON) parsed, then written with a 2-space indent. */
function toJson (text: string): { ok: true, text: string } | { ok: false, detail: string } {
  const doc = parseYaml(text, { uniqueKeys: true, prettyErrors: true })
  const error = doc.errors[0]
  if (error !== undefined) return { ok: false, detail: `not valid JSON or YAML: ${error.message.split('\n')[0] ?? ''}` }
  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    return { ok: false, detail: `not valid JSON or YAML: ${describe(err)}` }
  }
  if (value === undefined || value === null) return { ok: false, detail: 'the document is empty' }
  // JSON.stringify turns NaN and Infinity (YAML .nan, .inf) into null silently; refuse them instead.
  const nonFinite: string[] = []
  const json = JSON.stringify(value, (key, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v)) nonFinite.push(key)
    return v
  }, 2)
  if (nonFinite.length > 0) return { ok: false, detail: `${nonFinite.join(', ')}: .inf and .nan have no JSON form` }
  return { ok: true, text: json }
}

function describe (err: unknown): string {
  switch ((err as NodeJS.ErrnoException | undefined)?.code) {
    case 'ENOENT': return 'no such file'
    case 'EACCES': case 'EPERM': return 'permission denied'
    case 'EISDIR': return 'it is a directory'
    default: return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? ''
  }
}
