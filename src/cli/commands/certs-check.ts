/**
 * `edgefwd certs check [FILE] [--url URL] [--watch]`: is the configured TLS material usable, and
 * does the broker accept it? With --watch it keeps the material loaded as `run` does, re-reading
 * it when the files change or on SIGHUP, and logs each reload (or rejected set) until stopped.
 */
import type pino from 'pino'
import { EdgefwdError } from '../../errors.js'
import type { TlsMaterial } from '../../pki/material.js'
import type { TlsMaterialSource } from '../../pki/reloader.js'
import { defineCommand, type TextSink } from '../command.js'
import { ExitCode } from '../exit-codes.js'

const NAME = ['certs', 'check'] as const

export const certsCheckCommand = defineCommand({
  name: NAME,
  summary: 'Check the configured TLS material (tls.*) and, with --url, that the broker accepts it',
  description: [
    'Loads the configuration (FILE, EDGEFWD_* variables, --set) and the files named by tls.ca,',
    'tls.cert and tls.key, and checks them as "run" does before connecting: readable, key mode',
    '0600, key matches certificate, dates, chain to the CA, clientAuth. Prints what is in use and',
    '"ok", or the problem and exits 1.',
    '',
    'With --url mqtts://HOST:PORT it then connects once (client id = gateway.id) and reports',
    'whether the broker accepted the certificate, or why not.',
    '',
    'With --watch it keeps running: a change to the files, or SIGHUP, re-reads and checks them;',
    'a valid new set replaces the old one, an invalid one is logged and the old one stays. One',
    'JSON log line per event on stdout; SIGINT or SIGTERM ends it (exit 0).',
  ].join('\n'),
  options: {
    set: { type: 'string', multiple: true, valueName: 'KEY=VALUE', description: 'override one key, e.g. --set tls.cert=gw.crt' },
    url: { type: 'string', valueName: 'URL', description: 'also connect to this broker, e.g. mqtts://broker.example:8883' },
    mqtt: { type: 'string', valueName: 'VERSION', description: 'MQTT version for --url: 5 (default) or 3.1.1' },
    watch: { type: 'boolean', description: 'keep running and re-check on file changes and SIGHUP' },
  },
  positionals: [{ name: 'FILE', description: 'the configuration file (YAML or JSON); default: only EDGEFWD_* and --set', optional: true }],
  async run ({ values, positionals: [file] }, { env, io }) {
    // Loaded here, not at the top: every command's imports would otherwise slow every CLI start.
    const [{ loadConfig }, { createLogger }, { daysLeft, loadTlsMaterial }, { TlsMaterialSource, tlsSourceOptions }, { parseBrokerUrl, probeBroker }] = await Promise.all([
      import('../../config/index.js'), import('../../observe/log.js'), import('../../pki/material.js'), import('../../pki/reloader.js'), import('../../uplink/connect.js')
    ])
    const config = await loadConfig({ file, env, overrides: values.set ?? [] })
    const options = tlsSourceOptions(config.tls)
    if (values.watch === true) {
      if (values.url !== undefined) throw new EdgefwdError('EDGEFWD_ERR_USAGE', 'certs check: --watch and --url cannot be combined (see edgefwd certs check --help)')
      const signals = io.signals
      if (signals === undefined) throw new EdgefwdError('EDGEFWD_ERR_USAGE', 'certs check --watch needs process signals (run it from the edgefwd executable)')
      const logger = createLogger({ level: config.log.level, destination: io.stdout as pino.DestinationStream })
      // Listening before the first load: a SIGHUP that comes early must not end the process
      // (the default action) but re-read once the source is open.
      let source: TlsMaterialSource | undefined
      let hupWhileOpening = false
      let keepAlive: NodeJS.Timeout | undefined
      let stop: () => void = () => {}
      const stopped = new Promise<void>(resolve => { stop = resolve })
      const offs = [
        signals.on('SIGHUP', () => { if (source === undefined) hupWhileOpening = true; else void source.reload('SIGHUP') }),
        signals.on('SIGINT', () => { stop() }),
        signals.on('SIGTERM', () => { stop() }),
      ]
      try {
        source = await TlsMaterialSource.open(options, { logger, env })
        if (hupWhileOpening) void source.reload('SIGHUP')
        // Signal listeners do not keep Node running, and with tls.watch false nothing else does.
        keepAlive = setInterval(() => {}, 1 << 30)
        await stopped
      } finally {
        clearInterval(keepAlive)
        for (const off of offs) off()
        await source?.close()
      }
      return ExitCode.ok
    }

    const material = await loadTlsMaterial(options, { env })
    printSummary(io.stdout, material, daysLeft(material))
    if (values.url !== undefined) {
      const protocolVersion = parseMqttVersion(values.mqtt)
      await probeBroker(parseBrokerUrl(values.url), material, { clientId: config.gateway.id, protocolVersion, files: material.info.files })
      io.stdout.write(`broker:       ${values.url} accepted this certificate (MQTT ${protocolVersion === 4 ? '3.1.1' : '5'})\n`)
    }
    io.stdout.write('ok\n')
    return ExitCode.ok
  },
})

function parseMqttVersion (value: string | undefined): 4 | 5 {
  if (value === undefined || value === '5') return 5
  if (value === '3.1.1' || value === '4') return 4
  throw new EdgefwdError('EDGEFWD_ERR_USAGE', `certs check: --mqtt must be 5 or 3.1.1, got "${value}"`)
}

function printSummary (out: TextSink, m: TlsMaterial, days: number): void {
  const i = m.info
  const lines = [
    `certificate:  ${i.files.cert}`,
    `  subject:    ${i.subject}`,
    `  issuer:     ${i.issuer}`,
    `  valid:      ${i.notBefore.toISOString()} to ${i.notAfter.toISOString()} (${days} days left)`,
    `  key:        ${i.files.key} (${i.keyDetail}, matches)`,
    `ca:           ${i.files.ca}`,
    ...i.warnings.map(w => `warning:      ${w}`),
  ]
  out.write(`${lines.join('\n')}\n`)
}
