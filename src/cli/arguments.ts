/** Turning a command's arguments into its typed input, or into a one-line usage error. */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { EdgefwdError } from '../errors.js'
import { commandTitle, type Command, type OptionSpec, type RawCommandInput } from './command.js'

export type ParsedArguments =
  | { kind: 'help' }
  | { kind: 'run', input: RawCommandInput }

/** Every command accepts these in addition to its own options. */
export const COMMON_OPTIONS = {
  help: { type: 'boolean', short: 'h', description: 'show this help' },
} as const satisfies Record<string, OptionSpec>

/** EDGEFWD_ERR_USAGE with the pointer to the help users need: `... (see edgefwd config check --help)`. */
export function usageError (message: string, helpFor: readonly string[] = []): EdgefwdError {
  const command = ['edgefwd', ...helpFor].join(' ')
  return new EdgefwdError('EDGEFWD_ERR_USAGE', `${message} (see ${command} --help)`)
}

export function parseCommandArguments (command: Command, args: readonly string[]): ParsedArguments {
  const specs: Record<string, OptionSpec> = { ...command.options, ...COMMON_OPTIONS }
  const options = toNodeOptions(specs)
  const title = commandTitle(command)

  // A lenient pass first, so that `--help` wins over other mistakes and an unknown option is
  // reported by its name rather than by Node's longer message.
  const { tokens } = parseArgs({ args: [...args], options, strict: false, allowPositionals: true, tokens: true })
  if (tokens.some(token => token.kind === 'option' && token.name === 'help')) return { kind: 'help' }
  for (const token of tokens) {
    if (token.kind === 'option' && !Object.hasOwn(specs, token.name)) {
      throw usageError(`unknown option "${token.rawName}" for "${title}"`, command.name)
    }
  }

  let parsed: RawCommandInput
  try {
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: true })
  } catch (err) {
    throw usageError(describeParseError(err), command.name)
  }

  const positionals = parsed.positionals
  const required = command.positionals.filter(p => p.optional !== true).length
  const variadic = command.positionals.at(-1)?.variadic === true
  const missing = command.positionals[positionals.length]
  if (positionals.length < required && missing !== undefined) {
    throw usageError(`"${title}" needs ${missing.name}`, command.name)
  }
  const extra = positionals[command.positionals.length]
  if (!variadic && extra !== undefined) {
    throw usageError(`unexpected argument "${extra}" for "${title}"`, command.name)
  }

  const { help: _help, ...values } = parsed.values
  return { kind: 'run', input: { values, positionals } }
}

/** Node's parseArgs messages, reworded to match the rest of the CLI's. */
function describeParseError (err: unknown): string {
  const message = err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err)
  const missing = /^Option '(?:-\w, )?(--[\w-]+)(?: <value>)?' argument missing/.exec(message)
  if (missing !== null) return `option ${missing[1] ?? ''} needs a value`
  const unwanted = /^Option '(?:-\w, )?(--[\w-]+)' does not take an argument/.exec(message)
  if (unwanted !== null) return `option ${unwanted[1] ?? ''} does not take a value`
  return message.replace(/\.$/, '')
}

function toNodeOptions (specs: Record<string, OptionSpec>): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = {}
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = {
      type: spec.type,
      ...(spec.multiple === true ? { multiple: true } : {}),
      ...(spec.short === undefined ? {} : { short: spec.short }),
    }
  }
  return options
}
