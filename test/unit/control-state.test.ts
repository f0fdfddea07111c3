import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs'
import * as fsPromises from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { ControlStateStore, emptyState, recoverOnStart, STATE_FILE, type ControlStateData } from '../../src/control/state.js'
import { isEdgefwdError } from '../../src/errors.js'
import { captureLogger } from '../helpers/logger.js'

const mode = (path: string): number => statSync(path).mode & 0o777
const readState = (dir: string): unknown => JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8'))

const good: ControlStateData = {
  format: 1,
  highestVersion: 7,
  current: { version: 6, message: '{"document":"e30=","signature":"c2ln","algorithm":"ed25519","keyId":"0011223344556677"}' },
  pending: { version: 7, message: '{}', previousVersion: 6, appliedAtMs: 1_700_000_000_000, restart: false },
}

async function stateError (t: Test, promise: Promise<unknown>, message: RegExp): Promise<void> {
  const err = await promise.then(() => undefined, (e: unknown) => e)
  t.ok(isEdgefwdError(err, 'EDGEFWD_ERR_CONTROL_STATE'), `EDGEFWD_ERR_CONTROL_STATE: ${String(err)}`)
  t.match((err as Error).message, message)
}

t.test('open creates the directory 0700; update writes state.json 0600; reopen reads it', async t => {
  const dir = join(t.testdir(), 'control', 'state')
  const store = await ControlStateStore.open(dir)
  t.equal(mode(dir), 0o700)
  t.same(store.get(), emptyState())
  t.notOk(existsSync(join(dir, STATE_FILE)), 'nothing written until the first update')

  await store.update(good)
  t.same(store.get(), good)
  t.equal(mode(join(dir, STATE_FILE)), 0o600)
  t.same(readState(dir), good)
  t.same(readdirSync(dir), [STATE_FILE], 'no temp file left behind')

  const reopened = await ControlStateStore.open(dir)
  t.same(reopened.get(), good)
})

t.test('get() is frozen and not aliased to what was passed in', async t => {
  const store = await ControlStateStore.open(t.testdir())
  const next = structuredClone(good)
  await store.update(next)
  next.highestVersion = 99
  t.equal(store.get().highestVersion, 7)
  t.ok(Object.isFrozen(store.get()))
  t.ok(Object.isFrozen(store.get().current))
})

t.test('concurrent mutator updates apply one after another', async t => {
  const dir = t.testdir()
  const store = await ControlStateStore.open(dir)
  const bump = (d: Readonly<ControlStateData>): ControlStateData => ({ ...d, highestVersion: d.highestVersion + 1 })
  await Promise.all([store.update(bump), store.update(bump), store.update(bump)])
  t.equal(store.get().highestVersion, 3)
  t.same(readState(dir), { format: 1, highestVersion: 3 })
})

t.test('malformed state and a lowered highestVersion are refused; the state stays', async t => {
  const dir = t.testdir()
  const store = await ControlStateStore.open(dir)
  await store.update(good)
  await stateError(t, store.update({ format: 1, highestVersion: 6 }), /refusing to lower highestVersion from 7 to 6/)
  await stateError(t, store.update({ ...good, highestVersion: -1 }), /malformed control state: highestVersion/)
  await stateError(t, store.update({ ...good, current: { version: 8, message: 'x' } } as ControlStateData), /current\.version is above highestVersion/)
  await stateError(t, store.update({ ...good, pending: { version: 7 } } as unknown as ControlStateData), /pending is not/)
  t.same(store.get(), good)
  t.same(readState(dir), good)
  await store.update(d => ({ ...d, highestVersion: 8 }))
  t.equal(store.get().highestVersion, 8, 'a failed update does not block later ones')
})

const corruptCases: Array<[string, string, RegExp]> = [
  ['garbage', '{"format": 1, "highestVer', /not JSON/],
  ['an empty file', '', /not JSON/],
  ['an unknown format', JSON.stringify({ format: 2, highestVersion: 3 }), /format 2 is not 1/],
  ['a wrong shape', JSON.stringify({ format: 1, highestVersion: '3' }), /highestVersion is not a whole number/],
  ['an unknown field', JSON.stringify({ format: 1, highestVersion: 3, extra: true }), /unknown fields extra/],
  ['a bad pending entry', JSON.stringify({ format: 1, highestVersion: 3, pending: { version: 3 } }), /pending is not/],
]
for (const [name, text, problem] of corruptCases) {
  t.test(`a state file with ${name} is moved aside, logged, and the store starts empty`, async t => {
    const dir = t.testdir({ [STATE_FILE]: text })
    const { logger, records } = captureLogger()
    const store = await ControlStateStore.open(dir, logger)
    t.same(store.get(), emptyState())
    const aside = readdirSync(dir).filter(n => /^state\.json\.corrupt-\d+$/.test(n))
    t.equal(aside.length, 1, 'moved aside')
    t.equal(readFileSync(join(dir, aside[0] as string), 'utf8'), text, 'kept byte for byte')
    t.notOk(existsSync(join(dir, STATE_FILE)))
    t.match(records(), [{ level: 50, code: 'EDGEFWD_ERR_CONTROL_STATE', path: join(dir, STATE_FILE), movedTo: join(dir, aside[0] as string), problem }])
    await store.update({ format: 1, highestVersion: 1 })
    t.same(readState(dir), { format: 1, highestVersion: 1 }, 'writable again')
  })
}

