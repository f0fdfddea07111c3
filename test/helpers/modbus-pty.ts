/**
 * A pty pair at fixed paths: `socat -d -d pty,raw,echo=0,link=DIR/gateway pty,raw,echo=0,link=DIR/device`.
 * Unlike test/integration/helpers/socat.ts the paths survive the pair: kill() it and start
 * another on the same directory, and the gateway finds "the same serial port" again, like a USB
 * adapter unplugged and plugged back. socat removes its links when it exits. Killed by PID in
 * t.teardown; every wait bounded.
 */
import { spawn } from 'node:child_process'
import { closeSync, constants, openSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'

export interface LinkedPty { gateway: string, device: string, kill: () => Promise<void> }

export async function linkedPty (t: Test, dir: string, timeoutMs = 5000): Promise<LinkedPty> {
  const gateway = join(dir, 'gateway')
  const device = join(dir, 'device')
  const socat = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${gateway}`, `pty,raw,echo=0,link=${device}`], { stdio: ['ignore', 'ignore', 'pipe'] })
  let exited = false
  const exit = new Promise<void>(resolve => socat.once('exit', () => { exited = true; resolve() }))
  let keeper: number | undefined
  const kill = async (): Promise<void> => {
    if (keeper !== undefined) { closeSync(keeper); keeper = undefined }
    if (!exited && socat.pid !== undefined) process.kill(socat.pid, 'SIGTERM')
    const timer = setTimeout(() => { if (!exited && socat.pid !== undefined) process.kill(socat.pid, 'SIGKILL') }, 2000)
    await exit
    clearTimeout(timer)
  }
  t.teardown(kill)
  await new Promise<void>((resolve, reject) => {
    let stderr = ''
    const timer = setTimeout(() => { reject(new Error(`socat gave no pty pair within ${timeoutMs} ms: ${stderr}`)) }, timeoutMs)
    socat.once('error', (err) => { clearTimeout(timer); reject(err) })
    socat.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      if (stderr.includes('starting data transfer loop')) { clearTimeout(timer); resolve() }
    })
  })
  // As in socat.ts: hold the gateway side open, so that stty closing it never hangs socat up.
  keeper = openSync(gateway, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK)
  return { gateway, device, kill }
}
