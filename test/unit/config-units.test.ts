import t from 'tap'
import { formatDuration, formatSize, parseDuration, parseSize, type UnitParse } from '../../src/config/index.js'

function value (parsed: UnitParse): number | string {
  return parsed.ok ? parsed.value : `error: ${parsed.message}`
}

t.test('parseSize accepts bytes and every unit', async t => {
  const cases: Array<[unknown, number]> = [
    [0, 0],
    [1048576, 1048576],
    ['512', 512],
    ['512B', 512],
    ['64KiB', 65536],
    ['256MiB', 268435456],
    ['1GiB', 1073741824],
    ['1TiB', 1099511627776],
    ['10KB', 10_000],
    ['10MB', 10_000_000],
    ['1.5GB', 1_500_000_000],
    ['2TB', 2e12],
    ['1.1MB', 1_100_000],
    ['1.5KiB', 1536],
    [' 64 MiB ', 67108864],
  ]
  for (const [input, expected] of cases) t.equal(value(parseSize(input)), expected, JSON.stringify(input))
})

t.test('parseSize rejects with a precise message', async t => {
  t.equal(value(parseSize('12 parsecs')),
    'error: expected a size such as 64MiB or 1048576, got "12 parsecs" (unknown unit "parsecs"; use one of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)')
  t.equal(value(parseSize('lots')), 'error: expected a size such as 64MiB or 1048576, got "lots"')
  t.equal(value(parseSize('64mib')),
    'error: expected a size such as 64MiB or 1048576, got "64mib" (units are case-sensitive: did you mean "MiB"?)')
  t.equal(value(parseSize('0.1KiB')),
    'error: expected a size such as 64MiB or 1048576, got "0.1KiB" (not a whole number of bytes)')
  t.equal(value(parseSize(1.5)), 'error: expected a size such as 64MiB or 1048576, got 1.5 (not a whole number of bytes)')
  t.equal(value(parseSize(-1)), 'error: expected a size such as 64MiB or 1048576, got -1')
  t.equal(value(parseSize('-1MiB')), 'error: expected a size such as 64MiB or 1048576, got "-1MiB"')
  t.equal(value(parseSize('')), 'error: expected a size such as 64MiB or 1048576, got ""')
  t.equal(value(parseSize(true)), 'error: expected a size such as 64MiB or 1048576, got true')
  t.equal(value(parseSize(null)), 'error: expected a size such as 64MiB or 1048576, got null')
  t.equal(value(parseSize([1])), 'error: expected a size such as 64MiB or 1048576, got a list')
  t.equal(value(parseSize(Infinity)), 'error: expected a size such as 64MiB or 1048576, got Infinity')
  t.match(value(parseSize('9999999TiB')), /too large/)
  t.match(value(parseSize('toString')), /got "toString"/, 'prototype names are not units')
  t.match(value(parseSize('1constructor')), /unknown unit "constructor"/)
})

t.test('parseDuration accepts milliseconds and every unit', async t => {
  const cases: Array<[unknown, number]> = [
    [0, 0],
    [250, 250],
    ['250', 250],
    ['250ms', 250],
    ['5s', 5000],
    ['1.5s', 1500],
    ['10m', 600_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
  ]
  for (const [input, expected] of cases) t.equal(value(parseDuration(input)), expected, JSON.stringify(input))
})

t.test('parseDuration rejects with a precise message', async t => {
  t.equal(value(parseDuration('soon')), 'error: expected a duration such as 5s, 250ms or 1500 (milliseconds), got "soon"')
  t.equal(value(parseDuration('5 sec')),
    'error: expected a duration such as 5s, 250ms or 1500 (milliseconds), got "5 sec" (unknown unit "sec"; use one of ms, s, m, h, d)')
  t.equal(value(parseDuration('5S')),
    'error: expected a duration such as 5s, 250ms or 1500 (milliseconds), got "5S" (units are case-sensitive: did you mean "s"?)')
  t.equal(value(parseDuration('0.5ms')),
    'error: expected a duration such as 5s, 250ms or 1500 (milliseconds), got "0.5ms" (not a whole number of milliseconds)')
  t.equal(value(parseDuration(-5)), 'error: expected a duration such as 5s, 250ms or 1500 (milliseconds), got -5')
  t.equal(value(parseDuration({})), 'error: expected a duration such as 5s, 250ms or 1500 (milliseconds), got a mapping')
})

t.test('format picks the largest exact unit', async t => {
  t.equal(formatSize(65536), '64KiB')
  t.equal(formatSize(268435456), '256MiB')
  t.equal(formatSize(1000), '1000B')
  t.equal(formatSize(0), '0B')
  t.equal(formatDuration(1000), '1s')
  t.equal(formatDuration(1500), '1500ms')
  t.equal(formatDuration(604_800_000), '7d')
  t.equal(formatDuration(0), '0ms')
  for (const n of [1, 1023, 1024, 1536, 10 * 1024 ** 3]) t.equal(value(parseSize(formatSize(n))), n, `size ${n} round-trips`)
  for (const n of [1, 999, 60_000, 90_000, 3_600_000]) t.equal(value(parseDuration(formatDuration(n))), n, `duration ${n} round-trips`)
})
