#!/usr/bin/env node
/** The `edgefwd` executable of the npm package; process-main.ts has the process wiring. */
import { runProcess } from './process-main.js'

await runProcess(process.argv.slice(2))
