/** `edgefwd certs init-ca --out DIR`: a development CA, DIR/ca.crt and DIR/ca.key. */
import { CA_VALIDITY_DAYS } from '../../pki/validity.js'
import { caPaths, makeKeyDirectory, refuseExisting, writePemFiles, type PemFile } from '../../pki/pem-files.js'
import { defineCommand } from '../command.js'
import { ExitCode } from '../exit-codes.js'
import { daysOption, describeWritten, forceOption, keyBitsOption, organizationOption, parseDays, parseKeyBits, requireOption, validUntil } from './certs-options.js'

const NAME = ['certs', 'init-ca'] as const
export const DEFAULT_CA_NAME = 'edgefwd development CA'

export const certsInitCaCommand = defineCommand({
  name: NAME,
  summary: 'Create a development CA: DIR/ca.crt and DIR/ca.key (RSA)',
  description: [
    'Makes a self-signed CA certificate (CA:TRUE, pathlen:0, keyCertSign and cRLSign) and its',
    'RSA key. DIR is created with mode 0700 and the key written with mode 0600; existing files',
    'are refused unless --force. For development and small fleets: in production the CA key',
    'belongs on the operator\'s machine, not on gateways (see certs/README.md).',
  ].join('\n'),
  options: {
    out: { type: 'string', valueName: 'DIR', description: 'directory for ca.crt and ca.key (required)' },
    name: { type: 'string', valueName: 'CN', description: `common name of the CA (default "${DEFAULT_CA_NAME}")` },
    org: organizationOption,
    days: daysOption(CA_VALIDITY_DAYS),
    'key-bits': keyBitsOption(3072),
    force: forceOption,
  },
  positionals: [],
  async run ({ values }, { io }) {
    const dir = requireOption(values.out, '--out DIR', NAME)
    const validityDays = parseDays(values.days, NAME)
    const keyBits = parseKeyBits(values['key-bits'], NAME)
    const force = values.force === true
    const paths = caPaths(dir)
    await refuseExisting([paths.cert, paths.key], force)

    const { createCa } = await import('../../pki/generate.js') // node-forge: loaded only when used
    const ca = createCa({
      commonName: values.name ?? DEFAULT_CA_NAME,
      ...(values.org === undefined ? {} : { organization: values.org }),
      ...(validityDays === undefined ? {} : { validityDays }),
      ...(keyBits === undefined ? {} : { keyBits }),
    })
    const files: PemFile[] = [
      { path: paths.cert, pem: ca.certPem, kind: 'certificate' },
      { path: paths.key, pem: ca.keyPem, kind: 'private key' },
    ]
    await makeKeyDirectory(dir)
    await writePemFiles(files, { force })
    io.stdout.write(describeWritten(files[0] as PemFile, `CA, ${validUntil(ca.certPem)}`))
    io.stdout.write(describeWritten(files[1] as PemFile, 'keep it off gateways'))
    io.stdout.write(`next: edgefwd certs issue --ca ${dir} --client NAME\n`)
    return ExitCode.ok
  },
})
