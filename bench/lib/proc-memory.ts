/**
 * A process's memory as the kernel counts it, from /proc/<pid>/status (Linux; MB in the benches is
 * 2^20 bytes). VmRSS is what the benches call RSS; RssAnon is its part that no file backs (heaps,
 * stacks, malloc arenas: what a memory budget governs); RssFile the mapped executable and
 * libraries, which is why a binary's page-cache state shows in RSS (see bench/sea-bench.ts).
 */
import { readFileSync } from 'node:fs'

export interface ProcessMemory { rss: number, anon: number, file: number }

/** VmRSS and RssAnon, the pair the footprint figures are made of. */
export type ResidentMemory = Pick<ProcessMemory, 'rss' | 'anon'>

/** VmRSS / RssAnon / RssFile of a process, in bytes; undefined once it has gone. */
export function processMemory (pid: number | 'self'): ProcessMemory | undefined {
  let status: string
  try { status = readFileSync(`/proc/${pid}/status`, 'utf8') } catch { return undefined }
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') }
}

/**
 * A process's VmRSS and RssAnon, sampled on a timer, each sample tagged with the phase it fell in.
 * A phase change takes one sample at once, so even a short phase has one.
 */
export class RssSampler {
  readonly samples: Array<{ phase: string, t: number } & ResidentMemory> = []
  private timer: NodeJS.Timeout | undefined
  private current = ''

  constructor (private readonly pid: number) {}

  phase (name: string, intervalMs: number): void {
    this.current = name
    this.stop()
    this.sample()
    this.timer = setInterval(() => { this.sample() }, intervalMs)
  }

  sample (): ProcessMemory | undefined {
    const m = processMemory(this.pid)
    if (m !== undefined) this.samples.push({ phase: this.current, t: Date.now(), rss: m.rss, anon: m.anon })
    return m
  }

  stop (): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }

  peak (phase: string): ResidentMemory {
    const of = this.samples.filter(s => s.phase === phase)
    // No sample (the phase never ran): NaN, which a JSON line shows as null.
    return of.length === 0 ? { rss: NaN, anon: NaN } : { rss: Math.max(...of.map(s => s.rss)), anon: Math.max(...of.map(s => s.anon)) }
  }
}
