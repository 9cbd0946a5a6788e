// Retention categories as the data map defines them: which tables each
// covers, the clock each table's rows count from, and how "due" and "held"
// read in SQL.
import { sql, type RawBuilder } from 'kysely';
import { dataMap, isDerivedClock, type SubjectReference } from '../datamap/index.js';
import { anonymisation, anonymisedSql as anonymisedColumnsSql, type Anonymisation } from '../datamap/anonymise.js';
import { RefusedError } from '../errors.js';

export interface CategoryTable {
  readonly table: string;
  readonly idColumn: string;
  readonly clock: string;
  readonly hasSite: boolean;
  readonly subjects: readonly SubjectReference[];
  /** Columns anonymisation changes, and how. */
  readonly anonymise: Anonymisation;
}

export interface Category {
  readonly name: string;
  readonly tables: readonly CategoryTable[];
  /** Anonymise is possible only where a table has personal columns to change. */
  readonly actions: ReadonlyArray<'delete' | 'anonymise' | 'archive'>;
}

export const RETENTION_ACTIONS = ['delete', 'anonymise', 'archive'] as const;
export type RetentionAction = (typeof RETENTION_ACTIONS)[number];

/** Every category of the data map, in name order. */
export function retentionCategories(): Category[] {
  const byName = new Map<string, CategoryTable[]>();
  for (const m of dataMap) {
    if (!m.retention) continue;
    const list = byName.get(m.retention.category) ?? [];
    list.push({
      table: m.table,
      idColumn: m.idColumn,
      clock: m.retention.clock,
      hasSite: m.tenantKey?.site !== null,
      subjects: m.subjects,
      anonymise: anonymisation(m.erasure.columns),
    });
    byName.set(m.retention.category, list);
  }
  return [...byName.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, tables]) => ({
      name,
      tables,
      actions: tables.some((t) => Object.keys(t.anonymise).length > 0) ? [...RETENTION_ACTIONS] : ['delete', 'archive'],
    }));
}

export function findCategory(name: string): Category {
  const c = retentionCategories().find((x) => x.name === name);
  if (!c) {
    throw new RefusedError(`unknown retention category "${name}"`, `Categories: ${retentionCategories().map((x) => x.name).join(', ')}`);
  }
  return c;
}

export function parseAction(value: string, category: Category): RetentionAction {
  if (!(RETENTION_ACTIONS as readonly string[]).includes(value)) {
    throw new RefusedError(`--action must be one of ${RETENTION_ACTIONS.join(', ')}`);
  }
  if (!category.actions.includes(value as RetentionAction)) {
    throw new RefusedError(`${category.name} has no personal columns to anonymise`, `Use ${category.actions.join(' or ')}`);
  }
  return value as RetentionAction;
}

const UNITS: Record<string, string> = { d: 'days', w: 'weeks', mo: 'months', y: 'years' };

/**
 * Parses a keep-for period: `30d`, `12w`, `6mo`, `7y` (or `0d`: due as soon
 * as the clock passes) into a PostgreSQL interval.
 *
 * @example
 * parseKeepFor('7y') // '7 years'
 */
export function parseKeepFor(value: string): string {
  const m = /^(\d{1,4})(d|w|mo|y)$/.exec(value.trim().toLowerCase());
  if (!m) throw new RefusedError(`--keep "${value}" is not a period`, 'Use e.g. 30d, 12w, 6mo or 7y');
  return `${Number(m[1])} ${UNITS[m[2]!]}`;
}

/** The moment a row's retention clock starts, as SQL over alias t. */
export function clockSql(table: Pick<CategoryTable, 'clock'>): RawBuilder<unknown> {
  if (isDerivedClock(table.clock)) {
    const child = sql`(select c.date_of_birth as dob, c.left_on from public.children c where c.org_id = t.org_id and c.id = t.child_id)`;
    return table.clock === 'child_left_on'
      ? sql`(select x.left_on::timestamptz from ${child} x)`
      : sql`(select (x.dob + interval '25 years')::timestamptz from ${child} x)`;
  }
  return sql`t.${sql.ref(table.clock)}::timestamptz`;
}

/**
 * Whether an active legal hold covers row t of this category, as SQL; for a
 * table outside every category (null), only holds without a category.
 */
export function heldSql(table: Pick<CategoryTable, 'subjects' | 'hasSite'>, category: string | null): RawBuilder<boolean> {
  const scalar = table.subjects.filter((s) => !s.array).map((s) => sql`t.${sql.ref(s.column)}`);
  const arrays = table.subjects.filter((s) => s.array).map((s) => sql`h.subject_id = any (t.${sql.ref(s.column)})`);
  const subject = [
    ...(scalar.length > 0 ? [sql`h.subject_id in (${sql.join(scalar)})`] : []),
    ...arrays,
  ];
  return sql<boolean>`exists (
    select 1 from public.legal_holds h
    where h.org_id = t.org_id and h.released_at is null
      and (h.site_id is null ${table.hasSite ? sql`or h.site_id = t.site_id` : sql``})
      and (h.category is null ${category === null ? sql`` : sql`or h.category = ${category}`})
      and (h.subject_id is null ${subject.length > 0 ? sql`or ${sql.join(subject, sql` or `)}` : sql``}))`;
}

/** Rows whose personal columns are already anonymised (nothing left to do), as SQL. */
export function anonymisedSql(table: CategoryTable): RawBuilder<boolean> {
  return anonymisedColumnsSql(table.anonymise, table.idColumn);
}

/** A keep-for interval as people wrote it: `3y`, `6mo`, `30d`, `1y 6mo`, `0d`. */
export function keepForText(column: RawBuilder<unknown>): RawBuilder<string> {
  return sql<string>`coalesce(nullif(concat_ws(' ',
    nullif(extract(year from ${column})::int, 0) || 'y', nullif(extract(month from ${column})::int, 0) || 'mo',
    nullif(extract(day from ${column})::int, 0) || 'd'), ''), '0d')`;
}

/**
 * Why a sweep would not apply this policy, or null. \`policy set\` refuses
 * these, and a sweep skips them, saying why.
 */
export function sweepRefusal(category: string, action: RetentionAction, siteScoped: boolean): string | null {
  if (category === 'access') return 'role grants are kept as history for trustctl access who (docs/access.md); they are not swept';
  if (category === 'pupil_record' && action !== 'anonymise') {
    return 'children are referenced by attendance, notes, media and more: sweep those categories, or anonymise';
  }
  if (category === 'media' && action !== 'anonymise') {
    return 'deleting media rows would leave their files in storage; not until media files are removed with them';
  }
  if (category === 'audit_events' && siteScoped) return 'the audit trail is pruned per organisation, by sealed prefix: set the organisation’s policy';
  if (category === 'audit_events' && action !== 'delete') return 'the audit trail can only be pruned (delete); export it first with trustctl audit export';
  return null;
}
