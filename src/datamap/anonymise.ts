// How a row's personal columns are anonymised, as SQL, from the data map's
// column strategies: shared by retention sweeps (action anonymise) and
// subject erasure, so both leave the same marks and both can tell a row
// that has nothing left to change.
import { sql, type RawBuilder } from 'kysely';
import type { ColumnErasure } from './index.js';

/** The marker anonymisation writes over a redacted text column. */
export const REDACTED = '[redacted]';

/** Columns a strategy changes (every one but 'keep'). */
export type Anonymisation = Readonly<Record<string, Exclude<ColumnErasure, 'keep'>>>;

/** The columns of a data-map erasure that anonymisation changes. */
export function anonymisation(columns: Readonly<Record<string, ColumnErasure>>): Anonymisation {
  return Object.fromEntries(Object.entries(columns).filter(([, how]) => how !== 'keep')) as Anonymisation;
}

/**
 * The keyed pseudonym of the row's id in its organisation (migration 0014):
 * stable within an organisation, unlinkable across them.
 */
function pseudonymOf(alias: string | null, idColumn: string): RawBuilder<string> {
  const ref = (c: string) => sql.ref(alias ? `${alias}.${c}` : c);
  return sql<string>`app.erasure_pseudonym(${ref('org_id')}, ${ref(idColumn)})`;
}

/** The SET list of an UPDATE that anonymises a row of this table (unqualified columns). */
export function anonymiseSet(columns: Anonymisation, idColumn: string): RawBuilder<unknown> {
  return sql.join(
    Object.entries(columns).map(([column, how]) => {
      const c = sql.ref(column);
      if (how === 'null') return sql`${c} = null`;
      // The year only, as its last day: a clock derived from it (a 25th birthday) can only move later.
      if (how === 'generalise_date') return sql`${c} = (date_trunc('year', ${c}) + interval '1 year - 1 day')::date`;
      if (how === 'pseudonym') return sql`${c} = case when ${c} is null then null else ${pseudonymOf(null, idColumn)} end`;
      return sql`${c} = case when ${c} is null then null else ${REDACTED} end`;
    }),
  );
}

/** Whether row t has nothing left to anonymise, as SQL (true when no column is personal). */
export function anonymisedSql(columns: Anonymisation, idColumn: string): RawBuilder<boolean> {
  const parts = Object.entries(columns).map(([column, how]) => {
    const c = sql`t.${sql.ref(column)}`;
    if (how === 'null') return sql`${c} is null`;
    if (how === 'generalise_date') return sql`(${c} is null or (extract(month from ${c}) = 12 and extract(day from ${c}) = 31))`;
    if (how === 'pseudonym') return sql`(${c} is null or ${c}::text = ${pseudonymOf('t', idColumn)})`;
    return sql`(${c} is null or ${c}::text = ${REDACTED})`;
  });
  return parts.length === 0 ? sql<boolean>`true` : sql<boolean>`(${sql.join(parts, sql` and `)})`;
}
