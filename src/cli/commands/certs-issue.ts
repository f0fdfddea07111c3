/** `edgefwd certs issue --ca DIR --client NAME | --server NAME [--san NAME]...`: a key and a certificate signed by the CA. */
import { LEAF_VALIDITY_DAYS } from '../../pki/validity.js'
import { makeKeyDirectory, readCaDirectory, refuseExisting, writePemFiles, type PemFile } from '../../pki/pem-files.js'
import { defineCommand } from '../command.js'
import { ExitCode } from '../exit-codes.js'
import {
  daysOption, describeWritten, forceOption, keyBitsOption, leafFiles, leafName, organizationOption, parseDays, parseKeyBits,
  requireOption, sanOption, validUntil,
} from './certs-options.js'

const NAME = ['certs', 'issue'] as const

export const certsIssueCommand = defineCommand({
  name: NAME,
  summary: 'Issue a client or server certificate and its key from a CA directory',
  description: [
    'Makes an RSA key and a certificate signed by the CA in DIR (DIR/ca.crt, DIR/ca.key) and',
    'writes OUT/NAME.crt and OUT/NAME.key (mode 0600); OUT is the CA directory unless --out.',
    'A client certificate (--client) has extendedKeyUsage clientAuth: the gateway presents it',
    'to the broker. A server certificate (--server) has serverAuth and NAME plus every --san as',
    'subjectAltName: the broker presents it. The key is made here; to keep a gateway\'s key on',
    'the gateway, use "certs csr" there and "certs sign" here instead.',
  ].join('\n'),
  options: {
    ca: { type: 'string', valueName: 'DIR', description: 'the CA directory made by "certs init-ca" (required)' },
    client: { type: 'string', valueName: 'NAME', description: 'issue a client certificate for NAME (its CN and file name)' },
    server: { type: 'string', valueName: 'NAME', description: 'issue a server certificate for NAME (its CN, first SAN and file name)' },
    san: sanOption,
    out: { type: 'string', valueName: 'DIR', description: 'directory for NAME.crt and NAME.key (default: the CA directory)' },
    org: organizationOption,
    days: daysOption(LEAF_VALIDITY_DAYS),
    'key-bits': keyBitsOption(2048),
    force: forceOption,
  },
  positionals: [],
  async run ({ values }, { io }) {
    const caDir = requireOption(values.ca, '--ca DIR', NAME)
    const { kind, name } = leafName(values, NAME)
    const validityDays = parseDays(values.days, NAME)
    const keyBits = parseKeyBits(values['key-bits'], NAME)
    const force = values.force === true
    const outDir = values.out ?? caDir
    const ca = await readCaDirectory(caDir)
    await refuseExisting(leafFiles(outDir, name, '', '').map(f => f.path), force)

    const { issueCertificate } = await import('../../pki/generate.js') // node-forge: loaded only when used
    const issued = issueCertificate(ca, {
      kind,
      commonName: name,
      sans: values.san ?? [],
      ...(values.org === undefined ? {} : { organization: values.org }),
      ...(validityDays === undefined ? {} : { validityDays }),
      ...(keyBits === undefined ? {} : { keyBits }),
    })
    const files = leafFiles(outDir, name, issued.certPem, issued.keyPem)
    await makeKeyDirectory(outDir)
    await writePemFiles(files, { force })
    io.stdout.write(describeWritten(files[0] as PemFile, `${kind}, ${validUntil(issued.certPem)}`))
    io.stdout.write(describeWritten(files[1] as PemFile, ''))
    return ExitCode.ok
  },
})
