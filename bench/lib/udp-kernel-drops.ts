/**
 * UDP datagrams the kernel dropped at a socket (its receive buffer was full): the listener never
 * saw them, so no forwarder counter can. Linux only; IPv4 loopback only, as the benches bind.
 */
import { readFileSync } from 'node:fs'

/**
 * The kernel's drop count of the UDP socket bound to 127.0.0.1:port (/proc/net/udp, last column);
 * undefined when no such socket is listed.
 */
export function kernelUdpDrops (port: number): number | undefined {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`
  const line = readFileSync('/proc/net/udp', 'utf8').split('\n').find(l => l.trim().split(/\s+/)[1] === local)
  const drops = line?.trim().split(/\s+/).at(-1)
  return drops === undefined ? undefined : Number(drops)
}
