/** The text of `edgefwd --help`, of a group (`edgefwd config --help`) and of one command. */
import { COMMON_OPTIONS } from './arguments.js'
import { commandTitle, type Command, type OptionSpec, type PositionalSpec } from './command.js'
import { EXIT_CODE_SUMMARY } from './exit-codes.js'

export function programHelp (commands: readonly Command[], version: string): string {
  return [
    `edgefwd ${version}: edge telemetry forwarder (devices -> LevelDB ring buffer -> MQTT)`,
    '',
    'Usage:',
    '  edgefwd <command> [options]',
    '  edgefwd <command> --help',
    '',
    'Commands:',
    ...table(commands.map(command => [usageOf(command), command.summary])),
    '',
    'Options:',
    ...table([['-h, --help', 'show this help'], ['--version', 'print the version and exit']]),
    '',
    'Configuration comes from a YAML or JSON file, EDGEFWD_<SECTION>__<KEY> environment',
    'variables and --set KEY=VALUE flags; see docs/config.md.',
    `Exit codes: ${EXIT_CODE_SUMMARY}; see docs/cli.md.`,
  ].join('\n') + '\n'
}

export function groupHelp (words: readonly string[], members: readonly Command[]): string {
  return [
    `Usage: edgefwd ${words.join(' ')} <command> [options]`,
    '',
    'Commands:',
    ...table(members.map(command => [usageOf(command), command.summary])),
    '',
    `Run "edgefwd ${words.join(' ')} <command> --help" for the options of a command.`,
  ].join('\n') + '\n'
}

export function commandHelp (command: Command): string {
  const lines = [`Usage: edgefwd ${usageOf(command)} [options]`, '', command.summary, '']
  if (command.description !== '') lines.push(command.description.trim(), '')
  if (command.positionals.length > 0) {
    lines.push('Arguments:', ...table(command.positionals.map(p => [p.name, p.description])), '')
  }
  const options: Array<[string, OptionSpec]> = [...Object.entries(command.options), ...Object.entries(COMMON_OPTIONS)]
  lines.push('Options:', ...table(options.map(([name, spec]) => [optionLabel(name, spec), optionText(spec)])))
  return lines.join('\n') + '\n'
}

/** `config check FILE`, `help [COMMAND...]`. */
function usageOf (command: Command): string {
  return [commandTitle(command), ...command.positionals.map(positionalLabel)].join(' ')
}

function positionalLabel (positional: PositionalSpec): string {
  const name = positional.variadic === true ? `${positional.name}...` : positional.name
  return positional.optional === true ? `[${name}]` : name
}

function optionLabel (name: string, spec: OptionSpec): string {
  const long = spec.type === 'string' ? `--${name} ${spec.valueName ?? 'VALUE'}` : `--${name}`
  return spec.short === undefined ? long : `-${spec.short}, ${long}`
}

function optionText (spec: OptionSpec): string {
  return spec.multiple === true ? `${spec.description} (repeatable)` : spec.description
}

function table (rows: ReadonlyArray<readonly [string, string]>): string[] {
  const width = Math.max(0, ...rows.map(([left]) => left.length))
  return rows.map(([left, right]) => `  ${left.padEnd(width)}   ${right}`)
}
