import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { commands as executableCommands } from '../../bin/commands.js'
import { defineCommand } from '../../src/cli/command.js'
import { commands } from '../../src/cli/commands/index.js'
import { main } from '../../src/cli/program.js'
import { ConfigError, EdgefwdError } from '../../src/errors.js'

interface Run { code: number, stdout: string, stderr: string }

async function run (argv: string[], env: Record<string, string | undefined> = {}, registry = commands): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const io = { stdout: { write: (s: string) => { stdout += s } }, stderr: { write: (s: string) => { stderr += s } } }
  const code = await main(argv, env, io, registry)
  return { code, stdout, stderr }
}

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

t.test('--version prints the package version', async t => {
  t.same(await run(['--version']), { code: 0, stdout: `${pkg.version}\n`, stderr: '' })
})

t.test('--help lists every command and the exit codes', async t => {
  for (const argv of [['--help'], ['-h'], ['help']]) {
    const { code, stdout, stderr } = await run(argv)
    t.equal(code, 0, argv.join(' '))
    t.equal(stderr, '')
    t.match(stdout, /^edgefwd \S+: /)
    t.match(stdout, /^ {2}config check FILE +Validate a configuration file/m)
    t.match(stdout, /^ {2}help \[COMMAND\.\.\.\] +Show help/m)
    t.match(stdout, /Exit codes: 0 ok, 1 failure or failed check, 2 usage error, 78 invalid configuration/)
  }
})

t.test('the executable\'s commands (bin/commands.ts): src\'s, then simulate from simulate/, then help', async t => {
  const { code, stdout } = await run(['--help'], {}, executableCommands)
  t.equal(code, 0)
  const table = stdout.slice(stdout.indexOf('Commands:\n'), stdout.indexOf('\n\nOptions:'))
  const listed = [...table.matchAll(/^ {2}(\S+(?: [a-z][a-z-]*)?)/gm)].map(m => m[1])
  t.ok(listed.includes('simulate'), `simulate is listed (${listed.join(', ')})`)
  t.equal(listed.at(-1), 'help', 'help stays last')
  t.same(executableCommands.slice(0, commands.length - 1), commands.slice(0, -1), 'src\'s commands first, in their order')
  t.notOk(commands.some(c => c.name[0] === 'simulate'), 'src\'s own list does not have it: src/ does not import simulate/')
  t.match((await run(['simulate', '--help'], {}, executableCommands)).stdout, /^Usage: edgefwd simulate /m)
})

t.test('no command: the overview on stderr, exit 2', async t => {
  const { code, stdout, stderr } = await run([])
  t.equal(code, 2)
  t.equal(stdout, '')
  t.match(stderr, /Usage:/)
})

t.test('every command has help, by --help, -h, help COMMAND and a leading --help', async t => {
  for (const command of commands) {
    const title = command.name.join(' ')
    const ways = [[...command.name, '--help'], [...command.name, '-h'], ['help', ...command.name], ['--help', ...command.name]]
    for (const argv of ways) {
      const { code, stdout, stderr } = await run(argv)
      t.equal(code, 0, argv.join(' '))
      t.equal(stderr, '')
      t.match(stdout, new RegExp(`^Usage: edgefwd ${title}`), argv.join(' '))
      t.match(stdout, /^ {2}-h, --help +show this help$/m)
    }
  }
  const help = (await run(['config', 'check', '--help'])).stdout
  t.match(help, /^ {2}FILE +the configuration file \(YAML or JSON\)$/m)
  t.match(help, /^ {2}--set KEY=VALUE +override one key, e\.g\. --set store\.capacity=64MiB \(repeatable\)$/m)
  t.equal((await run(['config', 'check', 'x.yaml', '--bogus', '--help'])).code, 0, '--help wins over other mistakes')
})

t.test('a group lists its commands', async t => {
  for (const argv of [['config', '--help'], ['help', 'config']]) {
    const { code, stdout } = await run(argv)
    t.equal(code, 0)
    t.match(stdout, /^Usage: edgefwd config <command> \[options\]/)
    t.match(stdout, /^ {2}config check FILE /m)
  }
  t.same(await run(['config']), { code: 2, stdout: '', stderr: 'edgefwd: "config" needs a command (see edgefwd config --help)\n' })
})

