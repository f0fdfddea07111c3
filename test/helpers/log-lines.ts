import type pino from 'pino'

/** One parsed log line. */
export interface LogRecord {
  level: number
  time: number
  msg?: string
  module?: string
  [key: string]: unknown
}

export interface LogLines {
  /** Give this to createLogger({ destination }). */
  stream: pino.DestinationStream
  /** Every line written so far, parsed. */
  records: LogRecord[]
}

/** An in-memory destination that parses pino's JSON lines, so tests assert on records, not text. */
export function logLines (): LogLines {
  const records: LogRecord[] = []
  let pending = ''
  const stream: pino.DestinationStream = {
    write (chunk: string): void {
      pending += chunk
      let newline = pending.indexOf('\n')
      while (newline >= 0) {
        const line = pending.slice(0, newline)
        pending = pending.slice(newline + 1)
        if (line !== '') records.push(JSON.parse(line) as LogRecord)
        newline = pending.indexOf('\n')
      }
    }
  }
  return { stream, records }
}
