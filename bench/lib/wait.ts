import { createServer, type AddressInfo } from 'node:net'

/**
 * Bounded waits for tests and benches: every wait names what it waits for and fails after `ms` with that
 * name, so a hang reads as "timed out waiting for every event deleted", not as a tap timeout.
 */
export async function waitFor (what: string, cond: () => boolean | Promise<boolean>, ms = 30_000, pollMs = 20): Promise<void> {
  const until = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, pollMs))
  }
}

/** A port nobody listens on right now (the OS picks it; the caller binds it a moment later). */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { resolve() })
  })
  const { port } = server.address() as AddressInfo
  await new Promise<void>(resolve => server.close(() => { resolve() }))
  return port
}
