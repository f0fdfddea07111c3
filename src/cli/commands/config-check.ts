/** `edgefwd config check FILE [--set KEY=VALUE]...`: validate a configuration without starting anything. */
import { ConfigError, formatConfigIssue } from '../../errors.js'
import { defineCommand } from '../command.js'
import { ExitCode } from '../exit-codes.js'

export const configCheckCommand = defineCommand({
  name: ['config', 'check'],
  summary: 'Validate a configuration file together with EDGEFWD_* variables and --set',
  description: [
    'Loads FILE, applies EDGEFWD_<SECTION>__<KEY> environment variables and --set overrides',
    'exactly as "run" will, requires what "run" cannot start without (uplink.url, tls.ca,',
    'tls.cert, tls.key), and prints "ok", or every problem on its own line on stderr',
    '(FILE:LINE: KEY: what was expected) and exits 1. The TLS files themselves are checked by',
    '"edgefwd certs check".',
  ].join('\n'),
  options: {
    set: {
      type: 'string',
      multiple: true,
      valueName: 'KEY=VALUE',
      description: 'override one key, e.g. --set store.capacity=64MiB',
    },
  },
  positionals: [{ name: 'FILE', description: 'the configuration file (YAML or JSON)' }],
  async run ({ values, positionals: [file] }, { env, io }) {
    try {
      const { loadConfig } = await import('../../config/index.js')
      await loadConfig({ file, env, overrides: values.set ?? [], purpose: 'run' })
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      for (const issue of err.issues) io.stderr.write(`${formatConfigIssue(issue)}\n`)
      return ExitCode.failure
    }
    io.stdout.write('ok\n')
    return ExitCode.ok
  },
})
