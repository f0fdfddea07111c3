/**
 * The edgefwd command line, callable in-process: main() takes argv, the environment and where
 * to write, and resolves to the exit code. Only process-main.ts touches the real process.
 */
import { ConfigError, formatConfigIssue, isEdgefwdError } from '../errors.js'
import { parseCommandArguments, usageError } from './arguments.js'
import type { CliIo, Command, CommandContext } from './command.js'
import { commands as registeredCommands } from './commands/index.js'
import { ExitCode } from './exit-codes.js'
import { commandHelp, groupHelp, programHelp } from './help-text.js'
import { resolveCommand } from './registry.js'
import { packageVersion } from '../version.js'

export type { CliIo, TextSink } from './command.js'

/**
 * @param argv the arguments after the program name (process.argv.slice(2))
 * @param env the environment (process.env); EDGEFWD_DEBUG=1 adds stack traces to unexpected errors
 * @param commands the commands to offer; default src's own (the executable adds simulate: bin/commands.ts)
 */
export async function main (argv: readonly string[], env: Readonly<Record<string, string | undefined>>,
  io: CliIo, commands: readonly Command[] = registeredCommands): Promise<number> {
  try {
    return await dispatch(argv, { env, io, commands })
  } catch (err) {
    return reportError(err, env, io)
  }
}

async function dispatch (argv: readonly string[], ctx: CommandContext): Promise<number> {
  const { io, commands } = ctx
  const firstWord = argv.findIndex(arg => !arg.startsWith('-'))
  const globals = firstWord < 0 ? argv : argv.slice(0, firstWord)
  const rest = firstWord < 0 ? [] : argv.slice(firstWord)

  let wantsHelp = false
  for (const flag of globals) {
    if (flag === '--version') {
      io.stdout.write(`${packageVersion()}\n`)
      return ExitCode.ok
    }
    if (flag === '--help' || flag === '-h') wantsHelp = true
    else throw usageError(`unknown option "${flag}"`)
  }

  const found = resolveCommand(commands, rest)
  switch (found.kind) {
    case 'none':
      if (wantsHelp) {
        io.stdout.write(programHelp(commands, packageVersion()))
        return ExitCode.ok
      }
      // Bare `edgefwd`: the overview, but on stderr and as a usage error so that a script that
      // lost its arguments does not look successful.
      io.stderr.write(programHelp(commands, packageVersion()))
      return ExitCode.usage
    case 'unknown':
      throw usageError(`unknown command "${[...found.words, found.unknown].join(' ')}"`, found.words)
    case 'group':
      if (wantsHelp || found.rest.includes('--help') || found.rest.includes('-h')) {
        io.stdout.write(groupHelp(found.words, found.members))
        return ExitCode.ok
      }
      throw usageError(`"${found.words.join(' ')}" needs a command`, found.words)
    case 'command': {
      const parsed = wantsHelp ? { kind: 'help' as const } : parseCommandArguments(found.command, found.rest)
      if (parsed.kind === 'help') {
        io.stdout.write(commandHelp(found.command))
        return ExitCode.ok
      }
      return await found.command.run(parsed.input, ctx)
    }
  }
}

function reportError (err: unknown, env: Readonly<Record<string, string | undefined>>, io: CliIo): number {
  const debug = env.EDGEFWD_DEBUG === '1'
  if (err instanceof ConfigError) {
    // One line per issue, each prefixed, so every line stays greppable on its own.
    for (const issue of err.issues) io.stderr.write(`edgefwd: ${formatConfigIssue(issue)}\n`)
  } else if (isEdgefwdError(err)) {
    // One line per problem (a scenario file may have several), each prefixed.
    for (const line of err.message.split('\n')) io.stderr.write(`edgefwd: ${line}\n`)
  }
  if (isEdgefwdError(err)) {
    if (err.hint !== undefined) io.stderr.write(`hint: ${err.hint}\n`)
    if (debug && err.cause !== undefined) io.stderr.write(`${describeCause(err.cause)}\n`)
    if (err.code === 'EDGEFWD_ERR_USAGE') return ExitCode.usage
    return err instanceof ConfigError || err.code === 'EDGEFWD_ERR_SCENARIO' ? ExitCode.configInvalid : ExitCode.failure
  }

  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? ''
  if (debug) {
    io.stderr.write(`edgefwd: unexpected error: ${message}\n${err instanceof Error ? err.stack ?? '' : ''}\n`)
  } else {
    io.stderr.write(`edgefwd: unexpected error: ${message} (set EDGEFWD_DEBUG=1 for the stack trace)\n`)
  }
  return ExitCode.failure
}

function describeCause (cause: unknown): string {
  return cause instanceof Error ? `cause: ${cause.stack ?? cause.message}` : `cause: ${String(cause)}`
}
