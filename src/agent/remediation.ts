/**
 * Remediation: the few actions an agent may take on a gateway, only those mcp.remediation.allow
 * names, each in two steps.
 *
 * 1. A dry run says what the action would do now (from the gateway's current state) and changes
 *    nothing. It returns a confirmation token: base64url(JSON {action, arguments, nonce, expires})
 *    "." base64url(HMAC-SHA256 of it), keyed by a secret made at start and never written
 *    anywhere, so a token is good for this process only, for `confirmWithin`, for exactly that
 *    action and those arguments, and once.
 * 2. The call with the token runs the action, unless the action ran less than `minInterval` ago
 *    (per action; the token stays good until it expires, so the agent may retry it later).
 *
 * Refusals (EDGEFWD_ERR_REMEDIATION_REFUSED) say which check failed: not allowed, no token, a
 * token not issued here (forged or from before a restart), expired, for another action or other
 * arguments, already used, or the rate limit. The order of the checks is that one.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { EdgefwdError } from '../errors.js'
import type { RemediationAction } from '../config/index.js'

export interface RemediationOptions {
  allow: readonly RemediationAction[]
  minIntervalMs: number
  confirmWithinMs: number
}

/** What the gateway does for each action: say what would happen, and do it. */
export interface RemediationHost {
  preview (action: RemediationAction): Promise<string>
  run (action: RemediationAction): Promise<{ ok: boolean, detail: string }>
}

export interface ActionInfo {
  name: RemediationAction
  description: string
  /** Seconds until the rate limit allows it again; 0 = now. */
  availableInS: number
}

export interface ActionList {
  actions: ActionInfo[]
  minIntervalS: number
  confirmWithinS: number
}

export interface DryRun {
  action: RemediationAction
  wouldDo: string
  token: string
  expiresAtMs: number
  /** Always false: a dry run changes nothing. */
  changed: false
}

export interface Executed {
  action: RemediationAction
  ok: boolean
  result: string
  atMs: number
}

export const ACTION_DESCRIPTIONS: Record<RemediationAction, string> = {
  reload_tls: 'Read the TLS CA, certificate and key files again now (as SIGHUP does). A bad set is refused and the one in use kept; the connection stays up and the next one uses the new set.',
  reconnect_uplink: 'Drop the broker connection, or end the backoff wait, and connect again at once. Batches in flight go back to the store and are sent again; nothing is lost.',
  compact_store: 'Compact the store (LevelDB compactRange): give back the disk held by delivered and deleted events. Store writes wait while it runs (seconds on a large store).',
}

interface TokenBody { a: string, g: string, n: string, e: number }

export class Remediation {
  private readonly secret = randomBytes(32)
  private readonly lastRun = new Map<RemediationAction, number>()
  /** Nonces of tokens used, until they expire. */
  private readonly used = new Map<string, number>()

  constructor (private readonly options: RemediationOptions, private readonly host: RemediationHost, private readonly now: () => number = Date.now) {}

  list (): ActionList {
    return {
      actions: this.options.allow.map(name => ({ name, description: ACTION_DESCRIPTIONS[name], availableInS: Math.ceil(this.waitMs(name) / 1000) })),
      minIntervalS: this.options.minIntervalMs / 1000,
      confirmWithinS: this.options.confirmWithinMs / 1000,
    }
  }

  async dryRun (action: string, args: Record<string, unknown> = {}): Promise<DryRun> {
    const allowed = this.allowed(action)
    const wait = this.waitMs(allowed)
    const preview = await this.host.preview(allowed)
    const expiresAtMs = this.now() + this.options.confirmWithinMs
    const body: TokenBody = { a: allowed, g: canonical(args), n: randomBytes(12).toString('base64url'), e: expiresAtMs }
    const payload = Buffer.from(JSON.stringify(body)).toString('base64url')
    return {
      action: allowed,
      wouldDo: wait > 0 ? `${preview} (the rate limit allows it again in ${Math.ceil(wait / 1000)} s)` : preview,
      token: `${payload}.${this.mac(payload)}`,
      expiresAtMs,
      changed: false,
    }
  }

  async execute (action: string, token: string | undefined, args: Record<string, unknown> = {}): Promise<Executed> {
    const allowed = this.allowed(action)
    const body = this.verify(allowed, token, args)
    const wait = this.waitMs(allowed)
    if (wait > 0) throw refused(`${allowed} ran less than ${this.options.minIntervalMs / 1000} s ago (mcp.remediation.minInterval): allowed again in ${Math.ceil(wait / 1000)} s; the token stays good until it expires`)
    this.used.set(body.n, body.e)
    this.lastRun.set(allowed, this.now())
    const { ok, detail } = await this.host.run(allowed)
    return { action: allowed, ok, result: detail, atMs: this.now() }
  }

  private allowed (action: string): RemediationAction {
    const name = this.options.allow.find(a => a === action)
    if (name === undefined) {
      throw refused(`"${action.slice(0, 64)}" is not an allowed remediation here; mcp.remediation.allow lists ${this.options.allow.join(', ')}`)
    }
    return name
  }

  private verify (action: RemediationAction, token: string | undefined, args: Record<string, unknown>): TokenBody {
    if (token === undefined || token === '') throw refused(`${action} needs the token of a dry run: call it with dryRun: true first`)
    const [payload, mac, extra] = token.split('.')
    if (payload === undefined || mac === undefined || extra !== undefined || !this.macMatches(payload, mac)) {
      throw refused('the confirmation token was not issued by this gateway process (forged, altered, or from before a restart): make a new dry run')
    }
    const body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenBody
    const now = this.now()
    for (const [nonce, expires] of this.used) if (expires < now) this.used.delete(nonce)
    if (body.e < now) throw refused(`the confirmation token expired ${Math.ceil((now - body.e) / 1000)} s ago (mcp.remediation.confirmWithin): make a new dry run`)
    if (body.a !== action) throw refused(`the confirmation token is for ${body.a}, not ${action}`)
    if (body.g !== canonical(args)) throw refused('the confirmation token was issued for other arguments: make a dry run with these')
    if (this.used.has(body.n)) throw refused('the confirmation token was already used: each dry run confirms one call')
    return body
  }

  private waitMs (action: RemediationAction): number {
    const last = this.lastRun.get(action)
    return last === undefined ? 0 : Math.max(0, last + this.options.minIntervalMs - this.now())
  }

  private mac (payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url')
  }

  private macMatches (payload: string, mac: string): boolean {
    const expected = Buffer.from(this.mac(payload))
    const given = Buffer.from(mac)
    return given.length === expected.length && timingSafeEqual(given, expected)
  }
}

function refused (message: string): EdgefwdError {
  return new EdgefwdError('EDGEFWD_ERR_REMEDIATION_REFUSED', message)
}

/** Arguments as a stable string (keys sorted), so a token binds exactly these. */
function canonical (args: Record<string, unknown>): string {
  return JSON.stringify(Object.keys(args).sort().map(k => [k, args[k]]))
}
