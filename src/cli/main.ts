#!/usr/bin/env node
/**
 * The `edgefwd` executable. The one place that touches the real process: argv, env, stdio,
 * signals and the exit code. Everything else is in program.ts so tests can run the CLI in-process.
 */
import { main } from './program.js'

// exitCode rather than process.exit(): pending stdout writes to a pipe are flushed first.
process.exitCode = await main(process.argv.slice(2), process.env, {
  stdout: process.stdout,
  stderr: process.stderr,
  signals: {
    on: (signal, handler) => {
      process.on(signal, handler)
      return () => { process.off(signal, handler) }
    }
  }
})
