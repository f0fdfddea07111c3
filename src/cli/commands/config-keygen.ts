/** `edgefwd config keygen --out DIR [--force]`: an Ed25519 operator key pair for signed remote configuration. */
import { lstat } from 'node:fs/promises'
import { join } from 'node:path'
import { makeKeyDirectory, writePemFiles, type PemFile } from '../../pki/pem-files.js'
import { defineCommand } from '../command.js'
import { ExitCode } from '../exit-codes.js'
import { requireOption } from './certs-options.js'

const NAME = ['config', 'keygen'] as const

export const configKeygenCommand = defineCommand({
  name: NAME,
  summary: 'Create an operator key pair for signed remote configuration: DIR/operator.key and DIR/operator.pub',
  description: [
    'Makes an Ed25519 key pair: DIR/operator.key (PKCS#8 PEM, mode 0600), which signs updates',
    'with "edgefwd config sign" and stays on the operator\'s machine, and DIR/operator.pub (SPKI',
    'PEM, mode 0644), which goes on every gateway under control.publicKeys. Prints the key id',
    'that signed messages carry. DIR is created with mode 0700; existing files are refused',
    'unless --force.',
  ].join('\n'),
  options: {
    out: { type: 'string', valueName: 'DIR', description: 'directory for operator.key and operator.pub (required)' },
    force: { type: 'boolean', description: 'replace existing files (the private key is recreated with mode 0600)' },
  },
  positionals: [],
  async run ({ values }, { io }) {
    const dir = requireOption(values.out, '--out DIR', NAME)
    const force = values.force === true
    const privatePath = join(dir, 'operator.key')
    const publicPath = join(dir, 'operator.pub')
    if (!force) {
      for (const path of [privatePath, publicPath]) {
        if (await exists(path)) {
          io.stderr.write(`edgefwd: ${path} already exists; not overwriting it\nhint: pass --force to replace the key pair (gateways trusting the old operator.pub will refuse updates signed by the new key), or choose another --out\n`)
          return ExitCode.failure
        }
      }
    }

    const { generateKeyPair, keyIdOf } = await import('../../control/signing.js')
    const { createPublicKey } = await import('node:crypto')
    const pair = generateKeyPair()
    const files: PemFile[] = [
      { path: privatePath, pem: pair.privatePem, kind: 'private key' },
      { path: publicPath, pem: pair.publicPem, kind: 'public key' },
    ]
    await makeKeyDirectory(dir)
    await writePemFiles(files, { force })
    io.stdout.write(`wrote ${privatePath} (private key, mode 0600, keep it on the operator's machine)\n`)
    io.stdout.write(`wrote ${publicPath} (public key, for control.publicKeys on gateways)\n`)
    io.stdout.write(`keyId ${keyIdOf(createPublicKey(pair.publicPem))}\n`)
    io.stdout.write(`next: edgefwd config sign --key ${privatePath} UPDATE.json\n`)
    return ExitCode.ok
  },
})

async function exists (path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch {
    // Anything but "it is there" is left to the write, which reports the real problem.
    return false
  }
}
