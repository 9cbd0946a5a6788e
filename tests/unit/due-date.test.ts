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

  it('counts days to the due date, negative when overdue', () => {
    expect(daysUntil('2026-11-25', '2026-12-01')).toBe(6);
    expect(daysUntil('2026-11-25', '2026-11-25')).toBe(0);
    expect(daysUntil('2026-03-30', '2026-03-28')).toBe(-2);
    // Across the clocks going forward (no local time involved).
    expect(daysUntil('2026-03-28', '2026-03-30')).toBe(2);
  });
});
