/** Process exit codes of the edgefwd CLI; docs/cli.md documents the same table. */
export const ExitCode = {
  ok: 0,
  /** The command failed, or a check (such as `config check`) found problems. */
  failure: 1,
  /** The command line is malformed: unknown command or option, missing argument. */
  usage: 2,
  /** A long-running command refused to start because its configuration is invalid (sysexits EX_CONFIG). */
  configInvalid: 78,
} as const

export type ExitCode = typeof ExitCode[keyof typeof ExitCode]

export const EXIT_CODE_SUMMARY = '0 ok, 1 failure or failed check, 2 usage error, 78 invalid configuration'
