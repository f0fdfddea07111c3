/**
 * The single executable's main script. scripts/build-sea.mjs bundles it with esbuild as CommonJS
 * (a single-executable main script cannot be an ES module on Node 20–24), so nothing reachable
 * from here may use top-level await.
 *
 * It runs the same CLI as the npm bin (bin/edgefwd.ts): the commands of bin/commands.ts.
 *
 * The simulation starts its forwarder as a second process. From npm that is a fork of
 * simulate/forwarder-process-main.js; here there is no such file, so the simulation forks the
 * binary itself with EDGEFWD_FORWARDER_COMMAND as the first argument, and this entry runs the
 * forwarder process for it. The name is not a command of the CLI and is not listed anywhere.
 */
import { commands } from '../../bin/commands.js'
import { runProcess } from '../../src/cli/process-main.js'

declare const EDGEFWD_FORWARDER_COMMAND: string

const args = process.argv.slice(2)
if (args[0] === EDGEFWD_FORWARDER_COMMAND) {
  // Imported on demand, as the CLI's commands are: a bundle evaluates static imports at start.
  void import('../../simulate/forwarder-process.js').then(m => { m.runForwarderProcess(args.slice(1)) })
} else {
  runProcess(args, commands).catch((err: unknown) => {
    process.stderr.write(`edgefwd: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exitCode = 1
  })
}
