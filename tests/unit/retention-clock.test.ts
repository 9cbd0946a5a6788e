// --clock on `retention policy set` (src/retention/policies.ts): a clock
// derived from the child, or a date column every table of the category has.
// An operator types it, so it is checked before anything is stored.
import { describe, expect, it } from 'vitest';
import { DERIVED_CLOCKS, isDerivedClock } from '../../src/datamap/index.js';
import { RefusedError } from '../../src/errors.js';
import type { Category, CategoryTable } from '../../src/retention/categories.js';
import { checkClock, DATA_MAP_CLOCK, parseClockName } from '../../src/retention/policies.js';

const table = (name: string, clock: string) => ({ table: name, clock }) as unknown as CategoryTable;
const notes: Category = { name: 'notes', tables: [table('notes', 'created_at')], actions: ['delete'] };
const mixed: Category = { name: 'attendance', tables: [table('attendance_records', 'session_date'), table('notes', 'created_at')], actions: ['delete'] };
const COLUMNS: Record<string, Record<string, string>> = {
  notes: { id: 'uuid', child_id: 'uuid', created_at: 'timestamp with time zone', body: 'text', constructor: 'text' },
  attendance_records: { id: 'uuid', child_id: 'uuid', session_date: 'date', created_at: 'timestamp with time zone' },
  staff: { id: 'uuid', created_at: 'timestamp with time zone' },
};
const columnsOf = (t: string) => new Map(Object.entries(COLUMNS[t] ?? {}));

describe('derived clocks', () => {
  it('are the child’s leaving day and 25th birthday, and nothing an object inherits', () => {
    expect(Object.keys(DERIVED_CLOCKS)).toEqual(['child_left_on', 'child_25th_birthday']);
    expect(isDerivedClock('child_left_on')).toBe(true);
    expect(isDerivedClock('child_25th_birthday')).toBe(true);
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'created_at', '']) expect(isDerivedClock(name), name).toBe(false);
  });
});

describe('checkClock', () => {
  it('without --clock: the data map’s clock, or "data map" when the tables differ', () => {
    expect(checkClock(notes, undefined, columnsOf)).toBe('created_at');
    expect(checkClock(mixed, undefined, columnsOf)).toBe(DATA_MAP_CLOCK);
    expect(DATA_MAP_CLOCK).toBe('data map');
  });

  it('a derived clock needs a child on every row', () => {
    expect(checkClock(notes, 'child_25th_birthday', columnsOf)).toBe('child_25th_birthday');
    const staff: Category = { name: 'staff', tables: [table('staff', 'created_at')], actions: ['delete'] };
    expect(() => checkClock(staff, 'child_left_on', columnsOf)).toThrow(new RefusedError('--clock child_left_on needs a child on every row of staff'));
  });

  it('a column clock must be a date or time column of every table', () => {
    expect(checkClock(mixed, 'created_at', columnsOf)).toBe('created_at');
    expect(() => checkClock(mixed, 'session_date', columnsOf)).toThrow(new RefusedError('--clock session_date is not a column of notes', 'The data map’s clock for attendance: session_date, created_at'));
    expect(() => checkClock(notes, 'body', columnsOf)).toThrow(new RefusedError('--clock body is not a date or time in notes'));
  });

  it('a name every object has is a column name like any other, never a derived clock', () => {
    // notes has a text column named constructor: refused as not a date, not accepted as derived.
    expect(() => checkClock(notes, 'constructor', columnsOf)).toThrow(new RefusedError('--clock constructor is not a date or time in notes'));
    expect(() => checkClock(notes, '__proto__', columnsOf)).toThrow(new RefusedError('--clock __proto__ is not a column of notes', 'The data map’s clock for notes: created_at'));
    expect(() => checkClock(notes, 'toString', columnsOf)).toThrow(new RefusedError('--clock "toString" is not a column name', 'Name a date column of the category’s tables, or child_left_on / child_25th_birthday'));
  });

  it('a clock that is not a column name is refused before any lookup', () => {
    for (const bad of ['created_at; drop table notes', 'Created_At', '1st', '', 'a'.repeat(64)]) {
      expect(() => parseClockName(bad), bad).toThrow(RefusedError);
    }
    expect(parseClockName('a'.repeat(63))).toBe('a'.repeat(63));
    expect(parseClockName('child_left_on')).toBe('child_left_on');
  });
});
