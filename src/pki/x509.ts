/**
 * Reading certificates from a file's bytes: the one set of rules under both `edgefwd run` (the TLS
 * material loader, material.ts) and `edgefwd certs inspect` (inspect.ts), so inspect never passes
 * a file run would refuse.
 *
 * PEM only: every `-----BEGIN CERTIFICATE-----` block, in file order (a chain or a CA bundle).
 * DER is refused with the command that converts it, since Node's TLS takes PEM. A private key, a
 * CSR or other PEM blocks where a certificate belongs are each named; a damaged block says which
 * one it is. The callers wrap a problem in their own error (with the configuration key, or the
 * file name as given on the command line); the code is EDGEFWD_ERR_TLS_PEM_INVALID in both.
 */
import { X509Certificate } from 'node:crypto'
import { isPrivateKeyLabel, looksLikeDer, pemBlocks } from './keys.js'

/**
 * Why a file's bytes are not certificates: `problem` follows the file name ("x.pem is DER ..."),
 * `kind` lets a caller word one case its own way.
 */
export interface CertificateProblem { kind: 'der' | 'damaged' | 'private-key' | 'csr' | 'none', problem: string, hint?: string, cause?: unknown }

export function readCertificateBytes (bytes: Buffer, file: string): X509Certificate[] | CertificateProblem {
  if (looksLikeDer(bytes)) {
    return { kind: 'der', problem: 'is DER (binary), not PEM', hint: `convert it: openssl x509 -inform der -in ${file} -out ${file}.pem` }
  }
  const blocks = pemBlocks(bytes.toString('utf8'))
  const certificates: X509Certificate[] = []
  const certBlocks = blocks.filter(b => b.label === 'CERTIFICATE')
  for (const [i, block] of certBlocks.entries()) {
    try {
      certificates.push(new X509Certificate(block.pem))
    } catch (err) {
      const which = certBlocks.length === 1 ? 'its certificate' : `certificate ${i + 1} of ${certBlocks.length}`
      return { kind: 'damaged', problem: `holds a damaged certificate: ${which} (${(err as Error).message})`, hint: 'the file was cut short or altered: copy it again from where it was issued', cause: err }
    }
  }
  if (certificates.length > 0) return certificates
  if (blocks.some(b => isPrivateKeyLabel(b.label))) return { kind: 'private-key', problem: 'holds a private key, not a certificate', hint: 'a private key goes in tls.key (certs inspect: --key KEY)' }
  if (blocks.some(b => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST')) {
    return { kind: 'csr', problem: 'holds a certificate signing request, not a certificate', hint: 'the CA signs it: edgefwd certs sign --ca DIR CSR (certs/README.md)' }
  }
  return {
    kind: 'none',
    problem: blocks.length === 0 ? 'holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" block)' : `holds no certificate, only ${blocks.map(b => b.label).join(', ')}`,
    hint: `\`openssl storeutl -noout ${file}\` lists what the file holds`
  }
}

export function isCertificateProblem (read: X509Certificate[] | CertificateProblem): read is CertificateProblem {
  return !Array.isArray(read)
}
