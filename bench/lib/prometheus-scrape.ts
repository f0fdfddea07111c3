/**
 * Reading a forwarder's metrics endpoint as Prometheus would: the text exposition format, each
 * sample line `name{labels} value`. Only the values are kept; HELP/TYPE lines and timestamps are not
 * needed by any bench.
 */

/** One scrape: the value of each series, keyed by the series as written (`name{labels}`). */
export type Scrape = Map<string, number>

export async function scrapeMetrics (address: string): Promise<Scrape> {
  const response = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(5000) })
  if (!response.ok) throw new Error(`GET /metrics: HTTP ${response.status}`)
  const series: Scrape = new Map()
  for (const line of (await response.text()).split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?)\s+(\S+)/.exec(line)
    if (m !== null) series.set(m[1] as string, Number(m[2]))
  }
  return series
}

/** The sum of every series of one metric (all label values). */
export function metricTotal (s: Scrape, name: string): number {
  let sum = 0
  for (const [series, value] of s) if (series === name || series.startsWith(`${name}{`)) sum += value
  return sum
}
