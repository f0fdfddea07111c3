/** The transport conformance suite (test/integration/helpers/conformance.ts) over every transport. */
import t from 'tap'
import { transportConformance } from './helpers/conformance.js'
import { KINDS } from './helpers/transport-rigs.js'

for (const kind of KINDS) transportConformance(t, kind)
