/** `edgefwd certs csr --key-out FILE --csr-out FILE`: a key that stays on this gateway and a request for the operator's CA. */
import { dirname } from 'node:path'
import { defaultGatewayId } from '../../config/gateway-id.js'
import type { CertificateKind } from '../../pki/generate.js'
import { makeKeyDirectory, refuseExisting, writePemFiles, type PemFile } from '../../pki/pem-files.js'
import { usageError } from '../arguments.js'
import { defineCommand } from '../command.js'
import { ExitCode } from '../exit-codes.js'
import { describeWritten, forceOption, keyBitsOption, organizationOption, parseKeyBits, requireOption, sanOption } from './certs-options.js'

const NAME = ['certs', 'csr'] as const

export const certsCsrCommand = defineCommand({
  name: NAME,
  summary: 'Create a private key and a certificate signing request (the key never leaves this machine)',
  description: [
    'Run on the gateway. Makes an RSA key, written to the --key-out file with mode 0600, and a',
    'CSR (PKCS#10) for it, written to the --csr-out file. Send only the CSR to the operator, who',
    'signs it with "edgefwd certs sign" or openssl (certs/README.md) and sends back the',
    'certificate. The subject CN is --client NAME (default: this host\'s gateway id, from its',
    'host name) or --server NAME; the request asks for clientAuth or serverAuth accordingly.',
  ].join('\n'),
  options: {
    'key-out': { type: 'string', valueName: 'FILE', description: 'where to write the private key (required; mode 0600)' },
    'csr-out': { type: 'string', valueName: 'FILE', description: 'where to write the signing request (required)' },
    client: { type: 'string', valueName: 'NAME', description: 'request a client certificate for NAME (default: the host name)' },
    server: { type: 'string', valueName: 'NAME', description: 'request a server certificate for NAME' },
    san: sanOption,
    org: organizationOption,
    'key-bits': keyBitsOption(2048),
    force: forceOption,
  },
  positionals: [],
  async run ({ values }, { io }) {
    const keyOut = requireOption(values['key-out'], '--key-out FILE', NAME)
    const csrOut = requireOption(values['csr-out'], '--csr-out FILE', NAME)
    if (keyOut === csrOut) throw usageError('--key-out and --csr-out must be different files', NAME)
    if (values.client !== undefined && values.server !== undefined) throw usageError('give --client NAME or --server NAME, not both', NAME)
    const kind: CertificateKind = values.server === undefined ? 'client' : 'server'
    const commonName = values.server ?? values.client ?? defaultGatewayId()
    const keyBits = parseKeyBits(values['key-bits'], NAME)
    const force = values.force === true
    await refuseExisting([keyOut, csrOut], force)

    const { createCsr } = await import('../../pki/generate.js') // node-forge: loaded only when used
    const request = createCsr({
      kind,
      commonName,
      sans: values.san ?? [],
      ...(values.org === undefined ? {} : { organization: values.org }),
      ...(keyBits === undefined ? {} : { keyBits }),
    })
    const files: PemFile[] = [
      { path: keyOut, pem: request.keyPem, kind: 'private key' },
      { path: csrOut, pem: request.csrPem, kind: 'certificate signing request' },
    ]
    for (const dir of new Set([dirname(keyOut), dirname(csrOut)])) await makeKeyDirectory(dir)
    await writePemFiles(files, { force })
    io.stdout.write(describeWritten(files[0] as PemFile, 'keep it here'))
    io.stdout.write(describeWritten(files[1] as PemFile, `${kind}, CN=${commonName}`))
    io.stdout.write(`next: send ${csrOut} to your CA operator (edgefwd certs sign --ca DIR ${csrOut}, or openssl: certs/README.md)\n`)
    return ExitCode.ok
  },
})
