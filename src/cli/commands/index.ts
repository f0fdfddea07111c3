/**
 * src's CLI commands, in the order `edgefwd --help` lists them. A new command is one file plus one
 * line here. The edgefwd executable adds commands kept outside src/ (bin/commands.ts).
 */
import type { Command } from '../command.js'
import { certsCsrCommand } from './certs-csr.js'
import { certsInitCaCommand } from './certs-init-ca.js'
import { certsInspectCommand } from './certs-inspect.js'
import { certsIssueCommand } from './certs-issue.js'
import { certsSignCommand } from './certs-sign.js'
import { certsCheckCommand } from './certs-check.js'
import { configCheckCommand } from './config-check.js'
import { configKeygenCommand } from './config-keygen.js'
import { configSignCommand } from './config-sign.js'
import { helpCommand } from './help.js'
import { mcpCommand } from './mcp.js'
import { sinkCommand } from './sink.js'
import { runCommand } from './run.js'
import { statusCommand } from './status.js'

export const commands: readonly Command[] = withCommands([])

/** src's commands with `extra` listed after them and before `help`. */
export function withCommands (extra: readonly Command[]): readonly Command[] {
  return [
    runCommand,
    certsInitCaCommand,
    certsIssueCommand,
    certsCsrCommand,
    certsSignCommand,
    certsInspectCommand,
    certsCheckCommand,
    configCheckCommand,
    configKeygenCommand,
    configSignCommand,
    statusCommand,
    sinkCommand,
    mcpCommand,
    ...extra,
    helpCommand,
  ]
}
