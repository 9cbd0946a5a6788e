import { describe, expect, it } from 'vitest';
import { AttendanceTally, RecordTally, schoolTerm, tallyFor } from '../../src/dsar/report-terms.js';

describe('school terms by calendar month', () => {
  it.each([
    ['2024-09-01', 'Autumn 2024 (Sep–Dec)'],
    ['2024-12-31', 'Autumn 2024 (Sep–Dec)'],
    ['2025-01-01', 'Spring 2025 (Jan–Mar)'],
    ['2025-03-31', 'Spring 2025 (Jan–Mar)'],
    ['2025-04-01', 'Summer 2025 (Apr–Aug)'],
    ['2025-08-31T23:59:59.5+00:00', 'Summer 2025 (Apr–Aug)'],
    [null, 'No date recorded'],
    ['2025-13-01', 'No date recorded'],
    ['not a date', 'No date recorded'],
  ])('%s is in %s', (date, label) => {
    expect(schoolTerm(date).label).toBe(label);
  });

  it('terms sort in time order within and across years, undated last', () => {
    const keys = ['2025-09-02', null, '2025-02-01', '2024-10-01', '2025-05-01'].map((d) => schoolTerm(d).key).sort();
    expect(keys).toEqual([schoolTerm('2024-10-01').key, schoolTerm('2025-02-01').key, schoolTerm('2025-05-01').key, schoolTerm('2025-09-02').key, 'undated']);
  });
});

describe('a register counted by term', () => {
  const mark = (session_date: string, session: string, status: string) => ({ session_date, session, status });

  it('counts each session once, by its latest mark, and counts the correction', () => {
    const tally = new AttendanceTally();
    for (const row of [
      mark('2025-03-31', 'am', 'present'),
      mark('2025-03-31', 'pm', 'unauthorised_absence'),
      mark('2025-03-31', 'pm', 'authorised_absence'), // the correction, recorded later
      mark('2025-04-01', 'am', 'late'),
      mark('2025-04-01', 'pm', 'closed'),
    ]) tally.add(row);
    expect(tally.terms().map(({ term, ...counts }) => [term.label, counts])).toEqual([
      ['Spring 2025 (Jan–Mar)', { sessions: 2, present: 1, late: 0, authorisedAbsence: 1, unauthorisedAbsence: 0, closed: 0, corrected: 1 }],
      ['Summer 2025 (Apr–Aug)', { sessions: 2, present: 0, late: 1, authorisedAbsence: 0, unauthorisedAbsence: 0, closed: 1, corrected: 0 }],
    ]);
  });

  it('refuses rows that are not grouped by session, which would count a session twice', () => {
    const tally = new AttendanceTally();
    tally.add(mark('2025-03-31', 'pm', 'present'));
    expect(() => tally.add(mark('2025-03-31', 'am', 'present'))).toThrow(/out of order/);
  });
});

describe('other long sections counted by term', () => {
  it('counts records per term of their date column, with the first and last date', () => {
    const tally = tallyFor('staff_activity', ['id', 'occurred_at'], { retention: { clock: 'occurred_at' } });
    if (!(tally instanceof RecordTally)) throw new Error(`staff_activity is counted by ${tally?.kind}`);
    for (const at of ['2025-10-02T09:00:00+00:00', '2025-09-01T09:00:00+00:00', '2026-01-05T09:00:00+00:00', null]) tally.add({ occurred_at: at });
    expect(tally.dateColumn).toBe('occurred_at');
    expect(tally.terms().map((t) => [t.term.label, t.records, t.first, t.last])).toEqual([
      ['Autumn 2025 (Sep–Dec)', 2, '2025-09-01', '2025-10-02'],
      ['Spring 2026 (Jan–Mar)', 1, '2026-01-05', '2026-01-05'],
      ['No date recorded', 1, null, null],
    ]);
  });

  it('attendance, archived or not, is counted as a register; a table without a date column not at all', () => {
    expect(tallyFor('archive.attendance_records', [], {})).toBeInstanceOf(AttendanceTally);
    expect(tallyFor('guardianships', ['id', 'relationship'], { retention: null })).toBeNull();
  });
});

// Written for mutants that survived (docs/testing.md, Mutation testing).
describe('edges of the term rules', () => {
  it('a date must start the text and have two-digit months and days; month 00 is undated', () => {
    for (const d of ['x2025-01-01', '2025-01-1', '2025-00-10', '2025-1-01']) expect(schoolTerm(d).key, d).toBe('undated');
    expect(schoolTerm('2025-01-01 and more').key).toBe('2025-1');
  });

  it('each kind of tally says what it is', () => {
    expect(new AttendanceTally().kind).toBe('attendance');
    expect(new RecordTally('created_at').kind).toBe('records');
    expect(tallyFor('incidents', ['id', 'created_at'], {})).toEqual(expect.objectContaining({ kind: 'records', dateColumn: 'created_at' }));
  });

  it('a register: sessions without a date come first as rows but last as a term; an unknown mark counts as a session only', () => {
    const tally = new AttendanceTally();
    for (const row of [
      { session_date: null, session: 'am', status: 'present' },
      { session_date: '2024-10-01', session: 'am', status: 'present' },
      { session_date: '2025-02-03', session: 'am', status: 'late' },
      { session_date: '2025-05-05', session: 'am', status: 'not_a_mark' },
    ]) tally.add(row);
    expect(tally.terms().map(({ term, ...counts }) => [term.key, counts])).toEqual([
      ['2024-3', { sessions: 1, present: 1, late: 0, authorisedAbsence: 0, unauthorisedAbsence: 0, closed: 0, corrected: 0 }],
      ['2025-1', { sessions: 1, present: 0, late: 1, authorisedAbsence: 0, unauthorisedAbsence: 0, closed: 0, corrected: 0 }],
      ['2025-2', { sessions: 1, present: 0, late: 0, authorisedAbsence: 0, unauthorisedAbsence: 0, closed: 0, corrected: 0 }],
      ['undated', { sessions: 1, present: 1, late: 0, authorisedAbsence: 0, unauthorisedAbsence: 0, closed: 0, corrected: 0 }],
    ]);
  });

  it('records in any order: terms sorted, first and last the earliest and latest, an unreadable date undated with none', () => {
    const tally = new RecordTally('at');
    for (const at of ['2026-01-10', 'unknown', '2025-11-15', '2025-09-01', '2025-10-02', '2024-05-01', '2026-02-01']) tally.add({ at });
    expect(tally.terms().map((t) => [t.term.key, t.records, t.first, t.last])).toEqual([
      ['2024-2', 1, '2024-05-01', '2024-05-01'],
      ['2025-3', 3, '2025-09-01', '2025-11-15'],
      ['2026-1', 2, '2026-01-10', '2026-02-01'],
      ['undated', 1, null, null],
    ]);
  });
});
