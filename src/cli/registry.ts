/**
 * Finding a command from the words on the command line. Commands may be nested one or more
 * words deep (`config check`, later `certs issue`); a prefix shared by several commands and
 * not itself a command (`config`) is a group, whose help lists its commands.
 */
import type { Command } from './command.js'

export type Resolution =
  | { kind: 'command', command: Command, rest: string[] }
  /** The words name a group; `rest` is what followed them. */
  | { kind: 'group', words: string[], members: Command[], rest: string[] }
  /** `words` (possibly empty) matched; `unknown` is the word that did not. */
  | { kind: 'unknown', words: string[], unknown: string }
  | { kind: 'none' }

export function resolveCommand (commands: readonly Command[], args: readonly string[]): Resolution {
  const words: string[] = []
  for (const arg of args) {
    if (arg.startsWith('-')) break
    const candidate = [...words, arg]
    const exact = commands.find(command => sameWords(command.name, candidate))
    if (exact !== undefined) return { kind: 'command', command: exact, rest: args.slice(candidate.length) }
    if (membersOf(commands, candidate).length === 0) return { kind: 'unknown', words, unknown: arg }
    words.push(arg)
  }
  if (words.length === 0) return { kind: 'none' }
  return { kind: 'group', words, members: membersOf(commands, words), rest: args.slice(words.length) }
}

export function membersOf (commands: readonly Command[], prefix: readonly string[]): Command[] {
  return commands.filter(command => command.name.length > prefix.length &&
    prefix.every((word, index) => command.name[index] === word))
}

function sameWords (a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((word, index) => b[index] === word)
}
