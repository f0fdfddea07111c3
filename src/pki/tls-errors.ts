/**
 * Turning what Node and mqtt.js report for a failed TLS connection into one specific error:
 * the broker is not trusted, the broker's name is wrong, or the broker refused our certificate.
 * Everything else (ECONNREFUSED, a timeout, DNS) is an ordinary outage: `undefined` is returned
 * and the caller retries as usual.
 *
 * What mqtt.js 5.16 (Node 20, OpenSSL 3) reports, measured by test/integration/broker-tls.test.ts:
 *
 * - Untrusted broker, wrong name, expired broker certificate: the same against every broker and
 *   TLS version, because Node checks the server's certificate itself: an 'error' whose `code` is
 *   the OpenSSL verify code (UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED, ...) or
 *   ERR_TLS_CERT_ALTNAME_INVALID (with `host` and `cert.subjectaltname`), emitted twice by mqtt.js.
 * - Our certificate refused by Mosquitto (OpenSSL server): a TLS alert. With TLS 1.3 the client
 *   has finished its handshake ('secureConnect') before the server has checked our certificate,
 *   so the alert arrives as a read error with code `ERR_SSL_<...>_ALERT_<...>`; with TLS 1.2
 *   it ends the handshake as `EPROTO` with the alert in the message. Mosquitto 2.0.11 sends
 *   "unknown ca" (48) for another CA, "certificate expired" (45) for an expired certificate and
 *   "bad certificate" (42) for a not-yet-valid one.
 * - Our certificate refused by a Node broker (aedes, simulate/embedded-broker.ts): no alert at
 *   all; Node checks the client certificate after the handshake and destroys the socket. TLS
 *   1.2: ECONNRESET "Client network socket disconnected before secure TLS connection was
 *   established". TLS 1.3: 'secureConnect', then the connection closes, usually with no error
 *   at all, sometimes ECONNRESET (when our CONNECT reached the closed socket). Only the caller
 *   can tell this case apart: it passes `handshakeDone: true` (the TLS socket's `authorized` is
 *   true, or 'secureConnect' was seen) and `err` undefined or the ECONNRESET/EPIPE it got.
 *   mqtt.connectAsync() never settles for a bare close when reconnectPeriod is 0, unless its
 *   third argument (allowRetries) is false.
 */
import { EdgefwdError } from '../errors.js'

export interface TlsErrorContext {
  /** The broker URL, as configured. */
  url: string
  /** The files in use, named in messages when given. */
  files?: { ca?: string, cert?: string, key?: string }
  /**
   * True when the TLS handshake had completed (the broker's certificate was verified) and the
   * connection then ended before CONNACK. With TLS 1.3 that is how a broker that sends no alert
   * refuses a client certificate.
   */
  handshakeDone?: boolean
  /**
   * False when the server never answered our TLS hello: a reset then comes from the network or a
   * proxy (an outage), not from a broker refusing a certificate it never received. Undefined:
   * not known (then a reset during the handshake is read as a likely refusal).
   */
  serverAnswered?: boolean
  /**
   * How long after the handshake the connection closed, when known. A broker refusing a
   * certificate closes at once; one that closes seconds later without CONNACK was busy or not
   * ready (NATS while JetStream elects its leaders after a restart holds the CONNECT for
   * seconds, then closes), which is an outage, not a refused certificate.
   */
  closedAfterHandshakeMs?: number
}

/** From this long after the handshake, a close without CONNACK is read as an outage (see closedAfterHandshakeMs). */
export const LATE_CLOSE_MS = 1000

interface NodeTlsError {
  code?: unknown
  message?: unknown
  host?: unknown
  cert?: { subjectaltname?: unknown } | undefined
}

/** OpenSSL verify results meaning "the broker's certificate does not chain to our CA". */
const UNTRUSTED_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_CHAIN_TOO_LONG',
  'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'CERT_REVOKED',
])

/** TLS alerts a server sends about the client's certificate (RFC 8446 §6.2), as OpenSSL words them. */
const REJECTION_ALERTS: ReadonlyArray<[RegExp, string]> = [
  [/alert unknown ca/i, 'it does not know the CA that issued it'],
  [/alert certificate expired/i, 'it says the certificate has expired'],
  [/alert certificate revoked/i, 'it says the certificate was revoked'],
  [/alert certificate required/i, 'it requires a client certificate and none was sent'],
  [/alert bad certificate/i, 'it found the certificate bad: often not valid yet (check the clock) or lacking clientAuth'],
  [/alert unsupported certificate/i, 'it does not support the certificate (key type or usage)'],
  [/alert certificate unknown/i, 'it could not accept the certificate'],
  [/alert access denied/i, 'it denied access to this certificate'],
]

