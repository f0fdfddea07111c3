/**
 * `edgefwd run --config FILE` (the built CLI) as a child process for tests: its JSON log lines
 * parsed as they come, its stderr kept, and how it exited.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { distRoot } from '../../helpers/built.js'

export interface RunningForwarder {
  child: ChildProcess
  lines: Array<Record<string, unknown>>
  exited: Promise<number | null>
  stderr: () => string
}

export function startRun (config: string, stdin: 'ignore' | 'pipe' = 'ignore'): RunningForwarder {
  const child = spawn(process.execPath, [join(distRoot, 'bin/edgefwd.js'), 'run', '--config', config], { stdio: [stdin, 'pipe', 'pipe'] })
  const lines: Array<Record<string, unknown>> = []
  let buffered = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString()
    const parts = buffered.split('\n')
    buffered = parts.pop() ?? ''
    for (const line of parts) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
  return { child, lines, exited, stderr: () => stderr }
}
