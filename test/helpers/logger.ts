import { createLogger } from '../../src/observe/log.js'
import type { Logger } from '../../src/observe/log.js'
import { logLines } from './log-lines.js'
import type { LogRecord } from './log-lines.js'

export function silentLogger (): Logger {
  return createLogger({ level: 'silent' })
}

/** A logger whose lines are parsed and kept, so tests assert on records. */
export function captureLogger (level = 'debug'): { logger: Logger, records: () => LogRecord[] } {
  const { stream, records } = logLines()
  return { logger: createLogger({ level, destination: stream }), records: () => records }
}
