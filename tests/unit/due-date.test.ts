import { describe, expect, it } from 'vitest';
import { addCalendarMonths, daysUntil, extendedDueDate, legalDueDate, parseIsoDate } from '../../src/dsar/due-date.js';
import { RefusedError } from '../../src/errors.js';

describe('legal due date: one calendar month, month ends clamp', () => {
  it.each([
    ['2026-11-20', '2026-12-20'],
    ['2023-01-31', '2023-02-28'],
    ['2024-01-31', '2024-02-29'], // leap year
    ['2024-01-29', '2024-02-29'],
    ['2023-01-29', '2023-02-28'],
    ['2024-02-29', '2024-03-29'],
    ['2026-03-31', '2026-04-30'],
    ['2026-08-31', '2026-09-30'],
    ['2026-12-31', '2027-01-31'], // year boundary
    ['2026-12-15', '2027-01-15'],
  ])('received %s is due %s', (received, due) => {
    expect(legalDueDate(received)).toBe(due);
  });

  it('extends by one or two further months from the day of receipt', () => {
    expect(extendedDueDate('2024-01-31', 2)).toBe('2024-04-30');
    expect(extendedDueDate('2024-01-31', 1)).toBe('2024-03-31');
    expect(extendedDueDate('2023-11-30', 2)).toBe('2024-02-29');
    expect(extendedDueDate('2025-11-30', 2)).toBe('2026-02-28');
  });

  it('refuses an extension of more than two months, or none', () => {
    expect(() => extendedDueDate('2024-01-31', 3)).toThrow(RefusedError);
    expect(() => extendedDueDate('2024-01-31', 0)).toThrow(RefusedError);
    expect(() => extendedDueDate('2024-01-31', 1.5)).toThrow(RefusedError);
  });

  it('adds months across years in both directions', () => {
    expect(addCalendarMonths('2026-01-31', 13)).toBe('2027-02-28');
    expect(addCalendarMonths('2026-03-31', -1)).toBe('2026-02-28');
  });

  it('accepts only real calendar days', () => {
    expect(parseIsoDate('2024-02-29', 'x')).toBe('2024-02-29');
    for (const bad of ['2023-02-29', '2026-13-01', '2026-04-31', '26-01-01', 'yesterday', '2026-1-5']) {
      expect(() => parseIsoDate(bad, '--received')).toThrow(RefusedError);
    }
  });

  it('reads a date with spaces around it, and nothing more or less than YYYY-MM-DD', () => {
    expect(parseIsoDate(' 2026-01-31\n', '--received')).toBe('2026-01-31');
    for (const bad of ['x2026-01-31', '2026-01-310', '2026-01-31T00:00', '02026-01-31']) {
      expect(() => parseIsoDate(bad, '--received'), bad).toThrow(RefusedError);
    }
  });

  it('refuses a day whose year, month or day alone is wrong, however the others fit', () => {
    // Date.UTC rolls each of these into a real day, and reads years below 100 as 19xx.
    for (const bad of ['2026-02-30', '2026-00-10', '2026-12-32', '2026-13-31', '0050-01-01']) {
      expect(() => parseIsoDate(bad, '--received'), bad).toThrow(/--received "[^"]+" is not a calendar date/);
    }
    expect(() => parseIsoDate('2026-02-30', '--received')).toThrow(expect.objectContaining({ hint: 'Use YYYY-MM-DD, e.g. 2026-01-31' }));
  });

  it('with a latest day, accepts it and any day before, and refuses the day after, saying why', () => {
    expect(parseIsoDate('2026-12-07', '--received', { latest: '2026-12-07' })).toBe('2026-12-07');
    expect(parseIsoDate(' 2026-12-06 ', '--received', { latest: '2026-12-07' })).toBe('2026-12-06');
    expect(parseIsoDate('2026-12-08', '--received')).toBe('2026-12-08');
    let error: unknown;
    try {
      parseIsoDate(' 2026-12-08', '--received', { latest: '2026-12-07' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RefusedError);
    expect((error as RefusedError).message).toBe('--received 2026-12-08 is in the future');
    expect((error as RefusedError).hint).toBe('Give a day no later than 2026-12-07');
  });

  it('writes years, months and days with leading zeros', () => {
    expect(addCalendarMonths('0999-01-05', 1)).toBe('0999-02-05');
  });

  it('says what an extension may be', () => {
    expect(() => extendedDueDate('2024-01-31', 3)).toThrow(
      expect.objectContaining({ message: 'an extension must be 1 or 2 further months, not "3"', hint: 'The law allows up to two further months; pass --months 1 or --months 2' }),
    );
  });

  it('counts days to the due date, negative when overdue', () => {
    expect(daysUntil('2026-11-25', '2026-12-01')).toBe(6);
    expect(daysUntil('2026-11-25', '2026-11-25')).toBe(0);
    expect(daysUntil('2026-03-30', '2026-03-28')).toBe(-2);
    // Across the clocks going forward (no local time involved).
    expect(daysUntil('2026-03-28', '2026-03-30')).toBe(2);
  });
});
