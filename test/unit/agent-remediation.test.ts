import t from 'tap'
import { Remediation, type RemediationHost } from '../../src/agent/remediation.js'
import type { RemediationAction } from '../../src/config/index.js'
import { isEdgefwdError } from '../../src/errors.js'

function setup (allow: RemediationAction[] = ['reconnect_uplink', 'reload_tls']): { r: Remediation, runs: string[], clock: { now: number } } {
  const runs: string[] = []
  const clock = { now: 1_000_000 }
  const host: RemediationHost = {
    preview: async action => `would ${action}`,
    run: async action => { runs.push(action); return { ok: true, detail: `${action} done` } },
  }
  return { r: new Remediation({ allow, minIntervalMs: 60_000, confirmWithinMs: 120_000 }, host, () => clock.now), runs, clock }
}

async function refusal (p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    if (isEdgefwdError(err, 'EDGEFWD_ERR_REMEDIATION_REFUSED')) return err.message
    throw err
  }
  throw new Error('not refused')
}

t.test('a dry run changes nothing; its token runs the action once', async t => {
  const { r, runs } = setup()
  const dry = await r.dryRun('reconnect_uplink')
  t.equal(dry.wouldDo, 'would reconnect_uplink')
  t.equal(dry.changed, false)
  t.same(runs, [], 'nothing ran')
  const done = await r.execute('reconnect_uplink', dry.token)
  t.same(done, { action: 'reconnect_uplink', ok: true, result: 'reconnect_uplink done', atMs: 1_000_000 })
  t.match(await refusal(r.execute('reconnect_uplink', dry.token)), /already used/, 'replay')
  t.same(runs, ['reconnect_uplink'], 'once')
})

t.test('each check refuses with its own reason, and refusals run nothing', async t => {
  const { r, runs, clock } = setup()
  t.match(await refusal(r.dryRun('compact_store')), /not an allowed remediation here; mcp.remediation.allow lists reconnect_uplink, reload_tls/)
  t.match(await refusal(r.execute('rm -rf', 'x.y')), /not an allowed remediation/)
  t.match(await refusal(r.execute('reconnect_uplink', undefined)), /needs the token of a dry run/)
  const dry = await r.dryRun('reconnect_uplink')
  const [payload, mac] = dry.token.split('.') as [string, string]
  t.match(await refusal(r.execute('reconnect_uplink', `${payload}.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`)), /not issued by this gateway/, 'a changed MAC')
  const body = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { e: number }
  const longer = Buffer.from(JSON.stringify({ ...body, e: body.e + 3_600_000 })).toString('base64url')
  t.match(await refusal(r.execute('reconnect_uplink', `${longer}.${mac}`)), /not issued by this gateway/, 'a payload changed to live longer')
  t.match(await refusal(r.execute('reconnect_uplink', 'garbage')), /not issued by this gateway/)
  t.match(await refusal(r.execute('reload_tls', dry.token)), /is for reconnect_uplink, not reload_tls/)
  t.match(await refusal(r.execute('reconnect_uplink', dry.token, { hard: true })), /other arguments/)
  t.match(await refusal(new Remediation({ allow: ['reconnect_uplink'], minIntervalMs: 1000, confirmWithinMs: 5000 }, { preview: async () => '', run: async () => ({ ok: true, detail: '' }) }).execute('reconnect_uplink', dry.token)),
    /not issued by this gateway/, 'a token of another process (another secret)')
  clock.now += 120_001
  t.match(await refusal(r.execute('reconnect_uplink', dry.token)), /expired 1 s ago/)
  t.same(runs, [])
})

t.test('the rate limit: per action; the token stays good for a retry; the dry run and the list say when', async t => {
  const { r, runs, clock } = setup()
  await r.execute('reconnect_uplink', (await r.dryRun('reconnect_uplink')).token)
  clock.now += 20_000
  const dry = await r.dryRun('reconnect_uplink')
  t.match(dry.wouldDo, /allows it again in 40 s/)
  t.equal(r.list().actions.find(a => a.name === 'reconnect_uplink')?.availableInS, 40)
  t.match(await refusal(r.execute('reconnect_uplink', dry.token)), /allowed again in 40 s/)
  await r.execute('reload_tls', (await r.dryRun('reload_tls')).token)
  t.same(runs, ['reconnect_uplink', 'reload_tls'], 'another action is not limited by it')
  clock.now += 40_000
  await r.execute('reconnect_uplink', dry.token)
  t.same(runs, ['reconnect_uplink', 'reload_tls', 'reconnect_uplink'], 'the refused token ran once the interval passed')
})
