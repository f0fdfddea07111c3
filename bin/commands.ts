/**
 * The edgefwd CLI's commands: src's (src/cli/commands/) and those kept outside src/, which use
 * src/ only through its public API: `simulate` (simulate/command.ts). The npm bin (edgefwd.ts)
 * and the single executable's entry (packaging/sea/entry.ts) both run this list. Only the
 * commands' descriptions are loaded here; each loads what it runs when it runs.
 */
import type { Command } from '../src/cli/command.js'
import { defineCommand } from '../src/cli/command.js'
import { withCommands } from '../src/cli/commands/index.js'
import { simulateCommand } from '../simulate/command.js'

export const commands: readonly Command[] = withCommands([defineCommand(simulateCommand)])
