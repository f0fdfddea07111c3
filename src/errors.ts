/**
 * Every error edgefwd raises on purpose carries a stable string code (`EDGEFWD_ERR_*`).
 * Codes are documented in docs/errors.md; test/unit/errors.test.ts fails when this table and
 * that page disagree. A retired code is never reused: mark it retired in the docs instead.
 */

export const errorCodes = {
  EDGEFWD_ERR_USAGE: 'The command line is malformed: unknown command or flag, missing argument.',
  EDGEFWD_ERR_CONFIG_READ: 'A configuration file could not be read (missing, unreadable, not a file).',
  EDGEFWD_ERR_CONFIG_PARSE: 'A configuration file is not valid YAML or JSON.',
  EDGEFWD_ERR_CONFIG_INVALID: 'The configuration does not match the schema: unknown key, wrong type, value out of range.',
  EDGEFWD_ERR_SCENARIO: 'A simulation scenario (a name or a YAML/JSON file) cannot be found or read, or is not a valid scenario.',
  EDGEFWD_ERR_EVENT_INVALID: 'An event handed to the store is malformed (missing device id, bad priority, bad value).',
  EDGEFWD_ERR_EVENT_TOO_LARGE: 'An event is larger than the store can ever hold (bigger than its capacity or the maximum event size).',
  EDGEFWD_ERR_PROTO_DECODE: 'Bytes could not be decoded as the expected protobuf message.',
  EDGEFWD_ERR_STORE_NOT_OPEN: 'A store operation was called before open() finished or after close().',
  EDGEFWD_ERR_STORE_LOCKED: 'The store directory is in use by another process (LevelDB LOCK held).',
  EDGEFWD_ERR_STORE_OPEN_FAILED: 'The store could not be opened, repaired or replaced.',
  EDGEFWD_ERR_STORE_CORRUPT: 'The store database was found corrupt; it was repaired or moved aside (logged, not thrown).',
  EDGEFWD_ERR_STORE_IO: 'A read or write of the store failed for a reason other than a full disk.',
  EDGEFWD_ERR_STORE_DISK_FULL: 'A store write failed because the disk is full; the store switched to its in-memory fallback (logged, not thrown).',
  EDGEFWD_ERR_STORE_UNKNOWN_LEASE: 'ack() or nack() named a lease the store does not hold (already settled, or from before a restart).',
  EDGEFWD_ERR_INGEST_LISTEN: 'An ingest listener could not start: address in use, no permission, a unix socket path held by a live process.',
  EDGEFWD_ERR_INGEST_SOURCE: 'An ingest source cannot start: the environment variable named by ingest.mqtt[].passwordEnv is not set. A broker or device that is unreachable is not this error: it is counted and retried.',
  EDGEFWD_ERR_TLS_FILE_UNREADABLE: 'A TLS file (CA, certificate, key, passphrase) cannot be read: missing, a directory, no permission.',
  EDGEFWD_ERR_TLS_KEY_PERMISSIONS: 'A private key file is readable or writable by group or others.',
  EDGEFWD_ERR_TLS_PEM_INVALID: 'A TLS file holds no parseable certificate or key of the kind expected.',
  EDGEFWD_ERR_TLS_KEY_PASSPHRASE: 'A private key is encrypted and its passphrase is missing or wrong.',
  EDGEFWD_ERR_TLS_KEY_UNSUPPORTED: 'A key is of a type or size edgefwd does not use (only RSA and EC P-256/P-384).',
  EDGEFWD_ERR_TLS_KEY_MISMATCH: 'The private key does not belong to the certificate.',
  EDGEFWD_ERR_TLS_CERT_EXPIRED: 'A certificate is past its notAfter date.',
  EDGEFWD_ERR_TLS_CERT_NOT_YET_VALID: 'A certificate is before its notBefore date.',
  EDGEFWD_ERR_TLS_CERT_UNTRUSTED: 'A certificate is not signed by the configured CA.',
  EDGEFWD_ERR_TLS_CERT_USAGE: 'A certificate lacks the key usage or extended key usage its role needs (clientAuth, serverAuth, CA).',
  EDGEFWD_ERR_TLS_HOSTNAME: 'The broker host name is not among the names (SANs) of the broker certificate.',
  EDGEFWD_ERR_TLS_BROKER_UNTRUSTED: 'The broker presented a certificate not signed by the configured CA.',
  EDGEFWD_ERR_TLS_REJECTED: 'The broker refused the client certificate during the TLS handshake.',
  EDGEFWD_ERR_UPLINK_REFUSED: 'The broker answered the MQTT connection with a refusal (CONNACK reason code: not authorized, bad credentials, quota, busy).',
  EDGEFWD_ERR_UPLINK_CONNECT: 'The broker could not be reached, did not answer, or refused the MQTT connection for a reason other than TLS.',
  EDGEFWD_ERR_UPLINK_CLOSED: 'start() was called on an uplink session after stop(): a stopped session never connects again.',
  EDGEFWD_ERR_UPLINK_BATCH_SEQ: 'The batch sequence file (uplink.batchSeqFile) cannot be read or is damaged; edgefwd will not guess the next batch number.',
  EDGEFWD_ERR_CERTS_EXISTS: 'edgefwd certs would overwrite an existing file (use --force).',
  EDGEFWD_ERR_CERTS_WRITE: 'edgefwd certs could not write a file: no permission, no such directory, no space.',
  EDGEFWD_ERR_METRICS_LISTEN: 'The metrics and health endpoint could not listen on its address (in use, no permission, not an address of this host).',
  EDGEFWD_ERR_STATUS_UNREACHABLE: 'edgefwd status could not read the metrics endpoint: nothing listens there, or it answered with something other than edgefwd metrics.',
  EDGEFWD_ERR_CONTROL_KEY: 'An operator key for signed remote configuration cannot be read or is not an Ed25519 or RSA key of the kind expected.',
  EDGEFWD_ERR_CONTROL_STATE: 'The persisted remote-configuration state cannot be read or written (corrupt file, no permission, no space).',
  EDGEFWD_ERR_AGENT_SOCKET: 'The agent control socket (mcp.socket) cannot be created: its directory is missing or not writable, or a live edgefwd already listens there.',
  EDGEFWD_ERR_AGENT_UNREACHABLE: 'edgefwd mcp cannot reach the running forwarder on its control socket: nothing listens there, no permission, or no answer in time.',
  EDGEFWD_ERR_MCP_HTTP: 'The MCP Streamable HTTP endpoint cannot start: address in use, a non-loopback address without TLS and a bearer token file, or an unreadable TLS or token file.',
  EDGEFWD_ERR_REMEDIATION_REFUSED: 'A remediation was refused: not in mcp.remediation.allow, a missing, forged, expired or replayed confirmation token, or its rate limit.',
} as const

