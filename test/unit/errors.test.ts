import { readFileSync } from 'node:fs'
import t from 'tap'
import { ExitCode } from '../../src/cli/exit-codes.js'
import { ConfigError, EdgefwdError, errorCodes, formatConfigIssue, isEdgefwdError, type ErrorCode } from '../../src/errors.js'

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')

/** The body of the section under `## title`, up to the next `## ` heading. */
function section (title: string): string {
  const start = doc.indexOf(`\n## ${title}\n`)
  if (start < 0) throw new Error(`docs/errors.md has no "## ${title}" section`)
  const rest = doc.slice(start + title.length + 5)
  const end = rest.indexOf('\n## ')
  return end < 0 ? rest : rest.slice(0, end)
}

/** Table rows as trimmed cells, header and separator rows left out. */
function tableRows (markdown: string): string[][] {
  return markdown.split('\n')
    .filter((line) => line.startsWith('|') && !/^\|\s*-/.test(line))
    .map((line) => line.slice(1, line.endsWith('|') ? -1 : undefined).split('|').map((cell) => cell.trim()))
    .slice(1)
}

/** The code of a first cell: `EDGEFWD_ERR_X`, or `EDGEFWD_ERR_X` (retired). */
function codeIn (cell: string | undefined): { code: string, retired: boolean } {
  const match = /^`(EDGEFWD_ERR_[A-Z0-9_]+)`( \(retired\))?$/.exec(cell ?? '')
  if (match?.[1] === undefined) throw new Error(`docs/errors.md: not a code cell: ${String(cell)}`)
  return { code: match[1], retired: match[2] !== undefined }
}

const rows = tableRows(section('Codes'))
const documented = rows.filter((row) => !codeIn(row[0]).retired)
const retired = [
  ...rows.map((row) => codeIn(row[0])).filter((c) => c.retired).map((c) => c.code),
  ...tableRows(section('Retired codes')).map((row) => codeIn(row[0]).code)
]

t.test('every code in src/errors.ts is documented, once, with meaning, source and action', async t => {
  const codes = documented.map((row) => codeIn(row[0]).code)
  t.same([...codes].sort(), Object.keys(errorCodes).sort(), 'the table lists exactly the codes of src/errors.ts')
  t.equal(new Set(codes).size, codes.length, 'no code is listed twice')
  for (const row of documented) {
    t.equal(row.length, 4, `${String(row[0])} has four cells`)
    t.ok(row.slice(1).every((cell) => cell.length > 10), `${String(row[0])} says what it means, where it comes from and what to do`)
  }
})

t.test('a retired code is never back in use', async t => {
  for (const code of retired) t.notOk(code in errorCodes, `${code} is retired and must not be in src/errors.ts`)
})

t.test('the exit codes listed are those of the CLI', async t => {
  const listed = tableRows(section('CLI exit codes')).map((row) => Number(row[0]))
  t.same(listed, [0, 1, 2, 78])
  t.same(listed, Object.values(ExitCode).sort((a, b) => a - b), 'src/cli/exit-codes.ts agrees')
})

t.test('EdgefwdError carries code, message, cause and hint', async t => {
  const cause = new Error('EACCES')
  const err = new EdgefwdError('EDGEFWD_ERR_STORE_OPEN_FAILED', 'store /x could not be opened', { cause, hint: 'fix store.path' })
  t.ok(err instanceof Error)
  t.equal(err.name, 'EdgefwdError')
  t.equal(err.code, 'EDGEFWD_ERR_STORE_OPEN_FAILED')
  t.equal(err.message, 'store /x could not be opened')
  t.equal(err.cause, cause)
  t.equal(err.hint, 'fix store.path')
  const bare = new EdgefwdError('EDGEFWD_ERR_USAGE', 'bad')
  t.equal(bare.hint, undefined)
  t.notOk('cause' in bare, 'no cause property when none was given')
  t.ok(isEdgefwdError(err))
  t.ok(isEdgefwdError(err, 'EDGEFWD_ERR_STORE_OPEN_FAILED'))
  t.notOk(isEdgefwdError(err, 'EDGEFWD_ERR_USAGE'))
  t.notOk(isEdgefwdError(cause))
  t.notOk(isEdgefwdError({ code: 'EDGEFWD_ERR_USAGE' }))
})

t.test('formatConfigIssue names source, line and key path', async t => {
  t.equal(formatConfigIssue({ source: 'edgefwd.yaml', line: 12, path: 'store.capacity', message: 'expected a size' }),
    'edgefwd.yaml:12: store.capacity: expected a size')
  t.equal(formatConfigIssue({ source: 'env', path: 'uplink.port', message: 'expected an integer' }), 'env: uplink.port: expected an integer')
  t.equal(formatConfigIssue({ source: 'edgefwd.yaml', line: 1, path: '', message: 'expected a mapping' }), 'edgefwd.yaml:1: expected a mapping')
  t.equal(formatConfigIssue({ source: 'flag', path: '', message: 'empty' }), 'flag: empty')
})

t.test('ConfigError joins its issues, one per line, and keeps them', async t => {
  const issues = [
    { source: 'edgefwd.yaml', line: 3, path: 'store.capacty', message: 'unknown key (did you mean store.capacity?)' },
    { source: 'env', path: 'uplink.port', message: 'expected an integer' }
  ]
  const err = new ConfigError('EDGEFWD_ERR_CONFIG_INVALID', issues, { hint: 'run edgefwd config check' })
  t.ok(err instanceof EdgefwdError)
  t.equal(err.name, 'ConfigError')
  t.equal(err.code, 'EDGEFWD_ERR_CONFIG_INVALID' satisfies ErrorCode)
  t.equal(err.message, 'edgefwd.yaml:3: store.capacty: unknown key (did you mean store.capacity?)\nenv: uplink.port: expected an integer')
  t.same(err.issues, issues)
  t.equal(err.hint, 'run edgefwd config check')
})
