/**
 * The footprint bench's output: each run's figures as `name value unit` lines on stdout (and for
 * the JSON line), and the summary against the targets. Figures are rounded here; NaN (a phase not
 * run) becomes null in the JSON line.
 */
import type { RunResult } from './footprint-run.js'
import { BUDGET_MIB, mb, TARGETS } from './footprint-settings.js'

export const envText = (env: Record<string, string>): string => Object.keys(env).length === 0 ? '(nothing added)' : Object.entries(env).map(([k, v]) => `${k}="${v}"`).join(' ')
const verdict = (ok: boolean): string => ok ? 'ok' : 'OVER TARGET'

/** A run's figures, by JSON name (before the `_unbudgeted` suffix), rounded; NaN → null in JSON. */
function figuresOf (r: RunResult): Array<[string, number, string]> {
  const r1 = (x: number | undefined): number => Number((x ?? NaN).toFixed(1))
  const r0 = (x: number | undefined): number => Math.round(x ?? NaN)
  return [
    ['rss_mb_peak', r1(mb(r.peak.rss)), 'MB'],
    ['anon_mb_peak', r1(mb(r.peak.anon)), 'MB'],
    ['rss_mb_idle', r1(mb(r.rssIdle?.rss ?? NaN)), 'MB'],
    ['anon_mb_idle', r1(mb(r.rssIdle?.anon ?? NaN)), 'MB'],
    ['rss_mb_soak_last_minute', r1(r.soak?.rssMbLastMinute), 'MB'],
    ['rss_mb_soak_growth_per_min', Number((r.soak?.rssMbGrowthPerMin ?? NaN).toFixed(3)), 'MB/min'],
    ['drain_eps', r0(r.drain?.eps), 'events/s'],
    ['drain_s', Number((r.drain?.seconds ?? NaN).toFixed(2)), 's'],
    ['drain_eps_from_spawn', r0(r.drain?.epsFromSpawn), 'events/s'],
    ['soak_sent', r0(r.soak?.sent), 'events'],
    ['soak_rate_eps', r0(r.soak?.rateEps), 'events/s'],
    ['soak_accepted', r0(r.soak?.accepted), 'events'],
    ['soak_delivered', r0(r.soak?.delivered), 'events'],
    ['soak_lost', r0(r.soak?.lost), 'events'],
    ['soak_acked_undelivered', r0(r.soak?.ackedUndelivered), 'events'],
    ['soak_duplicates', r0(r.soak?.duplicates), 'events'],
    ['soak_undecodable', r0(r.soak?.undecodable), 'messages'],
    ['soak_udp_kernel_drops', r0(r.soak?.udpKernelDrops), 'datagrams'],
    ['soak_overload_drops', r0(r.soak?.overloadDrops), 'frames'],
    ['soak_rejected', r0(r.soak?.rejected), 'frames'],
    ['soak_store_dropped', r0(r.soak?.storeDropped), 'events'],
    ['garbage_sent', r0(r.garbage?.sent), 'frames'],
    ['garbage_rejected', r0(r.garbage?.rejected), 'frames'],
    ['garbage_udp_kernel_drops', r0(r.garbage?.udpKernelDrops), 'datagrams'],
    ['garbage_unaccounted', r0(r.garbage?.unaccounted), 'frames'],
    ...(['drain', 'idle', 'soak', 'garbage'] as const).flatMap((p): Array<[string, number, string]> => [
      [`rss_mb_peak_${p}`, r1(mb(r.peaks[p].rss)), 'MB'],
      [`anon_mb_peak_${p}`, r1(mb(r.peaks[p].anon)), 'MB']
    ]),
    ['oom', r.oom ? 1 : 0, ''],
    ['budget_not_applied', r.budgetNotApplied === true ? 1 : 0, '']
  ]
}

