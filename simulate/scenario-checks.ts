/**
 * What parsing and scaling a scenario share: how a problem is worded (the configuration's own
 * `<source>:<line>: <path>: <message>`, formatConfigIssue) and the overlap check of timeline spans.
 *
 * Why spans must not overlap: the proxy has one mode at a time, so two link phases at once would
 * make the result depend on the order they were applied; and a second action of the same kind
 * while the first still holds (a power cut while the forwarder is down) means nothing.
 */
import { formatConfigIssue, formatDuration } from '../src/index.js'

/** A field path: keys and list indices, as zod gives them. */
export type Path = ReadonlyArray<string | number>
export type Report = (path: Path, message: string) => void

/** `timeline[1].for`; `(top level)` for the document itself. */
export function formatPath (path: Path): string {
  let out = ''
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`
  return out === '' ? '(top level)' : out
}

/** One problem, one line: `f.yaml:12: timeline[1].for: ends at 45s, after the end of the run (40s)`. */
export function problemText (source: string, path: Path | undefined, message: string, line?: number): string {
  const at = path === undefined ? '' : formatPath(path)
  return formatConfigIssue(line === undefined ? { source, path: at, message } : { source, path: at, line, message })
}

/** `spans` sorted by start; the later of two overlapping spans is reported. */
export function checkOverlaps (spans: ReadonlyArray<{ kind: string, atMs: number, endMs: number, path: Path }>, what: string, report: Report): void {
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1] as typeof spans[number]
    const cur = spans[i] as typeof spans[number]
    if (cur.atMs < prev.endMs) {
      report(cur.path, `${cur.kind} ${formatDuration(cur.atMs)}-${formatDuration(cur.endMs)} overlaps ${formatPath(prev.path)} (${prev.kind} ${formatDuration(prev.atMs)}-${formatDuration(prev.endMs)}); ${what} must not overlap`)
    }
  }
}
