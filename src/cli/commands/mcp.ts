/** `edgefwd mcp [FILE] [--socket PATH] [--http ADDRESS:PORT]`: the agent-facing MCP server (src/mcp). */
import type pino from 'pino'
import { EdgefwdError } from '../../errors.js'
import { defineCommand } from '../command.js'
import { ExitCode } from '../exit-codes.js'

export const mcpCommand = defineCommand({
  name: ['mcp'],
  summary: 'Serve a running gateway\'s health, buffer, incidents and SLOs to an AI agent over MCP',
  description: [
    'A Model Context Protocol server for AI agents, talking to the gateway that `edgefwd run`',
    'runs with the same configuration FILE, through its agent control socket (mcp.socket,',
    'default agent.sock in the control state directory; --socket PATH overrides it).',
    '',
    'Serves on standard input and output (the MCP stdio transport: an agent on the gateway, or',
    'over SSH, starts this command), or with --http ADDRESS:PORT (or an mcp.http section) on',
    'Streamable HTTP at http://ADDRESS:PORT/mcp: loopback only, unless mcp.http.tls and',
    'mcp.http.tokenFile are set. Logs go to standard error.',
    '',
    'Tools: get_gateway_health, get_buffer_report, get_incident_context, get_slo_report; and,',
    'only when the gateway\'s configuration has an mcp.remediation section,',
    'list_remediation_actions and execute_remediation (a dry run first, then the call confirmed',
    'with its token). The gateway audits every call in mcp.audit.file. See docs/operations.md',
    '"Agents (MCP)".',
  ].join('\n'),
  options: {
    socket: { type: 'string', valueName: 'PATH', description: 'the gateway\'s agent socket (overrides mcp.socket)' },
    http: { type: 'string', valueName: 'ADDRESS:PORT', description: 'serve Streamable HTTP there instead of stdio (overrides mcp.http.listen)' },
    set: { type: 'string', multiple: true, valueName: 'KEY=VALUE', description: 'override one key, e.g. --set mcp.socket=/run/edgefwd/agent.sock' },
  },
  positionals: [{ name: 'FILE', description: 'the gateway\'s configuration file (YAML or JSON); default: only EDGEFWD_* and --set', optional: true }],
  async run ({ values, positionals: [file] }, { env, io }) {
    // The MCP SDK is loaded only by this command: `edgefwd run` never pays for it.
    const [{ loadConfig }, { agentSocketPath }, { createLogger }, { serveStdio, serveHttp }, { packageVersion }] = await Promise.all([
      import('../../config/index.js'), import('../../agent/index.js'), import('../../observe/log.js'), import('../../mcp/server.js'), import('../../version.js')
    ])
    const config = await loadConfig({ file, env, overrides: values.set ?? [] })
    const socket = values.socket ?? agentSocketPath(config)
    if (socket === undefined) {
      throw new EdgefwdError('EDGEFWD_ERR_USAGE', 'mcp: mcp.socket is off in this configuration, so the gateway has no agent socket to talk to',
        { hint: 'remove mcp.socket: off (and restart edgefwd run), or give --socket PATH' })
    }
    // Standard output is the MCP channel on stdio: logs go to standard error.
    const logger = createLogger({ level: config.log.level, destination: io.stderr as pino.DestinationStream })
    const options = { socket, version: packageVersion(), logger }
    const httpListen = values.http ?? config.mcp.http?.listen
    if (httpListen === undefined) {
      await serveStdio(options)
      return ExitCode.ok
    }
    const signals = io.signals
    if (signals === undefined) throw new EdgefwdError('EDGEFWD_ERR_USAGE', 'mcp --http needs process signals to stop (run it from the edgefwd executable)')
    const http = config.mcp.http
    const server = await serveHttp(options, {
      listen: httpListen,
      ...(http?.tls === undefined ? {} : { tls: { cert: http.tls.cert, key: http.tls.key } }),
      ...(http?.tokenFile === undefined ? {} : { tokenFile: http.tokenFile }),
    })
    io.stderr.write(`edgefwd mcp: Streamable HTTP on ${server.url} (gateway socket ${socket})\n`)
    let offs: Array<() => void> = []
    await new Promise<void>(resolve => { offs = [signals.on('SIGINT', resolve), signals.on('SIGTERM', resolve)] })
    for (const off of offs) off()
    await server.close()
    return ExitCode.ok
  },
})
