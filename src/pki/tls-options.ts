/**
 * The client side of mutual TLS, as options for mqtt.js (`mqtt.connect(url, { ...opts })`) or
 * `tls.connect`. Verification is never optional here: the broker must present a certificate
 * chained to `ca` and carrying the host name (or IP address) we asked for.
 */
import { checkServerIdentity } from 'node:tls'
import type { PeerCertificate } from 'node:tls'
import { isIP } from 'node:net'

export interface TlsCredentials {
  /** PEM: the CA (or bundle) the broker's certificate must chain to. */
  ca: string
  /** PEM: our client certificate, intermediates after it. */
  cert: string
  /** PEM: the client certificate's private key. */
  key: string
}

export interface ClientTlsOptions {
  ca: string
  cert: string
  key: string
  servername?: string
  rejectUnauthorized: true
  minVersion: 'TLSv1.2'
  checkServerIdentity: (hostname: string, cert: PeerCertificate) => Error | undefined
}

export function clientTlsOptions (material: TlsCredentials, options: { servername?: string } = {}): ClientTlsOptions {
  const result: ClientTlsOptions = {
    ca: material.ca,
    cert: material.cert,
    key: material.key,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    // An explicit function so nobody "fixes" a hostname error by passing `() => undefined`:
    // Node checks `servername` (or the host when it is absent) against the certificate's SANs.
    checkServerIdentity: (hostname, cert) => checkServerIdentity(hostname, cert),
  }
  // SNI carries host names only (RFC 6066 §3); Node warns when given an IP literal. Without
  // servername, Node and mqtt.js check the connect host (an IP literal) against the IP SANs.
  if (options.servername !== undefined && options.servername !== '' && isIP(options.servername) === 0) {
    result.servername = options.servername
  }
  return result
}
