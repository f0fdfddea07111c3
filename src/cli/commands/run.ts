/** `edgefwd run --config FILE`: the forwarder, until SIGTERM or SIGINT. */
import type pino from 'pino'
import { ConfigError, EdgefwdError, formatConfigIssue, isEdgefwdError } from '../../errors.js'
import { defineCommand } from '../command.js'
import { ExitCode } from '../exit-codes.js'
import type { Gateway } from '../../gateway.js'

export const runCommand = defineCommand({
  name: ['run'],
  summary: 'Run the forwarder: ingest listeners → durable store → MQTT uplink with mutual TLS',
  description: [
    'Loads the configuration (FILE or --config FILE, EDGEFWD_* variables, --set), opens the store,',
    'checks the TLS material, starts delivering to uplink.url and listening as ingest.* says, and',
    'logs one line saying so. Logs are JSON lines on stdout.',
    '',
    'SIGHUP re-reads the TLS files (tls.*). SIGTERM or SIGINT stops gracefully: listeners first,',
    'then batches in flight get uplink.stopTimeout for their PUBACKs, the rest stay in the store;',
    'a second signal stops at once. Exit 0 after a stop, 78 on an invalid configuration, 1 when',
    'the start fails (store, TLS material).',
    '',
    'Metrics (Prometheus text) and /healthz, /readyz are served on observe.metrics.listen',
    '(127.0.0.1:9464 unless configured; see docs/operations.md). With control.publicKeys set, it',
    'takes signed configuration updates on <prefix>/<gateway>/config and answers on .../config/ack.',
    '',
    'process.memory (96MiB by default) is a memory budget: when the V8 heap limit in force is not',
    'its, run re-executes itself in place with NODE_OPTIONS carrying the budget\'s (Node >= 22.15),',
    'or warns with the options to start it with (Node 20). See docs/config.md "process".',
    '',
    'Under systemd (NOTIFY_SOCKET set, a Type=notify unit) it reports READY=1 once running,',
    'STOPPING=1 on the first stop signal and WATCHDOG=1 every WATCHDOG_USEC/2, through the',
    'systemd-notify program (the unit needs NotifyAccess=all; see docs/systemd.md).',
  ].join('\n'),
  options: {
    config: { type: 'string', short: 'c', valueName: 'FILE', description: 'the configuration file (YAML or JSON)' },
    set: { type: 'string', multiple: true, valueName: 'KEY=VALUE', description: 'override one key, e.g. --set log.level=debug' },
  },
  positionals: [{ name: 'FILE', description: 'the configuration file, instead of --config', optional: true }],
  async run ({ values, positionals: [positional] }, { env, io }) {
    if (values.config !== undefined && positional !== undefined) throw new EdgefwdError('EDGEFWD_ERR_USAGE', 'run: give the configuration file once, as FILE or --config FILE')
    const signals = io.signals
    if (signals === undefined) throw new EdgefwdError('EDGEFWD_ERR_USAGE', 'run needs process signals (run it from the edgefwd executable)')
    const [{ configBuilder }, { createLogger, childLogger }, { createSystemdNotifier }, { startGateway }, { memoryBudget }, { applyHeapBudget, currentProcess }] = await Promise.all([
      import('../../config/index.js'), import('../../observe/log.js'), import('../../observe/systemd-notify.js'), import('../../gateway.js'),
      import('../../config/memory-budget.js'), import('../heap-budget.js')
    ])
    let build
    let config
    try {
      build = await configBuilder({ file: values.config ?? positional, env, overrides: values.set ?? [], purpose: 'run' })
      config = build()
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      for (const issue of err.issues) io.stderr.write(`${formatConfigIssue(issue)}\n`)
      return ExitCode.configInvalid
    }
    // Before anything is opened: this may re-execute the process with the budget's heap limits.
    const budget = memoryBudget(config.process.memory)
    const heap = applyHeapBudget(budget, await currentProcess(env))
    const logger = createLogger({ level: config.log.level, redact: [...config.log.redact], destination: io.stdout as pino.DestinationStream })
    if (heap.kind === 'not-applied') {
      logger.warn({ heapLimitBytes: heap.heapLimitBytes, wantedBytes: heap.wantedBytes, nodeOptions: heap.nodeOptions },
        `process.memory ${Math.round((budget?.totalBytes ?? 0) / 1048576)} MiB: the V8 heap limit is not the budget's (${heap.why}); start edgefwd with NODE_OPTIONS="${heap.nodeOptions}" MALLOC_ARENA_MAX=2, as the systemd unit does`)
    } else if (budget !== undefined) {
      logger.info({ budget }, `memory budget ${Math.round(budget.totalBytes / 1048576)} MiB: V8 heap ${budget.v8.oldSpaceMiB} MiB old + ${3 * budget.v8.semiSpaceMiB} MiB young`)
    }
    const systemd = createSystemdNotifier({ env, logger: childLogger(logger, 'systemd') })
    let signalsSeen = 0
    let stop: () => void = () => {}
    const stopped = new Promise<void>(resolve => { stop = resolve })
    let gateway: Gateway | undefined
    let fatal: unknown
    const onStop = (signal: string) => () => {
      signalsSeen++
      logger.info({ signal }, signalsSeen === 1 ? 'stop requested' : 'second stop signal: stopping now')
      if (signalsSeen === 1) { systemd.stopping(`stopping on ${signal}`); stop() }
      else void gateway?.stopNow().then(() => { stop() })
    }
    const offs = [
      signals.on('SIGTERM', onStop('SIGTERM')),
      signals.on('SIGINT', onStop('SIGINT')),
      signals.on('SIGHUP', () => { gateway?.reloadTls() }),
    ]
    // Signal listeners do not keep Node running; this does, until stopped.
    const keepAlive = setInterval(() => {}, 1 << 30)
    try {
      const running = gateway = await startGateway(build, {
        logger, env,
        // Read only when a forwarder starts with ingest.stdin on (a remote configuration may turn it on).
        io: { get stdin () { return io.stdin } },
        onFatal: (err) => { fatal = err; stop() }
      })
      if (signalsSeen > 0) stop()
      else systemd.ready(`listening on ${running.listening.length === 0 ? 'nothing' : running.listening.join(', ')}; delivering to ${config.uplink.url?.join(', ') ?? '?'}`)
      await stopped
      await running.stop()
      if (fatal !== undefined) throw fatal
      return ExitCode.ok
    } catch (err) {
      await gateway?.stopNow().catch(() => {})
      if (err instanceof ConfigError) {
        for (const issue of err.issues) io.stderr.write(`${formatConfigIssue(issue)}\n`)
        return ExitCode.configInvalid
      }
      if (isEdgefwdError(err, 'EDGEFWD_ERR_CONFIG_INVALID')) {
        io.stderr.write(`edgefwd: ${err.message}\n${err.hint === undefined ? '' : `hint: ${err.hint}\n`}`)
        return ExitCode.configInvalid
      }
      throw err
    } finally {
      clearInterval(keepAlive)
      systemd.close()
      for (const off of offs) off()
    }
  },
})
