/** `edgefwd help [COMMAND...]`: the same text as `--help`, for people who type it this way. */
import { usageError } from '../arguments.js'
import { defineCommand } from '../command.js'
import { commandHelp, groupHelp, programHelp } from '../help-text.js'
import { resolveCommand } from '../registry.js'
import { packageVersion } from '../../version.js'

export const helpCommand = defineCommand({
  name: ['help'],
  summary: 'Show help for edgefwd or for one of its commands',
  description: 'Examples: "edgefwd help", "edgefwd help config check".',
  options: {},
  positionals: [{ name: 'COMMAND', description: 'the command to describe, e.g. "config check"', optional: true, variadic: true }],
  async run ({ positionals }, { io, commands }) {
    const found = resolveCommand(commands, positionals)
    switch (found.kind) {
      case 'none':
        io.stdout.write(programHelp(commands, packageVersion()))
        return 0
      case 'command':
        if (found.rest.length > 0) throw usageError(`unknown command "${positionals.join(' ')}"`)
        io.stdout.write(commandHelp(found.command))
        return 0
      case 'group':
        if (found.rest.length > 0) throw usageError(`unknown command "${positionals.join(' ')}"`)
        io.stdout.write(groupHelp(found.words, found.members))
        return 0
      case 'unknown':
        throw usageError(`unknown command "${[...found.words, found.unknown].join(' ')}"`)
    }
  },
})
