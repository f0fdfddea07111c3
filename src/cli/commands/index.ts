/** Every CLI command, in the order `edgefwd --help` lists them. A new command is one file plus one line here. */
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
import { sinkCommand } from './sink.js'
import { runCommand } from './run.js'
import { simulateCommand } from './simulate.js'
import { statusCommand } from './status.js'

export const commands: readonly Command[] = [
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
  simulateCommand,
  helpCommand,
]
