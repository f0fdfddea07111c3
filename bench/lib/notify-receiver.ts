/**
 * The manager's end of NOTIFY_SOCKET for benchmarks: a python3 receiver bound to a unix datagram
 * socket (Node can open neither end of one), as test/integration/run-systemd.test.ts does. bench/
 * cannot import test/, hence this copy with one addition: each datagram carries the time it was
 * received, CLOCK_MONOTONIC in ns, the clock behind process.hrtime.bigint() on Linux, so a
 * benchmark measures to the datagram itself rather than to when the receiver's stdout reached it.
 *
 * The receiver closes every file descriptor passed to it (SCM_RIGHTS): systemd-notify's
 * BARRIER=1 waits until the manager has closed the pipe it sends, and would otherwise hang 5 s.
 * It exits when its stdin closes, so it cannot outlive the benchmark; close() kills it by PID.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const RECEIVER = `
import array, json, os, socket, sys, threading, time
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
print(json.dumps(['0', 'LISTENING']), flush=True)
while True:
    data, ancdata, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(64 * 4))
    at = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array('i')
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    print(json.dumps([str(at), data.decode('utf-8', 'replace')]), flush=True)
`

export interface NotifyDatagram {
  /** When the receiver got it: CLOCK_MONOTONIC ns, comparable with process.hrtime.bigint(). */
  atNs: bigint
  /** The assignments, e.g. "READY=1\nSTATUS=…". */
  text: string
}

export interface NotifyReceiver {
  /** The socket path, for NOTIFY_SOCKET. */
  socket: string
  /** Every datagram so far, in order of arrival. */
  datagrams: NotifyDatagram[]
  /** The first datagram at index ≥ from that matches; throws after `ms`. */
  waitFor: (match: (d: NotifyDatagram) => boolean, from: number, ms: number) => Promise<NotifyDatagram>
  close: () => Promise<void>
}

export async function startNotifyReceiver (dir: string): Promise<NotifyReceiver> {
  const socket = join(dir, 'notify.sock')
  const child = spawn('python3', ['-c', RECEIVER, socket], { stdio: ['pipe', 'pipe', 'pipe'] })
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.on('exit', killOnExit)
  const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }); child.once('error', () => { resolve() }) })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  let listening = false
  const datagrams: NotifyDatagram[] = []
  let buffered = ''
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString()
    const lines = buffered.split('\n')
    buffered = lines.pop() ?? ''
    for (const line of lines) {
      const [at, text] = JSON.parse(line) as [string, string]
      if (text === 'LISTENING' && at === '0') listening = true
      else datagrams.push({ atNs: BigInt(at), text })
    }
  })
  const until = Date.now() + 10_000
  while (!listening) {
    if (child.exitCode !== null || Date.now() > until) {
      child.kill('SIGKILL')
      throw new Error(`the python3 NOTIFY_SOCKET receiver did not start: ${stderr.trim()}`)
    }
    await sleep(5)
  }
  return {
    socket,
    datagrams,
    async waitFor (match, from, ms) {
      const deadline = Date.now() + ms
      for (;;) {
        const found = datagrams.slice(from).find(match)
        if (found !== undefined) return found
        if (Date.now() > deadline) throw new Error(`no matching notification within ${ms} ms (got ${JSON.stringify(datagrams.slice(from).map(d => d.text))})`)
        await sleep(1)
      }
    },
    async close () {
      child.stdin.end()
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 2000)
      await exited
      clearTimeout(timer)
      process.off('exit', killOnExit)
    },
  }
}