t.test('usage errors: one line on stderr, exit 2', async t => {
  const cases: Array<[string[], string]> = [
    [['x'], 'edgefwd: unknown command "x" (see edgefwd --help)'],
    [['config', 'chek', 'f'], 'edgefwd: unknown command "config chek" (see edgefwd config --help)'],
    [['help', 'nope'], 'edgefwd: unknown command "nope" (see edgefwd --help)'],
    [['--bogus'], 'edgefwd: unknown option "--bogus" (see edgefwd --help)'],
    [['config', 'check'], 'edgefwd: "config check" needs FILE (see edgefwd config check --help)'],
    [['config', 'check', 'a', 'b'], 'edgefwd: unexpected argument "b" for "config check" (see edgefwd config check --help)'],
    [['config', 'check', 'a', '--bogus'], 'edgefwd: unknown option "--bogus" for "config check" (see edgefwd config check --help)'],
    [['config', 'check', 'a', '--set'], 'edgefwd: option --set needs a value (see edgefwd config check --help)'],
  ]
  for (const [argv, line] of cases) {
    t.same(await run(argv), { code: 2, stdout: '', stderr: `${line}\n` }, argv.join(' '))
  }
})

/** What `edgefwd run` needs beyond the schema: the broker and the TLS files. */
const RUNNABLE = 'uplink:\n  url: mqtts://broker.example:8883\ntls:\n  ca: ca.pem\n  cert: gw.pem\n  key: gw-key.pem\n'

t.test('config check: ok', async t => {
  const dir = t.testdir({ 'config.yaml': `gateway:\n  id: gw-1\nstore:\n  capacity: 1MiB\n${RUNNABLE}`, 'empty.yaml': '' })
  t.same(await run(['config', 'check', join(dir, 'config.yaml')]), { code: 0, stdout: 'ok\n', stderr: '' })
  t.same(await run(['config', 'check', join(dir, 'empty.yaml'), '--set', 'store.capacity=64MiB', '--set=log.level=debug',
    '--set', 'uplink.url=mqtts://broker.example:8883', '--set', 'tls.ca=ca.pem', '--set', 'tls.cert=gw.pem', '--set', 'tls.key=gw-key.pem']),
  { code: 0, stdout: 'ok\n', stderr: '' })
})

t.test('config check: "ok" means run can start: the broker and the TLS files are required', async t => {
  const dir = t.testdir({ 'config.yaml': 'gateway:\n  id: gw-1\nuplink:\n  window: 4\n' })
  const file = join(dir, 'config.yaml')
  t.same(await run(['config', 'check', file]), {
    code: 1,
    stdout: '',
    stderr: [
      `${file}: uplink.url: is required by edgefwd run: the broker to deliver to, mqtts://HOST[:PORT]`,
      ...['ca', 'cert', 'key'].map(k => `${file}: tls.${k}: is required by edgefwd run (it connects with mutual TLS only): a path to a PEM file`),
      '',
    ].join('\n'),
  })
  // Set from the environment, they count as well.
  t.same(await run(['config', 'check', file, '--set', 'tls.ca=ca.pem'],
    { EDGEFWD_UPLINK__URL: 'mqtts://broker.example:8883', EDGEFWD_TLS__CERT: 'gw.pem', EDGEFWD_TLS__KEY: 'gw-key.pem' }),
  { code: 0, stdout: 'ok\n', stderr: '' })
})

t.test('config check: every issue on its own line, exit 1', async t => {
  const dir = t.testdir({ 'config.yaml': 'store:\n  capacty: 1MiB\n  durability: fast\n' })
  const file = join(dir, 'config.yaml')
  const result = await run(['config', 'check', file, '--set', 'log.level=loud'],
    { EDGEFWD_STORE__PATH: '', EDGEFWD_CONFIG: 'ignored', HOME: '/root' })
  t.same(result, {
    code: 1,
    stdout: '',
    stderr: [
      `${file}:2: store.capacty: unknown key (did you mean "capacity"?)`,
      `${file}:3: store.durability: expected one of "sync", "relaxed", got "fast"`,
      'env EDGEFWD_STORE__PATH: store.path: must not be empty',
      '--set: log.level: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "loud"',
      '',
    ].join('\n'),
  })
})

t.test('config check: missing file and syntax error exit 1 too', async t => {
  const dir = t.testdir({ 'bad.yaml': 'a: 1\na: 2\n' })
  t.same(await run(['config', 'check', join(dir, 'nope.yaml')]),
    { code: 1, stdout: '', stderr: `${join(dir, 'nope.yaml')}: cannot read the configuration file: no such file\n` })
  t.same(await run(['config', 'check', join(dir, 'bad.yaml')]),
    { code: 1, stdout: '', stderr: `${join(dir, 'bad.yaml')}:2: Map keys must be unique (column 1)\n` })
})

