/**
 * Bounded waits for tests: every wait names what it waits for and fails after `ms` with that
 * name, so a hang reads as "timed out waiting for every event deleted", not as a tap timeout.
 */
export async function waitFor (what: string, cond: () => boolean | Promise<boolean>, ms = 10_000, pollMs = 20): Promise<void> {
  const until = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, pollMs))
  }
}
