/**
 * Simulation scenarios: one YAML (or JSON) file describes one `edgefwd simulate` run. Devices send
 * events to the forwarder's real ingest listeners, the forwarder's store is deliberately small so
 * eviction happens, a chaos proxy between the forwarder and the broker applies a timeline of link
 * phases, and actions restart the broker or SIGKILL the forwarder (a power cut).
 *
 * This module finds and reads scenario files (by name in simulate/scenarios/, or built into the
 * single executable) and is the scenario API the rest of simulate/ imports; it starts nothing.
 * The parts: scenario-model.ts (the Scenario, ScenarioError, scaling), scenario-parse.ts (text to
 * a checked Scenario, and the file shape), scenario-schema.ts (the zod schema), scenario-checks.ts
 * (what parsing and scaling share).
 */
import { existsSync, readdirSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { extname, relative, resolve, isAbsolute } from 'node:path'
import { fileURLToPath } from 'node:url'
import { problemText } from './scenario-checks.js'
import { ScenarioError, type Scenario } from './scenario-model.js'
import { parseScenario } from './scenario-parse.js'

export {
  ScenarioError, groupRatePerSecond, isSourceGroup, scaleScenario, type DeviceGroup, type FramedDeviceGroup, type MqttDeviceGroup, type ModbusDeviceGroup, type SourceDeviceGroup,
  type LinkPhase, type LinkPhaseKind, type PriorityName, type Scenario, type ScenarioAction
} from './scenario-model.js'
export { parseScenario } from './scenario-parse.js'

/**
 * The built-in scenarios' text by name, put into the single-executable bundle by
 * scripts/build-sea.mjs (esbuild `define`), where there is no source tree to read them from.
 * Undeclared everywhere else.
 */
declare const EDGEFWD_SCENARIOS: Readonly<Record<string, string>> | undefined
const EMBEDDED: Readonly<Record<string, string>> | undefined = typeof EDGEFWD_SCENARIOS === 'object' ? EDGEFWD_SCENARIOS : undefined

/**
 * simulate/scenarios in the source tree. Compiled code runs from dist/simulate/, where the YAML
 * files are not copied, so when there is no `scenarios` directory next to this module the one at
 * ../../simulate/scenarios (the repository's, seen from dist/simulate/) is used.
 */
export const SCENARIO_DIR: string = EMBEDDED === undefined ? findScenarioDir() : '(built in)'

function findScenarioDir (): string {
  const beside = fileURLToPath(new URL('./scenarios/', import.meta.url))
  const fromDist = fileURLToPath(new URL('../../simulate/scenarios/', import.meta.url))
  const dir = existsSync(beside) || !existsSync(fromDist) ? beside : fromDist
  return dir.replace(/[\\/]$/, '')
}

const EXTENSIONS = ['.yaml', '.yml', '.json']

export function scenarioNames (): string[] {
  if (EMBEDDED !== undefined) return Object.keys(EMBEDDED).sort()
  const names = new Set<string>()
  for (const file of readdirSync(SCENARIO_DIR)) {
    const ext = extname(file)
    if (EXTENSIONS.includes(ext)) names.add(file.slice(0, -ext.length))
  }
  return [...names].sort()
}

/** A bare name is SCENARIO_DIR/<name>.yaml|.yml|.json; a path (has a '/' or an extension) is read as is. */
export async function loadScenario (nameOrFile: string): Promise<Scenario> {
  const isPath = /[\\/]/.test(nameOrFile) || EXTENSIONS.includes(extname(nameOrFile))
  const embedded = !isPath && EMBEDDED !== undefined && Object.hasOwn(EMBEDDED, nameOrFile) ? EMBEDDED[nameOrFile] : undefined
  if (embedded !== undefined) return parseScenario(embedded, `${nameOrFile} (built in)`)
  let file: string | undefined
  if (isPath) {
    file = resolve(nameOrFile)
  } else {
    file = EMBEDDED === undefined ? EXTENSIONS.map(ext => resolve(SCENARIO_DIR, nameOrFile + ext)).find(f => existsSync(f)) : undefined
    if (file === undefined) {
      throw new ScenarioError(nameOrFile, [problemText(nameOrFile, undefined, `no such scenario; the scenarios are ${scenarioNames().join(', ')} (or give a file path)`)])
    }
  }
  const source = displayPath(file)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err)
    throw new ScenarioError(source, [problemText(source, undefined, `cannot read the file (${code})`)], { cause: err })
  }
  return parseScenario(text, source)
}

function displayPath (file: string): string {
  const rel = relative(process.cwd(), file)
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file
}
