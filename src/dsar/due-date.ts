// The legal clock of a subject access request (UK GDPR Article 12(3), as the
// ICO reads it): one calendar month from the day of receipt; where the next
// month has no such day, its last day. Extensions add up to two further
// months. The database enforces the same rule (migration 0005).
import { RefusedError } from '../errors.js';

/** Calendar dates are 'YYYY-MM-DD' strings throughout; no time zone can shift them. */
export type IsoDate = string;

/**
 * Parses a calendar date given by a person, refusing anything that is not a
 * real day, or (with `latest`) a day after it.
 *
 * @example
 * parseIsoDate('2024-02-29', '--received') // '2024-02-29'
 */
export function parseIsoDate(value: string, what: string, { latest }: { latest?: IsoDate } = {}): IsoDate {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value.trim());
  if (match) {
    const [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
    const date = new Date(Date.UTC(y, m - 1, d));
    if (date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d) {
      if (latest !== undefined && value.trim() > latest) throw new RefusedError(`${what} ${value.trim()} is in the future`, `Give a day no later than ${latest}`);
      return value.trim();
    }
  }
  throw new RefusedError(`${what} "${value}" is not a calendar date`, 'Use YYYY-MM-DD, e.g. 2026-01-31');
}

/**
 * Adds calendar months; a day the target month lacks becomes its last day.
 *
 * @example
 * addCalendarMonths('2024-01-31', 1) // '2024-02-29'
 */
export function addCalendarMonths(date: IsoDate, months: number): IsoDate {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const monthIndex = m - 1 + months;
  const year = y + Math.floor(monthIndex / 12);
  const month = ((monthIndex % 12) + 12) % 12;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const day = Math.min(d, lastDay);
  return `${String(year).padStart(4, '0')}-${String(month + 1).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/**
 * The legal due date of a request received on `received`.
 *
 * @example
 * legalDueDate('2023-01-31') // '2023-02-28'
 */
export function legalDueDate(received: IsoDate): IsoDate {
  return addCalendarMonths(received, 1);
}

/**
 * The due date after extending by `furtherMonths` (1 or 2) beyond the first month.
 *
 * @example
 * extendedDueDate('2024-01-31', 2) // '2024-04-30'
 */
export function extendedDueDate(received: IsoDate, furtherMonths: number): IsoDate {
  if (!Number.isInteger(furtherMonths) || furtherMonths < 1 || furtherMonths > 2) {
    throw new RefusedError(
      `an extension must be 1 or 2 further months, not "${furtherMonths}"`,
      'The law allows up to two further months; pass --months 1 or --months 2',
    );
  }
  return addCalendarMonths(received, 1 + furtherMonths);
}

/**
 * Whole days from `today` to `due` (negative when overdue).
 *
 * @example
 * daysUntil('2026-11-25', '2026-12-01') // 6
 */
export function daysUntil(today: IsoDate, due: IsoDate): number {
  return Math.round((Date.parse(`${due}T00:00:00Z`) - Date.parse(`${today}T00:00:00Z`)) / 86_400_000);
}
