// What a subject access export reads, from the data map alone (src/dsar/plan.ts),
// pinned table by table for each kind of subject: which columns make a row the
// person's own, which make it a record they made about others, and what is
// withheld for review. A change to the data map shows up here as a diff.
import { describe, expect, it } from 'vitest';
import { RefusedError } from '../../src/errors.js';
import { parseReleases, planSubjectRead, REVIEW_CATEGORIES, type SubjectReadPlan } from '../../src/dsar/plan.js';

/** table → own columns | by columns | review (category:where or all). */
function summary(plan: SubjectReadPlan): Record<string, string> {
  return Object.fromEntries(plan.tables.map((t) => [
    t.map.table,
    `${t.own.map((r) => r.column).join('+')} | ${t.by.map((r) => r.column).join('+')} | ${t.review ? `${t.review.category}:${t.review.where ? `${t.review.where.column}=${t.review.where.equals}` : 'all'}` : '-'}`,
  ]));
}

const ADULT = {
  users: 'id |  | -',
  role_assignments: 'user_id |  | -',
  guardianships: 'guardian_id |  | -',
  group_memberships: 'staff_id |  | -',
  attendance_records: ' | recorded_by | -',
  notes: ' | author_id | sensitive_notes:kind=sensitive',
  safeguarding_concerns: ' | reported_by | safeguarding:all',
  wellbeing_checkins: ' | recorded_by | -',
  rota_shifts: 'staff_id |  | -',
  staff_activity: 'staff_id |  | -',
  media_files: ' | uploaded_by | -',
};

describe('planSubjectRead', () => {
  it('a child: their own rows in every table that names them; sensitive notes and safeguarding withheld for review', () => {
    const plan = planSubjectRead('child');
    expect(summary(plan)).toEqual({
      children: 'id |  | -',
      guardianships: 'child_id |  | -',
      group_memberships: 'child_id |  | -',
      attendance_records: 'child_id |  | -',
      notes: 'child_id |  | sensitive_notes:kind=sensitive',
      safeguarding_concerns: 'child_id |  | safeguarding:all',
      wellbeing_checkins: 'child_id |  | -',
      staff_activity: 'child_id |  | -',
      media_files: 'child_id |  | -',
    });
    expect(Object.keys(summary(plan))).toEqual(Object.keys(summary(plan)).filter((t) => t !== 'users'));
  });

  it('a guardian and a member of staff: the same plan, with records they made about others as BY', () => {
    expect(summary(planSubjectRead('guardian'))).toEqual(ADULT);
    expect(summary(planSubjectRead('staff'))).toEqual(ADULT);
  });

  it('tables that name the person but are not bundled are listed with why', () => {
    for (const type of ['child', 'guardian', 'staff'] as const) {
      const { excluded } = planSubjectRead(type);
      expect(excluded.map((e) => e.table)).toEqual(['audit_events', 'legal_holds', 'dsar_requests', 'erasures']);
      for (const e of excluded) expect(e.reason.trim().length, e.table).toBeGreaterThan(20);
    }
  });

  it('every table withholds what the person made about others until third-party records are released', () => {
    for (const type of ['child', 'guardian', 'staff'] as const) {
      for (const t of planSubjectRead(type).tables) {
        expect(t.byReview.category, t.map.table).toBe('third_party_records');
        expect(t.byReview.reason).toBe('Records this person made about other people; they hold third parties’ personal data and are released only after review.');
      }
    }
    const notes = planSubjectRead('child').tables.find((t) => t.map.table === 'notes')!;
    expect(notes.review?.reason).toBe('Sensitive notes may hold third parties’ data or be exempt (serious harm); released only after review.');
    const concerns = planSubjectRead('child').tables.find((t) => t.map.table === 'safeguarding_concerns')!;
    expect(concerns.review?.reason).toBe('May be exempt (serious harm, third-party data); released only after review.');
  });
});

describe('parseReleases (--include, --reviewer)', () => {
  it('accepts known categories with a reviewer, and nothing without one', () => {
    expect(parseReleases(['safeguarding', 'third_party_records'], 'J. Patel')).toEqual(['safeguarding', 'third_party_records']);
    expect(parseReleases([], null)).toEqual([]);
    expect(parseReleases([], undefined)).toEqual([]);
    expect(Object.keys(REVIEW_CATEGORIES)).toEqual(['safeguarding', 'sensitive_notes', 'third_party_records']);
  });

  it('refuses an unknown category, naming the known ones', () => {
    expect(() => parseReleases(['safeguarding', 'everything'], 'J. Patel')).toThrow(
      new RefusedError('--include everything: no such category', 'Categories: safeguarding, sensitive_notes, third_party_records'),
    );
    // Inherited object keys are not categories.
    for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      expect(() => parseReleases([name], 'J. Patel')).toThrow(new RefusedError(`--include ${name}: no such category`, 'Categories: safeguarding, sensitive_notes, third_party_records'));
    }
  });

  it('refuses a release without a reviewer, or with a blank one', () => {
    const refusal = new RefusedError('--include releases withheld records, so it needs --reviewer "who reviewed them"');
    for (const reviewer of [null, undefined, '', '   ']) expect(() => parseReleases(['sensitive_notes'], reviewer)).toThrow(refusal);
  });
});
