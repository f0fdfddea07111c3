/** `edgefwd certs sign --ca DIR CSR`: the operator's side of "certs csr". */
import { X509Certificate } from 'node:crypto'
import type { CertificateKind } from '../../pki/generate.js'
import { LEAF_VALIDITY_DAYS } from '../../pki/validity.js'
import { readCaDirectory, readPemFile, refuseExisting, writePemFiles, type PemFile } from '../../pki/pem-files.js'
import { usageError } from '../arguments.js'
import { defineCommand } from '../command.js'
import { ExitCode } from '../exit-codes.js'
import { certificatePathFor, daysOption, describeWritten, forceOption, parseDays, requireOption, sanOption, validUntil } from './certs-options.js'

const NAME = ['certs', 'sign'] as const

export const certsSignCommand = defineCommand({
  name: NAME,
  summary: 'Sign a certificate signing request with a CA directory',
  description: [
    'Checks the CSR\'s signature and issues a certificate for its subject and requested names,',
    'signed by the CA in DIR (DIR/ca.crt, DIR/ca.key, RSA). The usage is decided here, not by',
    'the request: clientAuth (--client, the default) or serverAuth (--server). Writes the',
    'certificate to --out, by default CSR with ".csr" replaced by ".crt". No key is made or',
    'read besides the CA\'s. For an EC request or an EC CA use openssl x509 -req (certs/README.md).',
  ].join('\n'),
  options: {
    ca: { type: 'string', valueName: 'DIR', description: 'the CA directory made by "certs init-ca" (required)' },
    out: { type: 'string', valueName: 'FILE', description: 'where to write the certificate (default: CSR with .crt)' },
    client: { type: 'boolean', description: 'issue a client certificate (clientAuth; the default)' },
    server: { type: 'boolean', description: 'issue a server certificate (serverAuth; the CN becomes a SAN)' },
    san: sanOption,
    days: daysOption(LEAF_VALIDITY_DAYS),
    force: forceOption,
  },
  positionals: [{ name: 'CSR', description: 'the signing request (PEM), e.g. from "edgefwd certs csr"' }],
  async run ({ values, positionals: [csrPath = ''] }, { io }) {
    const caDir = requireOption(values.ca, '--ca DIR', NAME)
    if (values.client === true && values.server === true) throw usageError('give --client or --server, not both', NAME)
    const kind: CertificateKind = values.server === true ? 'server' : 'client'
    const validityDays = parseDays(values.days, NAME)
    const force = values.force === true
    const out = values.out ?? certificatePathFor(csrPath)
    await refuseExisting([out], force)

    const csrPem = await readPemFile(csrPath, 'certificate signing request')
    const ca = await readCaDirectory(caDir)
    const { signCsr } = await import('../../pki/generate.js') // node-forge: loaded only when used
    const certPem = signCsr(ca, csrPem, {
      kind,
      sans: values.san ?? [],
      ...(validityDays === undefined ? {} : { validityDays }),
    })
    const file: PemFile = { path: out, pem: certPem, kind: 'certificate' }
    await writePemFiles([file], { force })
    const subject = new X509Certificate(certPem).subject.split('\n').join(', ')
    io.stdout.write(describeWritten(file, `${kind}, ${subject}, ${validUntil(certPem)}`))
    io.stdout.write(`next: send ${out} back to the gateway, with ${caDir}/ca.crt if it does not have it yet\n`)
    return ExitCode.ok
  },
})