/** Prints a target's figures (`name value unit`) and returns them for the JSON line. */
export function report (prefix: string, budgeted: RunResult, off: RunResult): Record<string, number | string> {
  const out: Record<string, number | string> = {}
  for (const [r, suffix] of [[budgeted, ''], [off, '_unbudgeted']] as const) {
    for (const [name, value, unit] of figuresOf(r)) {
      out[`${name}${suffix}`] = value
      console.log(`${prefix}${name}${suffix} ${value} ${unit}`.trimEnd())
    }
  }
  const ratio = Number(((budgeted.drain?.eps ?? NaN) / (off.drain?.eps ?? NaN)).toFixed(3))
  out.drain_ratio = ratio
  console.log(`${prefix}drain_ratio ${ratio}`)
  return out
}

export function summary (name: string, f: Record<string, number | string>, budgeted: RunResult, off: RunResult): string[] {
  const n = (k: string): number => {
    const v = f[k]
    return typeof v === 'number' ? v : NaN
  }
  const show = (k: string, unit = ''): string => Number.isNaN(n(k)) ? 'n/a' : `${n(k)}${unit}`
  const line = (what: string, k: string, target: string, ok: boolean, unit = ''): string =>
    `${what} ${show(k, unit)} (${verdict(ok)}, ${target}); off: ${show(`${k}_unbudgeted`, unit)}`
  const lines = [
    `${name}: ${envText(budgeted.budgetEnv)} at the budget (${BUDGET_MIB} MiB), neither with process.memory off`,
    '  ' + line('rss_mb_peak', 'rss_mb_peak', `≤ ${TARGETS.rssMbPeak}`, n('rss_mb_peak') <= TARGETS.rssMbPeak, ' MB') +
      ` — peaks drain/idle/soak/garbage ${['drain', 'idle', 'soak', 'garbage'].map(p => show(`rss_mb_peak_${p}`)).join('/')}`,
    '  ' + line('anon_mb_peak', 'anon_mb_peak', `≤ ${TARGETS.anonMbPeak}`, n('anon_mb_peak') <= TARGETS.anonMbPeak, ' MB'),
    '  ' + line('rss_mb_idle', 'rss_mb_idle', `≤ ${TARGETS.rssMbIdle}`, n('rss_mb_idle') <= TARGETS.rssMbIdle, ' MB'),
    '  ' + line('rss_mb_soak_growth_per_min', 'rss_mb_soak_growth_per_min', `≤ ${TARGETS.growthMbPerMin}`, n('rss_mb_soak_growth_per_min') <= TARGETS.growthMbPerMin, ' MB/min') +
      ` (last minute mean ${show('rss_mb_soak_last_minute')} MB)`,
    '  ' + line('soak_lost', 'soak_lost', '0', n('soak_lost') === 0) +
      ` — ${show('soak_delivered')} of ${show('soak_accepted')} accepted delivered (${show('soak_sent')} sent; UDP kernel drops ${show('soak_udp_kernel_drops')}, overload drops ${show('soak_overload_drops')}; TCP acked but undelivered ${show('soak_acked_undelivered')})` +
      (budgeted.soak !== undefined && !budgeted.soak.settled ? ' NOT SETTLED' : ''),
    '  ' + line('oom', 'oom', '0', n('oom') === 0),
    `  drain_ratio ${show('drain_ratio')} (${verdict(n('drain_ratio') >= TARGETS.drainRatio)}, ≥ ${TARGETS.drainRatio}): ${show('drain_eps')} against ${show('drain_eps_unbudgeted')} events/s`,
    `  garbage: ${show('garbage_rejected')} of ${show('garbage_sent')} rejected (UDP kernel drops ${show('garbage_udp_kernel_drops')}, unaccounted ${show('garbage_unaccounted')})`
  ]
  for (const r of [budgeted, off]) if (r.error !== undefined) lines.push(`  ${r.label}: FAILED: ${r.error}`)
  if (budgeted.budgetNotApplied === true) lines.push(`  ${budgeted.label}: the forwarder logged that the budget's V8 heap limit was NOT in force`)
  return lines
}