t.test('errors escaping a command map to exit codes', async t => {
  const throwing = (error: unknown) => defineCommand({
    name: ['boom'],
    summary: 'throws',
    description: '',
    options: {},
    positionals: [],
    async run () { throw error },
  })
  t.same(await run(['boom'], {}, [throwing(new EdgefwdError('EDGEFWD_ERR_STORE_LOCKED', 'store is locked by pid 42', { hint: 'stop the other edgefwd' }))]),
    { code: 1, stdout: '', stderr: 'edgefwd: store is locked by pid 42\nhint: stop the other edgefwd\n' })

  const withCause = await run(['boom'], { EDGEFWD_DEBUG: '1' },
    [throwing(new EdgefwdError('EDGEFWD_ERR_STORE_IO', 'read failed', { cause: new Error('EIO: i/o error') }))])
  t.equal(withCause.code, 1)
  t.match(withCause.stderr, /^edgefwd: read failed\ncause: Error: EIO: i\/o error\n\s+at /, 'EDGEFWD_DEBUG=1 shows the cause')

  const invalid = new ConfigError('EDGEFWD_ERR_CONFIG_INVALID',
    [{ source: 'c.yaml', path: 'store.capacity', line: 3, message: 'bad' }, { source: '--set', path: 'log.level', message: 'worse' }])
  t.same(await run(['boom'], {}, [throwing(invalid)]),
    { code: 78, stdout: '', stderr: 'edgefwd: c.yaml:3: store.capacity: bad\nedgefwd: --set: log.level: worse\n' },
    'a long-running command refusing to start on bad configuration exits 78')

  t.same(await run(['boom'], {}, [throwing(new RangeError('kaboom\nsecond line'))]),
    { code: 1, stdout: '', stderr: 'edgefwd: unexpected error: kaboom (set EDGEFWD_DEBUG=1 for the stack trace)\n' })
  const debug = await run(['boom'], { EDGEFWD_DEBUG: '1' }, [throwing(new RangeError('kaboom'))])
  t.equal(debug.code, 1)
  t.match(debug.stderr, /^edgefwd: unexpected error: kaboom\nRangeError: kaboom\n\s+at /)
})

t.test('typed option values reach the command', async t => {
  let seen: unknown
  const probe = defineCommand({
    name: ['probe', 'deep'],
    summary: 'records its input',
    description: '',
    options: { flag: { type: 'boolean', description: 'a flag' }, tag: { type: 'string', multiple: true, description: 'tags' } },
    positionals: [{ name: 'A', description: 'a' }, { name: 'REST', description: 'more', optional: true, variadic: true }],
    async run ({ values, positionals }) {
      const tags: string[] | undefined = values.tag
      const flag: boolean | undefined = values.flag
      seen = { tags, flag, positionals }
      return 0
    },
  })
  t.equal((await run(['probe', 'deep', 'a', 'b', 'c', '--flag', '--tag', 'x', '--tag=y'], {}, [probe])).code, 0)
  t.same(seen, { tags: ['x', 'y'], flag: true, positionals: ['a', 'b', 'c'] })
  t.equal((await run(['probe', 'deep', '--', '--not-an-option'], {}, [probe])).code, 0)
  t.same(seen, { tags: undefined, flag: undefined, positionals: ['--not-an-option'] })
  t.same(await run(['probe', 'deep', 'a', '--flag=yes'], {}, [probe]),
    { code: 2, stdout: '', stderr: 'edgefwd: option --flag does not take a value (see edgefwd probe deep --help)\n' })
  t.same(await run(['help', 'probe', 'deep', 'more'], {}, [probe, ...commands]),
    { code: 2, stdout: '', stderr: 'edgefwd: unknown command "probe deep more" (see edgefwd --help)\n' })
})

t.test('simulate --metrics must be ADDRESS:PORT: a usage error before anything starts', async t => {
  const { code, stderr } = await run(['simulate', '--metrics', 'localhost'], {}, executableCommands)
  t.equal(code, 2)
  t.match(stderr, /simulate: --metrics must be ADDRESS:PORT, e\.g\. 127\.0\.0\.1:9464, got "localhost"/)
})

t.test('simulate with a broken scenario file: EDGEFWD_ERR_SCENARIO, one line per problem, exit 78 like an invalid configuration', async t => {
  const dir = t.testdir({ 'bad.yaml': 'name: bad\nduration: 10s\nstore: { capacity: 1MiB }\ndevices: []\ntimeline: [{ at: 1s, link: nowhere }]\n' })
  const { code, stdout, stderr } = await run(['simulate', '--scenario', join(dir, 'bad.yaml')], {}, executableCommands)
  t.equal(code, 78, `exit 78 (stderr: ${stderr})`)
  t.equal(stdout, '')
  const lines = stderr.trimEnd().split('\n')
  t.ok(lines.length >= 2, 'several problems, each on its own line')
  t.ok(lines.every(l => /^edgefwd: \S*bad\.yaml:\d+: \S+: \S/.test(l)), 'each prefixed, naming the file, the line and the field, as a configuration error')
  const missing = await run(['simulate', '--scenario', join(dir, 'missing.yaml')], {}, executableCommands)
  t.equal(missing.code, 78)
  t.match(missing.stderr, /missing\.yaml: cannot read the file \(ENOENT\)/)
})

