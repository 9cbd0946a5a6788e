// The SQL mutation operators (scripts/sql-mutants.mjs): each finds what it
// should in a policy or function body and nothing in strings, comments or
// look-alike operators.
import { describe, expect, it } from 'vitest';
import { bodyEdits, policyEdits, segments, spread } from '../../scripts/sql-mutants.mjs';

const found = (text: string, edits: ReturnType<typeof bodyEdits>) =>
  edits.map((e) => [e.kind, text.slice(e.start, e.end), e.replacement]);

describe('SQL mutants', () => {
  it('tells code from strings, dollar quotes and comments', () => {
    const text = "a < 'b < c' || $q$d < e$q$ -- f < g\n/* h */ i";
    expect(segments(text).map((s) => [s.kind, text.slice(s.start, s.end)])).toEqual([
      ['code', 'a < '],
      ['string', "'b < c'"],
      ['code', ' || '],
      ['string', '$q$d < e$q$'],
      ['code', ' '],
      ['comment', '-- f < g'],
      ['code', '\n'],
      ['comment', '/* h */'],
      ['code', ' i'],
    ]);
  });

  it('flips < and >= in code, not <>, ->>, => or a string', () => {
    const body = "if a < b and c >= d and e <> f and j->>'k' = 'x<y' then perform g(p => 1); end if; -- x < y";
    expect(found(body, bodyEdits(body).filter((e) => e.kind === 'flip'))).toEqual([
      ['flip', '<', '<='],
      ['flip', '>=', '>'],
    ]);
  });

  it('drops a raise up to its own semicolon, past one in its message', () => {
    const body = "if n > 0 then\n  raise exception 'no; really %', x using errcode = 'TC001';\nend if;";
    expect(found(body, bodyEdits(body).filter((e) => e.kind === 'drop-raise'))).toEqual([
      ['drop-raise', "raise exception 'no; really %', x using errcode = 'TC001';", 'null;'],
    ]);
  });

  it('makes an org_id comparison true, not an assignment or a named argument', () => {
    const body = "v_org_id := p_org_id; perform f(p_org_id => x);\nselect 1 from t where t.org_id = p_org_id and format('h.org_id = t.org_id')";
    expect(found(body, bodyEdits(body).filter((e) => e.kind === 'function-org'))).toEqual([
      ['function-org', 't.org_id = p_org_id', 'true'],
      ['function-org', 'h.org_id = t.org_id', 'true'],
    ]);
  });

  it('removes an expiry or a hold condition', () => {
    const body = 'where (ra.expires_at is null or pg_catalog.statement_timestamp() < ra.expires_at)\n  and exists (select 1 from public.legal_holds h where h.released_at is null)';
    expect(found(body, bodyEdits(body).filter((e) => e.kind === 'hold-expiry'))).toEqual([
      ['hold-expiry', 'ra.expires_at is null', 'true'],
      ['hold-expiry', 'pg_catalog.statement_timestamp() < ra.expires_at', 'true'],
      ['hold-expiry', 'exists (select 1 from public.legal_holds h where h.released_at is null)', 'false'],
      ['hold-expiry', 'h.released_at is null', 'true'],
    ]);
  });

  it("drops a policy's tenant-key matches, one at a time", () => {
    const expr =
      '((org_id, site_id) IN ( SELECT x.org_id,\n    x.site_id\n   FROM app.user_sites(NULL::text[]) x(org_id, site_id))) OR (org_id = ANY (( SELECT app.operator_org_ids() AS operator_org_ids)::uuid[])) OR (kind <> \'x\'::text)';
    expect(found(expr, policyEdits(expr))).toEqual([
      ['policy-org', '(org_id = ANY (( SELECT app.operator_org_ids() AS operator_org_ids)::uuid[]))', 'true'],
      ['policy-org', '(org_id, site_id) IN ( SELECT x.org_id,\n    ', '(site_id) IN ( SELECT '],
    ]);
  });

  it('spreads a capped choice over the kinds and along each list', () => {
    const mutants = [
      ...Array.from({ length: 10 }, (_, i) => ({ kind: 'flip', id: `f${i}` })),
      ...Array.from({ length: 2 }, (_, i) => ({ kind: 'drop-raise', id: `r${i}` })),
    ];
    expect(spread(mutants, 5).map((m) => m.id)).toEqual(['r0', 'f1', 'r1', 'f5', 'f8']);
    expect(spread(mutants, 6).map((m) => m.id)).toEqual(['r0', 'f1', 'r1', 'f6', 'f3', 'f8']);
    // Everything chosen, a run its budget stops after six has tried the list's start, middle and end.
    expect(spread(mutants, 12).map((m) => m.id).slice(0, 6)).toEqual(['r0', 'f0', 'r1', 'f5', 'f2', 'f7']);
  });
});
