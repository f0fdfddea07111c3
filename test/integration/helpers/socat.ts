/**
 * A pseudo-terminal pair from socat (`socat -d -d pty,raw,echo=0 pty,raw,echo=0`): bytes written
 * to one pty come out of the other, like a serial cable. The pty paths are parsed from socat's
 * stderr ("PTY is /dev/pts/N"). Killed in t.teardown; every wait bounded.
 */
import { spawn } from 'node:child_process'
import { constants, openSync, closeSync } from 'node:fs'
import type { Test } from 'tap'

export interface PtyPair { gateway: string, device: string, kill: () => Promise<void> }

export async function ptyPair (t: Test, timeoutMs = 5000): Promise<PtyPair> {
  const socat = spawn('socat', ['-d', '-d', 'pty,raw,echo=0', 'pty,raw,echo=0'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let exited = false
  const exit = new Promise<void>(resolve => socat.once('exit', () => { exited = true; resolve() }))
  const kill = async (): Promise<void> => {
    if (!exited) socat.kill('SIGTERM')
    const timer = setTimeout(() => { if (!exited) socat.kill('SIGKILL') }, 2000)
    await exit
    clearTimeout(timer)
  }
  t.teardown(kill)
  const paths = await new Promise<string[]>((resolve, reject) => {
    let stderr = ''
    const timer = setTimeout(() => reject(new Error(`socat gave no pty pair within ${timeoutMs} ms: ${stderr}`)), timeoutMs)
    socat.once('error', (err) => { clearTimeout(timer); reject(err) })
    socat.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      const found = [...stderr.matchAll(/PTY is (\S+)/g)].map(m => m[1] ?? '')
      if (found.length === 2 && stderr.includes('starting data transfer loop')) {
        clearTimeout(timer)
        resolve(found)
      }
    })
  })
  // Hold the gateway side open: when the last fd of a pty closes (stty does that), socat would
  // read a hangup on its master and exit. This fd never reads, so it takes no data.
  const keeper = openSync(paths[0] as string, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK)
  t.teardown(() => closeSync(keeper))
  return { gateway: paths[0] as string, device: paths[1] as string, kill }
}
