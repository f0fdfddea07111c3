/** `edgefwd certs inspect FILE... [--key KEY] [--ca CA] [--json]`: what a certificate is, and whether it fits. */
import { statSync } from 'node:fs'
import { inspectCertificates, formatReports, readCertificates, readPrivateKey, type CertificateReport, type InspectOptions } from '../../pki/inspect.js'
import { caPaths, readPemFile, readTlsFile } from '../../pki/pem-files.js'
import { defineCommand } from '../command.js'
import { ExitCode } from '../exit-codes.js'

export const certsInspectCommand = defineCommand({
  name: ['certs', 'inspect'],
  summary: 'Describe certificates: names, validity, key; check a key and a CA against them',
  description: [
    'Prints, for every certificate in each FILE (PEM, several per file allowed, or DER): subject,',
    'issuer, SANs, validity and days left, key type and size, CA flag, extended key usage,',
    'serial and SHA-256 fingerprint. RSA and EC certificates from any tool are read.',
    'With --key, says whether the key belongs to the first certificate of the first FILE; with --ca,',
    'whether each certificate is signed by that CA (directly or through the other certificates',
    'of its file). Exits 1, with a "problem <CODE>: ..." line, when a key does not match, a',
    'certificate does not chain to the CA, is expired or not yet valid; otherwise 0.',
    'Private key material is never printed.',
  ].join('\n'),
  options: {
    key: { type: 'string', valueName: 'KEY', description: 'a private key (PEM, unencrypted) to check against the first certificate' },
    ca: { type: 'string', valueName: 'CA', description: 'a CA certificate file (or a CA directory holding ca.crt) to check the chain against' },
    json: { type: 'boolean', description: 'print {"ok", "certificates": [...]} as JSON instead of text' },
  },
  positionals: [{ name: 'FILE', description: 'a certificate file', variadic: true }],
  async run ({ values, positionals }, { io }) {
    const options: InspectOptions = { now: new Date() }
    if (values.key !== undefined) {
      options.key = { file: values.key, key: readPrivateKey(await readPemFile(values.key, 'private key'), values.key) }
    }
    if (values.ca !== undefined) {
      const file = isDirectory(values.ca) ? caPaths(values.ca).cert : values.ca
      options.ca = { file, certificates: readCertificates(await readTlsFile(file, 'CA certificate'), file) }
    }
    const reports: CertificateReport[] = []
    for (const [index, file] of positionals.entries()) {
      const certificates = readCertificates(await readTlsFile(file, 'certificate'), file)
      // The key belongs to one certificate: the first one given (the leaf, in a chain file).
      const { key, ...rest } = options
      reports.push(...inspectCertificates(file, certificates, index === 0 ? options : rest))
    }
    const ok = reports.every(report => report.problems.length === 0)
    io.stdout.write(values.json === true ? `${JSON.stringify({ ok, certificates: reports }, null, 2)}\n` : formatReports(reports, options.now))
    return ok ? ExitCode.ok : ExitCode.failure
  },
})

function isDirectory (path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}
