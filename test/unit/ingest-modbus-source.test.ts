/**
 * ModbusSource as a Transport (src/ingest/sources/modbus/modbus-source.ts, index.ts): modbus-serial
 * is loaded only by start(), the addresses it reports, a start that cannot load the library, a
 * serial port that does not exist (start() still resolves; `connect` counted; stop() prompt).
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { modbusConnections } from '../../src/config/source-schema.js'
import { isEdgefwdError } from '../../src/errors.js'
import { IngestPipeline } from '../../src/ingest/pipeline.js'
import { createModbusSources, ModbusSource } from '../../src/ingest/sources/modbus/index.js'
import type { TransportContext } from '../../src/ingest/transports/transport.js'
import { captureLogger } from '../helpers/logger.js'
import { waitFor } from '../helpers/wait.js'
import { FakeSink } from '../integration/helpers/sinks.js'
import { ingestTestOptions } from '../helpers/ingest-options.js'

const OPTIONS = ingestTestOptions()

function context (): { ctx: TransportContext, logs: ReturnType<typeof captureLogger>['records'] } {
  const { logger, records } = captureLogger('debug')
  return { ctx: { pipeline: new IngestPipeline(new FakeSink(), OPTIONS, logger), logger, connectionEvents: 100, ackTimeoutMs: 1000, stopTimeoutMs: 2000 }, logs: records }
}

const device = { id: 'd', registers: [{ name: 'v', address: 0 }] }

t.test('modbus-serial is not loaded by importing the module, only by start()', async t => {
  const index = fileURLToPath(new URL('../../src/ingest/sources/modbus/index.ts', import.meta.url))
  const client = fileURLToPath(new URL('../../src/ingest/sources/modbus/client.ts', import.meta.url))
  const script = `
    import { createRequire } from 'node:module'
    const loaded = () => Object.keys(createRequire(import.meta.url).cache).filter(k => k.includes('/node_modules/modbus-serial/')).length
    const m = await import(${JSON.stringify(index)})
    const before = loaded()
    await (await import(${JSON.stringify(client)})).loadModbusSerial()
    console.log(JSON.stringify({ exported: typeof m.createModbusSources, before, after: loaded() }))`
  // The TypeScript loader tap runs this file with.
  const loader = process.execArgv.filter(a => a.includes('@tapjs/typescript'))
  t.ok(loader.length > 0, 'found the loader')
  const child = spawnSync(process.execPath, [...loader, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })
  t.equal(child.status, 0, child.stderr)
  const out = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as { exported: string, before: number, after: number }
  t.equal(out.exported, 'function')
  t.equal(out.before, 0, 'nothing of modbus-serial after importing the source module')
  t.ok(out.after > 0, 'loaded by loadModbusSerial()')
})

t.test('one Transport named modbus per connection, with its address', async t => {
  const { ctx } = context()
  const connections = modbusConnections.parse([
    { tcp: { host: '10.0.0.5' }, devices: [device] },
    { tcp: { host: 'fd00::5', port: 1502 }, devices: [{ ...device, id: 'e' }] },
    { rtu: { path: '/dev/ttyUSB0' }, devices: [{ ...device, id: 'f' }] }
  ])
  const sources = createModbusSources(connections, ctx)
  t.same(sources.map(s => s.name), ['modbus', 'modbus', 'modbus'])
  t.same(sources.map(s => (s as ModbusSource).address), ['modbus tcp 10.0.0.5:502', 'modbus tcp [fd00::5]:1502', 'modbus rtu /dev/ttyUSB0'])
  t.same(createModbusSources(modbusConnections.parse([]), ctx), [])
})

t.test('start() rejects with EDGEFWD_ERR_INGEST_LISTEN when modbus-serial cannot be loaded; twice is an error', async t => {
  const { ctx } = context()
  const [config] = modbusConnections.parse([{ tcp: { host: '127.0.0.1' }, devices: [device] }])
  if (config === undefined) throw new Error('no config')
  const source = new ModbusSource(config, ctx, { load: async () => { throw new Error('Cannot find package modbus-serial') } })
  const err = await source.start().then(() => undefined, (e: unknown) => e)
  t.ok(isEdgefwdError(err, 'EDGEFWD_ERR_INGEST_LISTEN'))
  t.match((err as Error).message, /modbus tcp 127\.0\.0\.1:502.*modbus-serial/)
  await t.rejects(source.start(), /already started/)
  await source.stop()
})

t.test('a serial port that does not exist: start() resolves, polls count connect, stop() is prompt', async t => {
  const { ctx, logs } = context()
  const [config] = modbusConnections.parse([{ rtu: { path: '/nonexistent/ttyMODBUS' }, devices: [{ ...device, unitId: 0, interval: '100ms' }] }])
  if (config === undefined) throw new Error('no config')
  const source = new ModbusSource(config, ctx, { configureLine: async () => {} })
  t.teardown(async () => { await source.stop() })
  t.same(await source.start(), { address: 'modbus rtu /nonexistent/ttyMODBUS' })
  await waitFor('a connect failure', () => (ctx.pipeline.counters().transports.modbus?.failures.connect ?? 0) >= 1, 5000)
  const started = Date.now()
  await source.stop()
  t.ok(Date.now() - started < 500, 'stop() does not wait for the reconnect timer')
  t.match(logs().filter(l => l.msg === 'modbus connection failed'), [{ level: 40, reason: /ENOENT/, connection: 'rtu /nonexistent/ttyMODBUS' }])
  t.match(logs().filter(l => /broadcast/.test(l.msg ?? '')), [{ device: 'd', unitId: 0 }], 'unit id 0 on RTU is warned about')
  t.equal(source.devices()[0]?.health, 'connect')
})