const REJECTED_HINT = 'register the gateway certificate or its CA with the broker; `edgefwd certs inspect` shows what is sent'

export function classifyTlsError (err: unknown, context: TlsErrorContext): EdgefwdError | undefined {
  const e = (typeof err === 'object' && err !== null ? err : {}) as NodeTlsError
  const code = typeof e.code === 'string' ? e.code : ''
  const text = typeof e.message === 'string' ? e.message : ''
  const { url } = context
  const caFile = context.files?.ca === undefined ? '' : ` in ${context.files.ca}`
  const certFile = context.files?.cert === undefined ? '' : ` ${context.files.cert}`
  const options = (hint: string): { cause: unknown, hint: string } => ({ cause: err, hint })

  if (UNTRUSTED_CODES.has(code)) {
    return new EdgefwdError('EDGEFWD_ERR_TLS_BROKER_UNTRUSTED',
      `the broker at ${url} presented a certificate not signed by the CA${caFile} (${code})`,
      options('check the broker address and tls.ca; never turn verification off'))
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'ERROR_IN_CERT_NOT_AFTER_FIELD') {
    return new EdgefwdError('EDGEFWD_ERR_TLS_BROKER_UNTRUSTED', `the broker's certificate expired (broker ${url})`,
      options('the broker operator must renew its certificate; if it should be valid, check this gateway\'s clock'))
  }
  if (code === 'CERT_NOT_YET_VALID' || code === 'ERROR_IN_CERT_NOT_BEFORE_FIELD') {
    return new EdgefwdError('EDGEFWD_ERR_TLS_BROKER_UNTRUSTED', `the broker's certificate is not valid yet (broker ${url})`,
      options('check this gateway\'s clock (timedatectl); without an RTC it is wrong until NTP syncs'))
  }
  if (code === 'INVALID_PURPOSE') {
    return new EdgefwdError('EDGEFWD_ERR_TLS_BROKER_UNTRUSTED', `the broker at ${url} presented a certificate not issued for server use (no serverAuth)`,
      options('reissue the broker certificate as a server certificate (edgefwd certs issue --server)'))
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') {
    const asked = typeof e.host === 'string' ? `"${e.host}"` : 'the host name asked for'
    const names = typeof e.cert?.subjectaltname === 'string' && e.cert.subjectaltname !== ''
      ? `it names ${e.cert.subjectaltname}`
      : 'it carries no subjectAltName'
    return new EdgefwdError('EDGEFWD_ERR_TLS_HOSTNAME', `the broker's certificate at ${url} is not valid for ${asked}: ${names}`,
      options('connect by a name the certificate carries, or reissue the server certificate with that name (--san)'))
  }
  const reason = typeof (e as { reason?: unknown }).reason === 'string' ? (e as { reason: string }).reason : ''
  for (const [pattern, meaning] of REJECTION_ALERTS) {
    if (pattern.test(text) || pattern.test(reason)) {
      return new EdgefwdError('EDGEFWD_ERR_TLS_REJECTED',
        `the broker at ${url} refused our client certificate${certFile}: ${meaning}`, options(REJECTED_HINT))
    }
  }
  // A Node-based broker (aedes) refusing our certificate under TLS 1.2: no alert, just a close
  // during the handshake. Other causes are possible (a proxy, an overloaded broker), hence "most
  // likely". A close before the server answered our hello at all is the network or a proxy whose
  // far side is down (an outage): the broker never had our certificate to refuse.
  if (code === 'ECONNRESET' && /before secure TLS connection was established/.test(text) && context.serverAnswered !== false) {
    return new EdgefwdError('EDGEFWD_ERR_TLS_REJECTED',
      `the broker at ${url} closed the connection during the TLS handshake: it most likely refused our client certificate${certFile}`,
      options(REJECTED_HINT))
  }
  // The same under TLS 1.3: the handshake is done for us, then the broker hangs up before CONNACK.
  if (context.handshakeDone === true && (err === undefined || err === null || code === 'ECONNRESET' || code === 'EPIPE') &&
    !(context.closedAfterHandshakeMs !== undefined && context.closedAfterHandshakeMs >= LATE_CLOSE_MS)) {
    return new EdgefwdError('EDGEFWD_ERR_TLS_REJECTED',
      `the broker at ${url} closed the connection right after the TLS handshake, before CONNACK: it most likely refused our client certificate${certFile}`,
      options(REJECTED_HINT))
  }
  return undefined
}