t.test('a directory that cannot be used throws EDGEFWD_ERR_CONTROL_STATE', async t => {
  const root = t.testdir({ 'a-file': 'x', 'with-dir-state': {} })
  mkdirSync(join(root, 'with-dir-state', STATE_FILE))
  await stateError(t, ControlStateStore.open(join(root, 'a-file')), /cannot use the control state directory .*a-file/)
  await stateError(t, ControlStateStore.open(join(root, 'a-file', 'below')), /cannot use the control state directory .*a part of the path is not a directory/)
  await stateError(t, ControlStateStore.open(join(root, 'with-dir-state')), /cannot read the control state .*it is a directory/)
})

t.test('leftover temp files of an interrupted write are removed at open', async t => {
  const dir = t.testdir({ [STATE_FILE]: JSON.stringify(good), 'state.json.0a1b2c.tmp': '{"format": 1, "high', 'unrelated.tmp': 'keep' })
  const store = await ControlStateStore.open(dir)
  t.same(store.get(), good)
  t.same(readdirSync(dir).sort(), [STATE_FILE, 'unrelated.tmp'])
})

t.test('a crash after the temp file is written but before the rename leaves the old state', async t => {
  const dir = t.testdir({ [STATE_FILE]: JSON.stringify(good) })
  let tempWritten: (path: string) => void = () => {}
  const reachedRename = new Promise<string>(resolve => { tempWritten = resolve })
  const { ControlStateStore: Crashing } = await t.mockImport<typeof import('../../src/control/state.js')>('../../src/control/state.js', {
    'node:fs/promises': {
      ...fsPromises,
      // The process "dies" here: the rename never happens and nothing runs after it.
      rename: async (from: string) => { tempWritten(from); return await new Promise<void>(() => {}) },
    },
  })
  const doomed = await Crashing.open(dir)
  void doomed.update({ ...good, highestVersion: 8, pending: undefined })
  const temp = await reachedRename
  t.ok(existsSync(temp), 'the temp file was written')
  t.same(JSON.parse(readFileSync(temp, 'utf8')), { format: 1, highestVersion: 8, current: good.current }, 'with the new state')
  t.same(readState(dir), good, 'state.json is the old state')

  const after = await ControlStateStore.open(dir)
  t.same(after.get(), good, 'a restart reads the old state')
  t.notOk(existsSync(temp), 'and removes the half-finished write')
})

t.test('a failed write (no space) throws, keeps the old file and get(), leaves no temp file', async t => {
  const dir = t.testdir({ [STATE_FILE]: JSON.stringify(good) })
  const { ControlStateStore: Full } = await t.mockImport<typeof import('../../src/control/state.js')>('../../src/control/state.js', {
    'node:fs/promises': {
      ...fsPromises,
      rename: async () => { throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }) },
    },
  })
  const store = await Full.open(dir)
  await stateError(t, store.update({ ...good, highestVersion: 9 }), /cannot write the control state .*: no space left on the device/)
  t.same(store.get(), good)
  t.same(readState(dir), good)
  t.same(readdirSync(dir), [STATE_FILE])
})

t.test('recoverOnStart: no pending update, nothing to do', async t => {
  const data: ControlStateData = { format: 1, highestVersion: 5, current: { version: 5, message: 'm5' } }
  const result = recoverOnStart(data, 1000)
  t.same(result, { data })
  t.notOk('rolledBack' in result)
})

t.test('recoverOnStart: a pending update means death during probation: roll back to current', async t => {
  const before = structuredClone(good)
  const result = recoverOnStart(good, 1_700_000_123_000)
  t.same(result, {
    data: {
      format: 1,
      highestVersion: 7,
      current: good.current,
      lastFailed: { version: 7, reason: 'restarted during probation', atMs: 1_700_000_123_000 },
    },
    rolledBack: { version: 7, reason: 'restarted during probation' },
  })
  t.same(good, before, 'the input is not changed')

  const firstEver = recoverOnStart({ format: 1, highestVersion: 1, pending: { version: 1, message: 'm1', appliedAtMs: 5, restart: true } }, 10)
  t.same(firstEver.data, { format: 1, highestVersion: 1, lastFailed: { version: 1, reason: 'restarted during probation', atMs: 10 } },
    'no current: back to the local configuration, the version still counted')
})

t.test('recoverOnStart result is accepted by the store', async t => {
  const dir = t.testdir({ [STATE_FILE]: JSON.stringify(good) })
  const store = await ControlStateStore.open(dir)
  await store.update(recoverOnStart(store.get(), 42).data)
  t.same(readState(dir), { format: 1, highestVersion: 7, current: good.current, lastFailed: { version: 7, reason: 'restarted during probation', atMs: 42 } })
})
