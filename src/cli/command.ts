/**
 * What a CLI command is. A command is one file under src/cli/commands/ exporting the result of
 * defineCommand(), listed once in src/cli/commands/index.ts; parsing, `--help` and error
 * handling are done for it by src/cli/program.ts.
 */
import type { Readable } from 'node:stream'

/** Where a command writes; process.stdout/stderr in the bin, string collectors in tests. */
export interface TextSink {
  write (chunk: string): unknown
}

export type SignalName = 'SIGHUP' | 'SIGINT' | 'SIGTERM'

/** Process signals a long-running command may listen to; process.on in the bin, a fake in tests. */
export interface Signals {
  /** Calls `handler` on each `signal` until the returned function is called. */
  on (signal: SignalName, handler: () => void): () => void
}

export interface CliIo {
  stdout: TextSink
  stderr: TextSink
  /** Absent: the command hears no signals (one-shot runs, most tests). */
  signals?: Signals
  /** Standard input, for `ingest.stdin` (process.stdin in the bin); absent: nothing to read. */
  stdin?: Readable
}

export interface CommandContext {
  /** The environment (process.env in the bin); commands never read process.env themselves. */
  env: Readonly<Record<string, string | undefined>>
  io: CliIo
  /** Every registered command, for commands that describe the others (help). */
  commands: readonly Command[]
}

export interface OptionSpec {
  type: 'string' | 'boolean'
  multiple?: boolean
  short?: string
  /** Shown in help for string options, e.g. KEY=VALUE. */
  valueName?: string
  description: string
}

export interface PositionalSpec {
  name: string
  description: string
  optional?: boolean
  /** Takes all remaining positionals; only the last one may be variadic. */
  variadic?: boolean
}

type OptionValue<O extends OptionSpec> =
  O['type'] extends 'boolean'
    ? (O['multiple'] extends true ? boolean[] : boolean)
    : (O['multiple'] extends true ? string[] : string)

export type OptionValues<Options extends Record<string, OptionSpec>> = {
  [K in keyof Options]?: OptionValue<Options[K]>
}

export interface CommandInput<Options extends Record<string, OptionSpec>> {
  values: OptionValues<Options>
  positionals: string[]
}

export interface CommandSpec<Options extends Record<string, OptionSpec>> {
  /** The words after `edgefwd`, e.g. ['config', 'check']. */
  name: readonly string[]
  /** One line for command lists. */
  summary: string
  /** Paragraphs for `--help`, after the usage line. */
  description: string
  options: Options
  positionals: readonly PositionalSpec[]
  /** Returns the exit code. Throw EdgefwdError for failures the user can act on. */
  run (input: CommandInput<Options>, ctx: CommandContext): Promise<number>
}

/** Parsed arguments before they are given the command's own option types. */
export interface RawCommandInput {
  values: Readonly<Record<string, unknown>>
  positionals: string[]
}

/** A command with its option types erased, as the registry holds it. */
export interface Command extends Omit<CommandSpec<Record<string, OptionSpec>>, 'run'> {
  run (input: RawCommandInput, ctx: CommandContext): Promise<number>
}

export function defineCommand<const Options extends Record<string, OptionSpec>> (spec: CommandSpec<Options>): Command {
  return {
    ...spec,
    run: async ({ values, positionals }, ctx) =>
      // Sound because src/cli/arguments.ts parses with exactly `spec.options` in strict mode.
      await spec.run({ values: values as OptionValues<Options>, positionals }, ctx),
  }
}

export function commandTitle (command: Pick<Command, 'name'>): string {
  return command.name.join(' ')
}
