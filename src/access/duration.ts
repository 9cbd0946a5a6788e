// Durations as operators type them (--for 2h, --max-duration 90m) and as
// trustctl prints them.
import { RefusedError } from '../errors.js';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/**
 * Parses `90s`, `30m`, `2h`, `1d` or a sum such as `1h30m` into seconds.
 *
 * @example
 * parseDuration('1h30m', '--for') // 5400
 */
export function parseDuration(value: string, option: string): number {
  const v = value.trim().toLowerCase();
  if (!/^(\d+[smhd])+$/.test(v)) {
    throw new RefusedError(`${option} "${value}" is not a duration`, 'Use e.g. 90s, 30m, 2h, 1d or 1h30m');
  }
  let seconds = 0;
  for (const m of v.matchAll(/(\d+)([smhd])/g)) seconds += Number(m[1]) * UNITS[m[2]!]!;
  if (seconds <= 0) throw new RefusedError(`${option} must be longer than zero`);
  if (seconds > 366 * 86_400) throw new RefusedError(`${option} "${value}" is longer than a year`);
  return seconds;
}

/**
 * A duration for people: `2h 5m`, `45s`, `3d 4h`.
 *
 * @example
 * formatDuration(7500) // '2h 5m'
 */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = [d ? `${d}d` : '', h ? `${h}h` : '', m ? `${m}m` : ''].filter(Boolean);
  return parts.slice(0, 2).join(' ') || '0m';
}

/**
 * Parses --at / --starts: an ISO 8601 date or date-time (local time when it
 * has no offset; a date alone is local midnight, or UTC midnight with
 * `dates: 'utc'`). A day that does not exist (2027-02-30) is refused, never
 * rolled over.
 *
 * @example
 * parseTimeOption('2026-11-25T14:30:00Z', '--at') // Date
 */
export function parseTimeOption(value: string, option: string, { dates = 'local' }: { dates?: 'local' | 'utc' } = {}): Date {
  const v = value.trim();
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(v);
  const refuse = (): never => {
    throw new RefusedError(`${option} "${value}" is not a time`, 'Use ISO 8601, e.g. 2026-11-25T14:30:00Z or 2026-11-25 14:30 (local time)');
  };
  if (!m) return refuse();
  const [, y, mo, d, hour, mi = '00', s = '00', frac = '0', zone] = m;
  const h = hour ?? '00';
  const parts = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), Math.round(Number(`0.${frac}`) * 1000)] as const;
  const utc = zone !== undefined || (hour === undefined && dates === 'utc');
  // Local time unless an offset is given (or a date alone is to be UTC midnight).
  const date = zone
    ? new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}.${frac.padEnd(3, '0').slice(0, 3)}${zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone}`)
    : utc
      ? new Date(Date.UTC(...parts))
      : new Date(...parts);
  // Reject dates that do not exist (2027-02-30), which Date would roll over.
  const check = utc ? new Date(Date.UTC(...parts)) : date;
  const [cy, cm, cd] = utc ? [check.getUTCFullYear(), check.getUTCMonth(), check.getUTCDate()] : [check.getFullYear(), check.getMonth(), check.getDate()];
  if (Number.isNaN(date.getTime()) || cy !== parts[0] || cm !== parts[1] || cd !== parts[2] || parts[3] > 23 || parts[4] > 59 || parts[5] > 59) return refuse();
  return date;
}
