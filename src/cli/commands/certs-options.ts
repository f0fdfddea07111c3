/** Options and checks shared by the `edgefwd certs` commands (not itself a command). */
import { X509Certificate } from 'node:crypto'
import { join } from 'node:path'
import type { CertificateKind } from '../../pki/generate.js'
import type { PemFile } from '../../pki/pem-files.js'
import { usageError } from '../arguments.js'
import type { OptionSpec } from '../command.js'

export const forceOption = {
  type: 'boolean', description: 'replace existing files (private keys are recreated with mode 0600)',
} as const satisfies OptionSpec

export const organizationOption = {
  type: 'string', valueName: 'ORG', description: 'organization (O) of the subject',
} as const satisfies OptionSpec

export const sanOption = {
  type: 'string', multiple: true, valueName: 'NAME',
  description: 'a DNS name or IP address the certificate is valid for; a server\'s NAME is always one',
} as const satisfies OptionSpec

export function daysOption (defaultDays: number): OptionSpec & { type: 'string' } {
  return { type: 'string', valueName: 'N', description: `validity in days (default ${defaultDays})` }
}

export function keyBitsOption (defaultBits: number): OptionSpec & { type: 'string' } {
  return { type: 'string', valueName: 'BITS', description: `RSA key size, 2048 to 8192 (default ${defaultBits})` }
}

/** 100 years: far beyond any sensible certificate, yet keeps dates in range. */
const MAX_DAYS = 36_500

export function parseDays (value: string | undefined, command: readonly string[]): number | undefined {
  return parseWhole(value, '--days', 1, MAX_DAYS, command)
}

export function parseKeyBits (value: string | undefined, command: readonly string[]): number | undefined {
  return parseWhole(value, '--key-bits', 2048, 8192, command)
}

function parseWhole (value: string | undefined, flag: string, min: number, max: number, command: readonly string[]): number | undefined {
  if (value === undefined) return undefined
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) throw usageError(`option ${flag} must be a whole number from ${min} to ${max}, got "${value}"`, command)
  return n
}

export function requireOption (value: string | undefined, flag: string, command: readonly string[]): string {
  if (value === undefined || value === '') throw usageError(`"${command.join(' ')}" needs ${flag}`, command)
  return value
}

/**
 * A certificate name that is also a file name (`NAME.crt`, `NAME.key`): letters, digits, dot,
 * dash, underscore; no path, no leading dot. Wildcards go in --san.
 */
const FILE_SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

export function leafName (values: { client?: string, server?: string }, command: readonly string[]): { kind: CertificateKind, name: string } {
  if (values.client !== undefined && values.server !== undefined) throw usageError('give --client NAME or --server NAME, not both', command)
  const kind: CertificateKind = values.server !== undefined ? 'server' : 'client'
  const name = values.server ?? values.client
  if (name === undefined) throw usageError(`"${command.join(' ')}" needs --client NAME or --server NAME`, command)
  if (!FILE_SAFE_NAME.test(name)) {
    throw usageError(`NAME "${name}" must be 1 to 64 letters, digits, ".", "-" or "_" (it is also the file name; put wildcards in --san)`, command)
  }
  return { kind, name }
}

/** `gw-1.csr` -> `gw-1.crt`; anything else gets `.crt` appended. */
export function certificatePathFor (csrPath: string): string {
  return csrPath.endsWith('.csr') ? `${csrPath.slice(0, -'.csr'.length)}.crt` : `${csrPath}.crt`
}

export function leafFiles (dir: string, name: string, certPem: string, keyPem: string): PemFile[] {
  return [
    { path: join(dir, `${name}.crt`), pem: certPem, kind: 'certificate' },
    { path: join(dir, `${name}.key`), pem: keyPem, kind: 'private key' },
  ]
}

/** `valid until 2027-12-23`: what a user needs to plan the renewal. */
export function validUntil (certPem: string): string {
  return `valid until ${new Date(new X509Certificate(certPem).validTo).toISOString().slice(0, 10)}`
}

export function describeWritten (file: PemFile, detail: string): string {
  const mode = file.kind === 'private key' ? ', mode 0600' : ''
  return `wrote ${file.path} (${file.kind}${mode}${detail === '' ? '' : `, ${detail}`})\n`
}
