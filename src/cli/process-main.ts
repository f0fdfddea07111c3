/**
 * The one place that touches the real process: argv, env, stdio, signals and the exit code.
 * Everything else is in program.ts so tests can run the CLI in-process. Called by bin/edgefwd.ts
 * (the npm bin) and by the single executable's entry (packaging/sea/entry.ts), with the commands
 * of bin/commands.ts.
 */
import type { Command } from './command.js'
import { main } from './program.js'

export async function runProcess (argv: readonly string[], commands: readonly Command[]): Promise<void> {
  // exitCode rather than process.exit(): pending stdout writes to a pipe are flushed first.
  process.exitCode = await main([...argv], process.env, {
    stdout: process.stdout,
    stderr: process.stderr,
    // A getter: process.stdin is made on first use, and only ingest.stdin uses it.
    get stdin () { return process.stdin },
    signals: {
      on: (signal, handler) => {
        process.on(signal, handler)
        return () => { process.off(signal, handler) }
      }
    }
  }, commands)

  // The command has finished (a long-running one has stopped and closed what it owns). A socket
  // a library has not let go of (a TLS connection on a dead link) must not keep the process up:
  // stdio gets a bounded moment to flush, then the process ends. The timer does not itself keep
  // the process alive.
  setTimeout(() => { process.exit() }, 2000).unref()
}
