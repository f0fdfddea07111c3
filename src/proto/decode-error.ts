import { EdgefwdError } from '../errors.js'

/**
 * Runs a decoder over untrusted bytes and guarantees that the only thing it can throw is
 * EdgefwdError EDGEFWD_ERR_PROTO_DECODE, with the original error as `cause`.
 */
export function decodeGuard<T> (messageName: string, bytes: unknown, decode: (bytes: Uint8Array) => T): T {
  if (!(bytes instanceof Uint8Array)) {
    throw new EdgefwdError('EDGEFWD_ERR_PROTO_DECODE', `cannot decode edgefwd.v1.${messageName}: expected a Uint8Array`)
  }
  try {
    return decode(bytes)
  } catch (err) {
    throw decodeFailure(messageName, bytes, err)
  }
}

/** The error decodeGuard throws, for decoders on a hot path that catch without a closure. */
export function decodeFailure (messageName: string, bytes: Uint8Array, err: unknown): EdgefwdError {
  const reason = err instanceof Error ? err.message : String(err)
  return new EdgefwdError('EDGEFWD_ERR_PROTO_DECODE',
    `cannot decode edgefwd.v1.${messageName} (${bytes.length} bytes): ${reason}`, { cause: err })
}
