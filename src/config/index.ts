/** The configuration module's public surface. Callers get a frozen Config and pass it on. */
export { configSchema, DRAIN_ORDERS, DURABILITY_MODES, LOG_LEVELS, REMEDIATION_ACTIONS, type Config, type RemediationAction } from './schema.js'
export { configBuilder, loadConfig, parseConfigText, type ConfigBuilder, type LoadConfigOptions } from './load.js'
export { ENV_PREFIX, envNameFor, isConfigEnvName } from './env-source.js'
export { formatDuration, formatSize, parseDuration, parseSize, type UnitParse } from './units.js'
export { leafPaths, schemaTree, type SchemaNode } from './schema-tree.js'
export { sanitizeGatewayId } from './gateway-id.js'
