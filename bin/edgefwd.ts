#!/usr/bin/env node
/** The `edgefwd` executable of the npm package: the full CLI (commands.ts) on the real process. */
import { runProcess } from '../src/cli/process-main.js'
import { commands } from './commands.js'

await runProcess(process.argv.slice(2), commands)
