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

// The command has finished (a long-running one has stopped and closed what it owns). A socket
// a library has not let go of (a TLS connection on a dead link) must not keep the process up:
// stdio gets a bounded moment to flush, then the process ends. The timer does not itself keep
// the process alive.
setTimeout(() => { process.exit() }, 2000).unref()
