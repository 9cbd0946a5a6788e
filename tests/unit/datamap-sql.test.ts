// The data map's rules as SQL and as the database's guard reads them
// (src/datamap/anonymise.ts, src/datamap/rules.ts), compiled without a
// database: the SQL that anonymises a row and tests that nothing is left,
// and the rule of every tenant table that `db migrate` writes to
// app.datamap_rules. A change to the data map shows here as a diff to review.
import { describe, expect, it } from 'vitest';
import { anonymisation, anonymisedSql, anonymiseSet, REDACTED } from '../../src/datamap/anonymise.js';
import { dataMap } from '../../src/datamap/index.js';
import { dataMapRules, type DataMapRule } from '../../src/datamap/rules.js';
import { compileOnly } from '../support/compile-only.js';

const db = compileOnly;
const EVERY = { body: 'redact', dob: 'generalise_date', upn: 'pseudonym', phone: 'null' } as const;

describe('anonymisation as SQL', () => {
  it('keeps out the columns a table keeps', () => {
    expect(anonymisation({ a: 'keep', b: 'redact', c: 'null', d: 'keep', e: 'pseudonym', f: 'generalise_date' })).toEqual({ b: 'redact', c: 'null', e: 'pseudonym', f: 'generalise_date' });
    expect(anonymisation({ a: 'keep' })).toEqual({});
  });

  it('the SET list: redacted text, the year’s last day, the keyed pseudonym of the row’s id, null; empty stays empty', () => {
    const c = anonymiseSet(EVERY, 'id').compile(db);
    expect(c.sql).toBe("\"body\" = case when \"body\" is null then null else $1 end, \"dob\" = (date_trunc('year', \"dob\") + interval '1 year - 1 day')::date, \"upn\" = case when \"upn\" is null then null else app.erasure_pseudonym(\"org_id\", \"id\") end, \"phone\" = null");
    expect(c.parameters).toEqual([REDACTED]);
    expect(REDACTED).toBe('[redacted]');
    expect(anonymiseSet({ ref: 'pseudonym' }, 'chain_seq').compile(db).sql).toBe('"ref" = case when "ref" is null then null else app.erasure_pseudonym("org_id", "chain_seq") end');
  });

  it('whether nothing is left to change: each column at its anonymised value or null; true when nothing is personal', () => {
    const c = anonymisedSql(EVERY, 'id').compile(db);
    expect(c.sql).toBe('((t."body" is null or t."body"::text = $1) and (t."dob" is null or (extract(month from t."dob") = 12 and extract(day from t."dob") = 31)) and (t."upn" is null or t."upn"::text = app.erasure_pseudonym("t"."org_id", "t"."id")) and t."phone" is null)');
    expect(c.parameters).toEqual([REDACTED]);
    expect(anonymisedSql({}, 'id').compile(db).sql).toBe('true');
    expect(anonymisedSql({ phone: 'null' }, 'id').compile(db).sql).toBe('(t."phone" is null)');
  });
});

/** A rule on one line: category/clock/statutory clock | own references | hold columns | array hold columns | key | id | anonymised columns. */
const line = (r: DataMapRule) =>
  `${r.category}/${r.clock}/${r.statutoryClock} | own ${r.ownRefs.map((o) => `${o.column}${o.array ? '[]' : ''}${o.org_column ? `@${o.org_column}` : ''}`).join(',')}`
  + ` | hold ${r.holdColumns.join(',')} | holdArr ${r.holdArrayColumns.join(',')} | ${r.hasSite ? 'site' : 'org'} | ${r.idColumn}`
  + ` | ${Object.entries(r.anonymise).map(([k, v]) => `${k}:${v}`).join(',')}`;

describe('the rules db migrate writes for the database’s guard', () => {
  it('one per tenant table of the data map, pinned', () => {
    expect(Object.fromEntries(dataMapRules().map((r) => [r.table, line(r)]))).toEqual({
  organisations: "null/null/null | own  | hold  | holdArr  | org | org_id | ",
  sites: "null/null/null | own  | hold  | holdArr  | site | site_id | ",
  users: "null/null/null | own id | hold id | holdArr  | site | id | email:pseudonym,full_name:redact,phone:null,date_of_birth:null,job_title:null",
  role_assignments: "access/created_at/null | own user_id@user_org_id | hold user_id | holdArr  | site | id | ",
  children: "pupil_record/left_on/null | own id | hold id | holdArr  | site | id | full_name:redact,preferred_name:null,date_of_birth:generalise_date,upn:null,medical_notes:null",
  guardianships: "pupil_record/child_left_on/null | own child_id,guardian_id | hold child_id,guardian_id | holdArr  | site | id | ",
  groups: "null/null/null | own  | hold  | holdArr  | site | id | ",
  group_memberships: "null/null/null | own child_id,staff_id | hold child_id,staff_id | holdArr  | site | id | ",
  attendance_records: "attendance/session_date/null | own child_id | hold child_id,recorded_by | holdArr  | site | id | correction_reason:redact",
  notes: "notes/created_at/null | own child_id | hold child_id,author_id | holdArr  | site | id | body:redact",
  safeguarding_concerns: "safeguarding/child_25th_birthday/child_25th_birthday | own child_id | hold child_id,reported_by | holdArr  | site | id | ",
  wellbeing_checkins: "wellbeing/checked_in_at/null | own child_id | hold child_id,recorded_by | holdArr  | site | id | comment:redact",
  rota_shifts: "staff_rota/ends_at/null | own staff_id | hold staff_id | holdArr  | site | id | ",
  staff_activity: "staff_activity/occurred_at/null | own staff_id,child_id | hold staff_id,child_id | holdArr  | site | id | ",
  media_files: "media/created_at/null | own child_id | hold child_id,uploaded_by | holdArr  | site | id | caption:redact",
  audit_events: "audit_events/occurred_at/null | own subject_ids[] | hold  | holdArr subject_ids | site | id | ",
  audit_chain: "null/null/null | own  | hold  | holdArr  | org | chain_seq | ",
  audit_checkpoints: "null/null/null | own  | hold  | holdArr  | org | id | ",
  audit_anchors: "null/null/null | own  | hold  | holdArr  | org | chain_seq | ",
  retention_policies: "null/null/null | own  | hold  | holdArr  | site | id | ",
  access_policies: "null/null/null | own  | hold  | holdArr  | org | role | ",
  legal_holds: "null/null/null | own subject_id | hold subject_id | holdArr  | site | id | ",
  retention_runs: "null/null/null | own  | hold  | holdArr  | site | id | ",
  dsar_requests: "dsar/created_at/null | own subject_id | hold subject_id | holdArr  | site | id | ",
  erasures: "null/null/null | own subject_id | hold subject_id | holdArr  | site | id | ",
    });
  });

  it('hold every column that names a person, and count as own only what is about them, not made by them', () => {
    for (const m of dataMap.filter((x) => x.tenantKey !== null)) {
      const rule = dataMapRules().find((r) => r.table === m.table)!;
      expect([...rule.holdColumns, ...rule.holdArrayColumns].sort(), m.table).toEqual(m.subjects.map((s) => s.column).sort());
      expect(rule.ownRefs.map((o) => o.column), m.table).toEqual(m.subjects.filter((s) => s.relation !== 'by').map((s) => s.column));
    }
    expect(dataMapRules().map((r) => r.table)).toEqual(dataMap.filter((m) => m.tenantKey !== null).map((m) => m.table));
  });
});
