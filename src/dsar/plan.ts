// What a subject access export reads, derived from the data map alone: for
// each table, the columns that name the subject as its own data (IS / ABOUT),
// the columns that name it as the author of records about other people (BY),
// and what the bundle does with those rows.
import { RefusedError } from '../errors.js';
import { dataMap, refersTo, type SubjectReference, type TableMap } from '../datamap/index.js';
import type { SubjectType } from './subject.js';

/** Categories a DPO can release with --include after review. */
export const REVIEW_CATEGORIES = {
  safeguarding: 'Safeguarding records (may be exempt: serious harm, third parties).',
  sensitive_notes: 'Notes marked sensitive (may hold third parties’ data).',
  third_party_records: 'Records the person made about other people (e.g. registers they took, notes they wrote).',
} as const;
export type ReviewCategory = keyof typeof REVIEW_CATEGORIES;

/**
 * Checks --include / --reviewer: known categories, and a reviewer whenever
 * anything is released.
 *
 * @example
 * parseReleases(['safeguarding'], 'J. Patel') // ['safeguarding']
 */
export function parseReleases(include: readonly string[], reviewer: string | null | undefined): ReviewCategory[] {
  for (const category of include) {
    // Own keys only: --include toString is no category.
    if (!Object.hasOwn(REVIEW_CATEGORIES, category)) {
      throw new RefusedError(`--include ${category}: no such category`, `Categories: ${Object.keys(REVIEW_CATEGORIES).join(', ')}`);
    }
  }
  if (include.length > 0 && !reviewer?.trim()) {
    throw new RefusedError('--include releases withheld records, so it needs --reviewer "who reviewed them"');
  }
  return include as ReviewCategory[];
}

const THIRD_PARTY_REASON =
  'Records this person made about other people; they hold third parties’ personal data and are released only after review.';

export interface TableReadPlan {
  readonly map: TableMap;
  /** References whose match makes a row the subject's own data (IS / ABOUT). */
  readonly own: readonly SubjectReference[];
  /** References whose match makes a row a record BY the subject about others. */
  readonly by: readonly SubjectReference[];
  /**
   * Rows withheld pending review: all of the table's rows (where: null) or
   * those matching column = equals.
   */
  readonly review: {
    readonly category: ReviewCategory;
    readonly reason: string;
    readonly where: { readonly column: string; readonly equals: string } | null;
  } | null;
  /** Records BY the subject about others: withheld until this category is released. */
  readonly byReview: { readonly category: ReviewCategory; readonly reason: string };
}

export interface SubjectReadPlan {
  readonly tables: readonly TableReadPlan[];
  /** Tables that name the subject but are not part of a bundle, with why. */
  readonly excluded: ReadonlyArray<{ readonly table: string; readonly reason: string }>;
}

function asCategory(category: string): ReviewCategory {
  if (!Object.hasOwn(REVIEW_CATEGORIES, category)) throw new Error(`data map names unknown review category ${category}`);
  return category as ReviewCategory;
}

/**
 * The read plan for a subject of the given type.
 *
 * @example
 * planSubjectRead('child').tables.map((t) => t.map.table) // ['children', 'guardianships', …]
 */
export function planSubjectRead(type: SubjectType): SubjectReadPlan {
  const tables: TableReadPlan[] = [];
  const excluded: Array<{ table: string; reason: string }> = [];
  for (const map of dataMap) {
    const refs = map.subjects.filter((s) => refersTo(s.kind, type));
    if (refs.length === 0) continue;
    if (map.dsar.kind === 'exclude') {
      excluded.push({ table: map.table, reason: map.dsar.reason });
      continue;
    }
    if (refs.some((r) => r.array)) throw new Error(`${map.table}: array subject columns are not exportable; exclude the table`);
    const withhold = map.dsar.kind === 'include' ? map.dsar.withhold : undefined;
    tables.push({
      map,
      own: refs.filter((r) => r.relation !== 'by'),
      by: refs.filter((r) => r.relation === 'by'),
      review:
        map.dsar.kind === 'withheld_pending_review'
          ? { category: asCategory(map.dsar.category), reason: map.dsar.reason, where: null }
          : withhold
            ? {
                category: asCategory(withhold.category),
                reason: withhold.reason,
                where: { column: withhold.column, equals: withhold.equals },
              }
            : null,
      byReview: { category: 'third_party_records', reason: THIRD_PARTY_REASON },
    });
  }
  return { tables, excluded };
}