export type ErrorCode = keyof typeof errorCodes

export interface ErrorOptions {
  cause?: unknown
  /** One short sentence telling the user what to do about it. */
  hint?: string
}

export class EdgefwdError extends Error {
  readonly code: ErrorCode
  readonly hint: string | undefined

  constructor (code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'EdgefwdError'
    this.code = code
    this.hint = options.hint
  }
}

/** One problem found in a configuration: where it is and what was expected. */
export interface ConfigIssue {
  /** Where the value came from: the file path, `env EDGEFWD_…` or `--set`. */
  source: string
  /** Dotted key path, e.g. `store.capacity`. Empty for the document root. */
  path: string
  /** 1-based line in `source`, when known. */
  line?: number
  message: string
}

export class ConfigError extends EdgefwdError {
  readonly issues: readonly ConfigIssue[]

  constructor (code: 'EDGEFWD_ERR_CONFIG_READ' | 'EDGEFWD_ERR_CONFIG_PARSE' | 'EDGEFWD_ERR_CONFIG_INVALID',
    issues: ConfigIssue[], options: ErrorOptions = {}) {
    super(code, issues.map(formatConfigIssue).join('\n'), options)
    this.name = 'ConfigError'
    this.issues = issues
  }
}

export function formatConfigIssue (issue: ConfigIssue): string {
  const where = issue.line === undefined ? issue.source : `${issue.source}:${issue.line}`
  return issue.path === '' ? `${where}: ${issue.message}` : `${where}: ${issue.path}: ${issue.message}`
}

/**
 * An EdgefwdError (of `code`, if given). Recognised by shape as well as by class: the single
 * executable loads `edgefwd mcp` as a bundle of its own (packaging/sea/mcp-loader.ts), with its
 * own copy of this class.
 */
export function isEdgefwdError (err: unknown, code?: ErrorCode): err is EdgefwdError {
  const is = err instanceof EdgefwdError ||
    (err instanceof Error && err.name === 'EdgefwdError' && Object.hasOwn(errorCodes, String((err as { code?: unknown }).code)))
  return is && (code === undefined || (err as EdgefwdError).code === code)
}

/** A file system error in a few words: the errno's meaning, else the message. */
export function fsErrorReason (err: unknown): string {
  switch ((err as NodeJS.ErrnoException | undefined)?.code) {
    case 'ENOENT': return 'no such file or directory'
    case 'EACCES': case 'EPERM': return 'permission denied'
    case 'EISDIR': return 'it is a directory'
    case 'ENOTDIR': return 'a part of the path is not a directory'
    case 'ENOSPC': return 'no space left on the device'
    case 'EROFS': return 'read-only file system'
    default: return err instanceof Error ? err.message : String(err)
  }
}
