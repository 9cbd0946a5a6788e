// How the report summarises a long section for a parent: its rows counted
// per school term (attendance as sessions present, late and absent), while
// every row stays in the section's collapsed list and in the data files.
// Counters only: the rows stream past, a few numbers per term are kept.

/** A school term, by calendar month (see `schoolTerm`). */
export interface SchoolTerm {
  /** Sorts terms in time order: '2025-1' (spring 2025) < '2025-2' (summer) < '2025-3' (autumn); 'undated' last. */
  readonly key: string;
  /** 'Autumn 2024 (Sep–Dec)' */
  readonly label: string;
}

const TERMS = [
  { first: 1, order: 1, name: 'Spring', months: 'Jan–Mar' },
  { first: 4, order: 2, name: 'Summer', months: 'Apr–Aug' },
  { first: 9, order: 3, name: 'Autumn', months: 'Sep–Dec' },
] as const;

const UNDATED: SchoolTerm = { key: 'undated', label: 'No date recorded' };

/**
 * The school term of a date ('YYYY-MM-DD…', a date or a UTC timestamp), by
 * a fixed month rule rather than any school's own dates, so that a parent
 * can check it and the same data always gives the same summary: autumn is
 * September to December, spring January to March, summer April to August
 * (the Easter holiday moves, so a week either side of it may belong to the
 * school's other term; the summer holiday counts with the summer term).
 *
 * @example
 * schoolTerm('2024-10-07') // { key: '2024-3', label: 'Autumn 2024 (Sep–Dec)' }
 * schoolTerm('2025-04-28T08:55:00+00:00') // { key: '2025-2', label: 'Summer 2025 (Apr–Aug)' }
 */
export function schoolTerm(date: string | null | undefined): SchoolTerm {
  const m = /^(\d{4})-(\d{2})-\d{2}/.exec(date ?? '');
  const month = m ? Number(m[2]) : 0;
  if (!m || month < 1 || month > 12) return UNDATED;
  const term = [...TERMS].reverse().find((t) => month >= t.first)!;
  return { key: `${m[1]}-${term.order}`, label: `${term.name} ${m[1]} (${term.months})` };
}

/** One term of a register: each session (a half-day, am or pm) counted once, by its latest mark. */
export interface AttendanceTerm {
  readonly term: SchoolTerm;
  sessions: number;
  present: number;
  late: number;
  authorisedAbsence: number;
  unauthorisedAbsence: number;
  /** The school was closed: not a session the child was expected at. */
  closed: number;
  /** Sessions with more than one mark: the earlier marks were corrected. */
  corrected: number;
}

const ATTENDANCE_STATUSES = {
  present: 'present',
  late: 'late',
  authorised_absence: 'authorisedAbsence',
  unauthorised_absence: 'unauthorisedAbsence',
  closed: 'closed',
} as const;

/**
 * Counts a register per term. Rows must come grouped by session, in the
 * order they were recorded (the data map's order for attendance: date,
 * session, recorded_at), so that the last mark of a session is its
 * current one: a correction is a later row for the same session.
 */
export class AttendanceTally {
  readonly kind = 'attendance';
  readonly #terms = new Map<string, AttendanceTerm>();
  #session: { key: string; date: string; status: string; marks: number } | null = null;

  add(row: Record<string, unknown>): void {
    const date = String(row.session_date ?? '');
    const key = `${date}/${String(row.session ?? '')}`;
    if (this.#session && key < this.#session.key) {
      throw new Error(`attendance rows out of order: ${key} after ${this.#session.key}`);
    }
    if (this.#session?.key !== key) {
      this.#count();
      this.#session = { key, date, status: '', marks: 0 };
    }
    this.#session!.status = String(row.status ?? '');
    this.#session!.marks += 1;
  }

  /** Terms in time order. */
  terms(): AttendanceTerm[] {
    this.#count();
    return [...this.#terms.values()].sort((a, b) => (a.term.key < b.term.key ? -1 : a.term.key > b.term.key ? 1 : 0));
  }

  #count(): void {
    const s = this.#session;
    if (!s) return;
    this.#session = null;
    const term = schoolTerm(s.date);
    let t = this.#terms.get(term.key);
    if (!t) {
      t = { term, sessions: 0, present: 0, late: 0, authorisedAbsence: 0, unauthorisedAbsence: 0, closed: 0, corrected: 0 };
      this.#terms.set(term.key, t);
    }
    t.sessions += 1;
    if (s.marks > 1) t.corrected += 1;
    const field = ATTENDANCE_STATUSES[s.status as keyof typeof ATTENDANCE_STATUSES];
    if (field) t[field] += 1;
  }
}

/** One term of any other long section: how many records, first and last date. */
export interface RecordTerm {
  readonly term: SchoolTerm;
  records: number;
  first: string | null;
  last: string | null;
}

/** Counts a section's rows per term of the date in one column. */
export class RecordTally {
  readonly kind = 'records';
  readonly #terms = new Map<string, RecordTerm>();

  constructor(readonly dateColumn: string) {}

  add(row: Record<string, unknown>): void {
    const value = row[this.dateColumn];
    const date = typeof value === 'string' ? value.slice(0, 10) : null;
    const term = schoolTerm(date);
    let t = this.#terms.get(term.key);
    if (!t) {
      t = { term, records: 0, first: null, last: null };
      this.#terms.set(term.key, t);
    }
    t.records += 1;
    if (date && term !== UNDATED) {
      if (t.first === null || date < t.first) t.first = date;
      if (t.last === null || date > t.last) t.last = date;
    }
  }

  /** Terms in time order, undated last. */
  terms(): RecordTerm[] {
    return [...this.#terms.values()].sort((a, b) => (a.term.key < b.term.key ? -1 : a.term.key > b.term.key ? 1 : 0));
  }
}

export type SectionTally = AttendanceTally | RecordTally;

/**
 * How a table's section is counted by term: attendance as a register;
 * another table by its first reading-order column or its retention clock,
 * where that is one of its columns; null when it has no date to go by.
 *
 * @example
 * tallyFor('attendance_records', ['session_date', …], {}) // an AttendanceTally
 * tallyFor('staff_activity', ['occurred_at', …], { retention: { clock: 'occurred_at' } }) // a RecordTally over occurred_at
 */
export function tallyFor(
  table: string,
  columns: readonly string[],
  map: { readonly order?: readonly string[]; readonly retention?: { readonly clock: string } | null },
): SectionTally | null {
  if (table.replace(/^archive\./, '') === 'attendance_records') return new AttendanceTally();
  const date = [map.order?.[0], map.retention?.clock, 'created_at'].find((c) => c !== undefined && columns.includes(c));
  return date ? new RecordTally(date) : null;
}
