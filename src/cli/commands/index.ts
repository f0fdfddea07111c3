/** Every CLI command, in the order `edgefwd --help` lists them. A new command is one file plus one line here. */
import type { Command } from '../command.js'
import { configCheckCommand } from './config-check.js'
import { helpCommand } from './help.js'

export const commands: readonly Command[] = [
  configCheckCommand,
  helpCommand,
]
