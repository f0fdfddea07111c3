/**
 * A free TCP port on 127.0.0.1, for servers that cannot listen on port 0 (modbus-serial's
 * ServerTCP) or whose port must be known before they start (the forwarder's listeners, written
 * into its configuration). Another process could take it in between; on loopback in a test or a
 * simulation run that window has not been seen to matter. UDP uses the same number.
 */
import { createServer } from 'node:net'

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => { resolve(typeof address === 'object' && address !== null ? address.port : 0) })
    })
  })
}
