/**
 * The gateway id becomes an MQTT topic segment and the MQTT client id, so it is restricted to
 * printable ASCII without space and without the topic characters '/', '+' and '#'.
 */
import { hostname } from 'node:os'

export const GATEWAY_ID_MAX_LENGTH = 64
export const GATEWAY_ID_PATTERN = /^(?:(?![/+#])[\x21-\x7e])+$/

/** Maps any string onto the gateway id alphabet (other characters become '-'); never empty. */
export function sanitizeGatewayId (raw: string): string {
  const id = Array.from(raw, c => GATEWAY_ID_PATTERN.test(c) ? c : '-').join('').slice(0, GATEWAY_ID_MAX_LENGTH)
  return id === '' ? 'edgefwd' : id
}

export function defaultGatewayId (): string {
  return sanitizeGatewayId(hostname())
}
