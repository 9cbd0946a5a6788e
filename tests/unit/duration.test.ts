import { afterAll, describe, expect, it } from 'vitest';
import { formatDuration, parseDuration, parseTimeOption } from '../../src/access/duration.js';
import { RefusedError } from '../../src/errors.js';

const refused = (fn: () => unknown): RefusedError => {
  try {
    fn();
  } catch (e) {
    if (e instanceof RefusedError) return e;
    throw e;
  }
  throw new Error('not refused');
};

describe('durations as operators type them', () => {
  it.each([
    ['90s', 90],
    ['30m', 1800],
    ['2h', 7200],
    ['1d', 86_400],
    ['1h30m', 5400],
    [' 1H30M ', 5400],
    ['1d1h1m1s', 90_061],
    ['366d', 366 * 86_400],
  ])('%s is %d seconds', (text, seconds) => {
    expect(parseDuration(text, '--for')).toBe(seconds);
  });

  it('refuses what is not a duration, saying how to write one', () => {
    for (const bad of ['', '2', 'h', '2x', '1.5h', '-1h', 'x2h', '2hx', '2h 30m', '1e1h']) {
      const e = refused(() => parseDuration(bad, '--for'));
      expect(e.message, bad).toBe(`--for "${bad}" is not a duration`);
      expect(e.hint).toBe('Use e.g. 90s, 30m, 2h, 1d or 1h30m');
    }
  });

  it('refuses zero and more than a year', () => {
    expect(refused(() => parseDuration('0m', '--for')).message).toBe('--for must be longer than zero');
    expect(refused(() => parseDuration('0h0s', '--max-duration')).message).toBe('--max-duration must be longer than zero');
    expect(refused(() => parseDuration('367d', '--for')).message).toBe('--for "367d" is longer than a year');
    expect(refused(() => parseDuration('366d1s', '--for')).message).toBe('--for "366d1s" is longer than a year');
  });
});

describe('durations for people', () => {
  it.each([
    [0, '0s'],
    [-5, '0s'],
    [59.4, '59s'],
    [59.6, '1m'],
    [60, '1m'],
    [7500, '2h 5m'],
    [3600, '1h'],
    [86_400, '1d'],
    [86_400 + 4 * 3600 + 59 * 60, '1d 4h'],
    [2 * 86_400 + 30 * 60, '2d 30m'],
    [86_400 + 30, '1d'],
  ])('%d seconds is %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});

describe('--at and --starts', () => {
  // Local time must differ from UTC, or a time read in the wrong zone would pass (this machine runs in UTC).
  // A worker thread cannot change the zone (Stryker's runner uses threads): there the local cases are skipped.
  const tz = process.env.TZ;
  process.env.TZ = 'America/St_Johns'; // UTC−03:30 in November
  const away = new Date(Date.UTC(2026, 10, 25)).getTimezoneOffset() === 210;
  afterAll(() => {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  });

  it('reads UTC and offsets exactly, with fractions of a second', () => {
    expect(parseTimeOption('2026-11-25T14:30:00Z', '--at').toISOString()).toBe('2026-11-25T14:30:00.000Z');
    expect(parseTimeOption(' 2026-11-25 14:30Z ', '--at').toISOString()).toBe('2026-11-25T14:30:00.000Z');
    expect(parseTimeOption('2026-11-25T14:30:05.25+01:00', '--at').toISOString()).toBe('2026-11-25T13:30:05.250Z');
    expect(parseTimeOption('2026-11-25T14:30:05.1234-0230', '--at').toISOString()).toBe('2026-11-25T17:00:05.123Z');
    expect(parseTimeOption('2026-11-25', '--at', { dates: 'utc' }).toISOString()).toBe('2026-11-25T00:00:00.000Z');
  });

  it.runIf(away)('reads a time without an offset, and a date alone, as local time (UTC midnight when asked)', () => {
    expect(parseTimeOption('2026-11-25 14:30', '--at').toISOString()).toBe('2026-11-25T18:00:00.000Z');
    expect(parseTimeOption('2026-11-25', '--at').toISOString()).toBe('2026-11-25T03:30:00.000Z');
    expect(parseTimeOption('2026-11-25', '--at', { dates: 'local' }).toISOString()).toBe('2026-11-25T03:30:00.000Z');
    expect(parseTimeOption('2026-11-25 14:30', '--at', { dates: 'utc' }).toISOString()).toBe('2026-11-25T18:00:00.000Z');
    expect(parseTimeOption('2026-11-25T23:59:59', '--at').toISOString()).toBe('2026-11-26T03:29:59.000Z');
    // Given in UTC, the day is checked in UTC: here it is still the 24th.
    expect(parseTimeOption('2026-11-25T01:00:00Z', '--at').toISOString()).toBe('2026-11-25T01:00:00.000Z');
    expect(parseTimeOption('2026-11-25 14:30', '--at').getTime()).toBe(new Date(2026, 10, 25, 14, 30, 0, 0).getTime());
    expect(parseTimeOption('2026-11-25T14:30:07.5', '--at').getTime()).toBe(new Date(2026, 10, 25, 14, 30, 7, 500).getTime());
    expect(parseTimeOption('2026-11-25', '--at').getTime()).toBe(new Date(2026, 10, 25).getTime());
  });

  it('refuses days and times that do not exist, and anything else, saying how to write one', () => {
    for (const bad of ['2027-02-30', '2027-02-30T10:00Z', '2027-13-01', '2027-00-10', '2027-01-32', '2026-11-25T24:00Z', '2026-11-25T23:60Z', '2026-11-25T23:59:60Z',
      '2026-11-25 24:00', '2026-11-25 10:60', '2026-11-25 10:30:60', '2027-02-29', 'tomorrow', '2026-11-25T14', 'x2026-11-25', '2026-11-25Tx', '2027-02-30', '2026-11-25T14:30+25:00']) {
      const e = refused(() => parseTimeOption(bad, '--starts', { dates: bad.includes('T') ? 'local' : 'utc' }));
      expect(e.message, bad).toBe(`--starts "${bad}" is not a time`);
      expect(e.hint).toBe('Use ISO 8601, e.g. 2026-11-25T14:30:00Z or 2026-11-25 14:30 (local time)');
    }
    expect(() => parseTimeOption('2027-02-30', '--at')).toThrow(RefusedError);
  });
});
