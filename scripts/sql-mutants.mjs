// The SQL mutants: generated from the migrated catalog, not from a hand list.
// Each mutant is one textual change to one row-level security policy
// (pg_policies) or one function of the `app` schema (pg_get_functiondef:
// guards, triggers and SECURITY DEFINER functions), with the statements that
// plant it in a database. scripts/mutate-sql.mjs applies them and runs tests.
//
// Operators:
//   policy-org      a tenant-key match dropped from a policy: an `(org_id = …)`
//                   or `(user_org_id = org_id)` conjunct becomes `true`; a
//                   `(org_id, site_id…) IN (SELECT x.org_id, x.site_id…)` loses
//                   its org_id on both sides.
//   function-org    an `… org_id = …` comparison in a function becomes `true`.
//   flip            a comparison flipped: `<` ↔ `<=`, `>` ↔ `>=` (code only,
//                   not inside string literals).
//   drop-raise      a `raise exception …;` becomes `null;`.
//   hold-expiry     a condition on a hold or an expiry (expires_at, released_at,
//                   revoked_at, ended_at, a legal_holds lookup) becomes `true`
//                   (an `exists (… legal_holds …)` becomes `false`).
/** Splits SQL text into code, string and comment segments. */
export function segments(text) {
  const out = [];
  let i = 0;
  let start = 0;
  const push = (kind, end) => {
    if (end > start) out.push({ kind, start, end });
    start = end;
  };
  while (i < text.length) {
    const c = text[i];
    if (c === '-' && text[i + 1] === '-') {
      push('code', i);
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl;
      push('comment', i);
    } else if (c === '/' && text[i + 1] === '*') {
      push('code', i);
      const close = text.indexOf('*/', i + 2);
      i = close < 0 ? text.length : close + 2;
      push('comment', i);
    } else if (c === "'") {
      push('code', i);
      const escaped = /[eE]/.test(text[i - 1] ?? '') && !/[\w]/.test(text[i - 2] ?? '');
      i++;
      while (i < text.length) {
        if (escaped && text[i] === '\\') i += 2;
        else if (text[i] === "'" && text[i + 1] === "'") i += 2;
        else if (text[i] === "'") {
          i++;
          break;
        } else i++;
      }
      push('string', i);
    } else if (c === '$') {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i));
      if (m && !/[\w]/.test(text[i - 1] ?? '')) {
        push('code', i);
        const close = text.indexOf(m[0], i + m[0].length);
        i = close < 0 ? text.length : close + m[0].length;
        push('string', i);
      } else i++;
    } else if (c === '"') {
      const close = text.indexOf('"', i + 1);
      i = close < 0 ? text.length : close + 1;
    } else i++;
  }
  push('code', text.length);
  return out;
}

function inCode(segs, index) {
  return segs.some((s) => s.kind === 'code' && index >= s.start && index < s.end);
}
function inComment(segs, index) {
  return segs.some((s) => s.kind === 'comment' && index >= s.start && index < s.end);
}

/** The index of the parenthesis closing the one at open, or -1. */
function closingParen(text, open) {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return i;
  }
  return -1;
}

const ident = String.raw`(?:[A-Za-z_][A-Za-z0-9_]*\.)*[A-Za-z_][A-Za-z0-9_]*`;
// An operand: a (qualified) name, optionally called with arguments nested one level.
const operand = String.raw`${ident}(?:\s*\((?:[^()]|\([^()]*\))*\))?`;

/** Each `{ start, end, replacement, kind, note }` edit a body admits. */
export function bodyEdits(body) {
  const segs = segments(body);
  const edits = [];
  const lineOf = (i) => body.slice(0, i).split('\n').length;

  // flip: < ↔ <=, > ↔ >=, in code only.
  for (const s of segs.filter((x) => x.kind === 'code')) {
    for (let i = s.start; i < s.end; i++) {
      const c = body[i];
      const prev = body[i - 1] ?? '';
      const next = body[i + 1] ?? '';
      if (c !== '<' && c !== '>') continue;
      if (c === '<' && next === '>') {
        i++;
        continue;
      }
      if ('<>-=@!'.includes(prev)) continue;
      if (next === '=') {
        edits.push({ kind: 'flip', start: i, end: i + 2, replacement: c, line: lineOf(i) });
        i++;
      } else if (!'<>@'.includes(next)) {
        edits.push({ kind: 'flip', start: i, end: i + 1, replacement: `${c}=`, line: lineOf(i) });
      }
    }
  }

  // drop-raise: `raise exception …;` → `null;` (the `;` found in code).
  for (const m of body.matchAll(/\braise\s+exception\b/gi)) {
    if (!inCode(segs, m.index)) continue;
    let end = -1;
    for (let i = m.index; i < body.length; i++) if (body[i] === ';' && inCode(segs, i)) { end = i + 1; break; }
    if (end > 0) edits.push({ kind: 'drop-raise', start: m.index, end, replacement: 'null;', line: lineOf(m.index) });
  }

  // function-org: `x.org_id = y` → true (code and dynamic-SQL strings alike).
  const orgMatch = new RegExp(String.raw`(?<![\w.:])(${ident})\s*=(?![=>])\s*(any\s*\((?:[^()]|\([^()]*\))*\)|${operand})`, 'gi');
  for (const m of body.matchAll(orgMatch)) {
    if (inComment(segs, m.index)) continue;
    if (!/org_id$/i.test(m[1]) && !/org_id$/i.test(m[2])) continue;
    edits.push({ kind: 'function-org', start: m.index, end: m.index + m[0].length, replacement: 'true', line: lineOf(m.index) });
  }

  // hold-expiry: a comparison or null test on a hold or expiry column → true.
  const holdWord = /(expires_at|released_at|revoked_at|ended_at|hold)/i;
  const nullTest = new RegExp(String.raw`(?<![\w.])(${operand})\s+is\s+(?:not\s+)?null\b`, 'gi');
  for (const m of body.matchAll(nullTest)) {
    if (inComment(segs, m.index) || !holdWord.test(m[1])) continue;
    edits.push({ kind: 'hold-expiry', start: m.index, end: m.index + m[0].length, replacement: 'true', line: lineOf(m.index) });
  }
  const compare = new RegExp(String.raw`(?<![\w.])(${operand})\s*(<=|>=|<(?![>@<])|>(?![>=])|=(?![>]))\s*(${operand})`, 'gi');
  for (const m of body.matchAll(compare)) {
    if (inComment(segs, m.index)) continue;
    if (!holdWord.test(m[1]) && !holdWord.test(m[3])) continue;
    if (/:$/.test(body.slice(0, m.index).trimEnd())) continue;
    edits.push({ kind: 'hold-expiry', start: m.index, end: m.index + m[0].length, replacement: 'true', line: lineOf(m.index) });
  }
  for (const m of body.matchAll(/\bexists\s*\(/gi)) {
    if (!inCode(segs, m.index)) continue;
    const open = m.index + m[0].length - 1;
    const close = closingParen(body, open);
    if (close > 0 && /legal_holds/i.test(body.slice(open, close))) {
      edits.push({ kind: 'hold-expiry', start: m.index, end: close + 1, replacement: 'false', line: lineOf(m.index) });
    }
  }
  return edits.sort((a, b) => a.start - b.start || a.end - b.end);
}

/** Each edit a policy expression (pg_policies.qual / with_check) admits. */
export function policyEdits(expr) {
  const edits = [];
  for (let i = 0; i < expr.length; i++) {
    if (expr[i] !== '(') continue;
    const close = closingParen(expr, i);
    if (close < 0) continue;
    const inner = expr.slice(i + 1, close);
    if (/^\s*(?:[a-z_]+\.)?[a-z_]*org_id\s*=\s*/i.test(inner) || /^\s*[a-z_.]+\s*=\s*(?:[a-z_]+\.)?[a-z_]*org_id\s*$/i.test(inner)) {
      edits.push({ kind: 'policy-org', start: i, end: close + 1, replacement: 'true' });
    }
  }
  for (const m of expr.matchAll(/\(org_id, ([^()]+)\) IN \( SELECT ([a-z_]+)\.org_id,\s*/gi)) {
    edits.push({ kind: 'policy-org', start: m.index, end: m.index + m[0].length, replacement: `(${m[1]}) IN ( SELECT ` });
  }
  return edits;
}

function apply(text, edit) {
  return text.slice(0, edit.start) + edit.replacement + text.slice(edit.end);
}

function oneLine(text, max = 90) {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

const qi = (name) => `"${name.replace(/"/g, '""')}"`;

/** Every mutant of the catalog the client is connected to. */
export async function catalogMutants(client) {
  const mutants = [];
  const policies = await client.query(
    `select schemaname, tablename, policyname, qual, with_check from pg_catalog.pg_policies order by 1, 2, 3`,
  );
  for (const p of policies.rows) {
    const target = `${qi(p.schemaname)}.${qi(p.tablename)}`;
    for (const [clause, expr] of [['using', p.qual], ['with check', p.with_check]]) {
      if (!expr) continue;
      policyEdits(expr).forEach((edit, n) => {
        const mutated = apply(expr, edit);
        mutants.push({
          id: `policy ${p.schemaname}.${p.tablename}.${p.policyname} ${clause} #${n + 1}`,
          kind: edit.kind,
          object: `${p.schemaname}.${p.tablename}.${p.policyname}`,
          change: `${clause}: \`${oneLine(expr.slice(edit.start, edit.end), 70)}\` → \`${edit.replacement.trim()}\``,
          statements: [`alter policy ${qi(p.policyname)} on ${target} ${clause} (${mutated})`],
        });
      });
    }
  }

  const functions = await client.query(
    `select p.oid::regprocedure::text as signature, pg_catalog.pg_get_functiondef(p.oid) as def,
            pg_catalog.obj_description(p.oid, 'pg_proc') as comment
       from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
       join pg_catalog.pg_language l on l.oid = p.prolang
      where n.nspname = 'app' and l.lanname in ('sql', 'plpgsql') and p.prokind = 'f'
      order by 1`,
  );
  for (const f of functions.rows) {
    const m = /\bAS (\$[A-Za-z_]*\$)\n?/.exec(f.def);
    if (!m) continue;
    const bodyStart = m.index + m[0].length;
    const bodyEnd = f.def.lastIndexOf(m[1]);
    const body = f.def.slice(bodyStart, bodyEnd);
    // The doctor pins reviewed definers' bodies by sha256 in their comment: re-pin
    // the mutant, as a migration that changed the body would, so the doctor's pin
    // check does not kill every function mutant by itself.
    // PostgreSQL computes the new pin from the body it stored, as the doctor does.
    const fn = `${literal(f.signature)}::pg_catalog.regprocedure`;
    const repin = f.comment && /sha256=[0-9a-f]{64}/.test(f.comment)
      ? [
          `do $pin$ begin execute pg_catalog.format('comment on function %s is %L', ${fn}, pg_catalog.regexp_replace(` +
            `pg_catalog.obj_description(${fn}, 'pg_proc'), 'sha256=[0-9a-f]{64}', 'sha256=' || pg_catalog.encode(pg_catalog.sha256(` +
            `pg_catalog.convert_to(coalesce((select p.prosrc from pg_catalog.pg_proc p where p.oid = ${fn}), ''), 'UTF8')), 'hex'))); end $pin$`,
        ]
      : [];
    const seen = new Set();
    const counters = {};
    for (const edit of bodyEdits(body).sort((a, b) => a.start - b.start || a.end - b.end)) {
      const key = `${edit.kind}:${edit.start}:${edit.end}`;
      if (seen.has(key)) continue;
      seen.add(key);
      counters[edit.kind] = (counters[edit.kind] ?? 0) + 1;
      const mutatedBody = apply(body, edit);
      mutants.push({
        id: `function ${f.signature} ${edit.kind} #${counters[edit.kind]}`,
        kind: edit.kind,
        object: f.signature,
        change: edit.kind === 'flip'
          ? `line ${edit.line}: \`${body.slice(edit.start, edit.end)}\` → \`${edit.replacement}\` in \`${oneLine(lineText(body, edit.start), 70)}\``
          : `line ${edit.line}: \`${oneLine(body.slice(edit.start, edit.end), 70)}\` → \`${edit.replacement}\``,
        statements: [
          f.def.slice(0, bodyStart) + mutatedBody + f.def.slice(bodyEnd),
          ...repin,
        ],
      });
    }
  }
  return mutants;
}

function lineText(text, index) {
  const from = text.lastIndexOf('\n', index - 1) + 1;
  const to = text.indexOf('\n', index);
  return text.slice(from, to < 0 ? text.length : to);
}

function literal(text) {
  return `'${text.replace(/'/g, "''")}'`;
}

/**
 * At most max mutants, spread over the kinds (round robin) and, within a
 * kind, evenly over the list, in an order that takes each kind in turn and,
 * within a kind, spreads every prefix along the list: the same catalog
 * gives the same choice.
 */
export function spread(mutants, max) {
  const byKind = new Map();
  for (const m of mutants) byKind.set(m.kind, [...(byKind.get(m.kind) ?? []), m]);
  const kinds = [...byKind.keys()].sort();
  const quota = Object.fromEntries(kinds.map((k) => [k, 0]));
  let left = Math.min(max, mutants.length);
  while (left > 0) {
    for (const k of kinds) {
      if (left > 0 && quota[k] < byKind.get(k).length) {
        quota[k]++;
        left--;
      }
    }
  }
  const picks = kinds.map((k) => {
    const list = byKind.get(k);
    const n = quota[k];
    const even = Array.from({ length: n }, (_, i) => list[Math.floor(((i + 0.5) * list.length) / n)]);
    // In van der Corput order (0, 1/2, 1/4, 3/4, …), so that a run its time budget
    // stops early has still tried mutants from along the whole list, not its start.
    const order = [];
    const taken = new Set();
    for (let j = 0; order.length < n; j++) {
      const at = Math.floor(vanDerCorput(j) * n);
      if (!taken.has(at)) {
        taken.add(at);
        order.push(even[at]);
      }
    }
    return order;
  });
  // Interleaved, so a run stopped early by its time budget has tried every kind.
  const chosen = [];
  for (let i = 0; chosen.length < picks.flat().length; i++) for (const p of picks) if (i < p.length) chosen.push(p[i]);
  return chosen;
}

/** The i-th point of the base-2 van der Corput sequence: i's binary digits mirrored after the point. */
function vanDerCorput(i) {
  let x = 0;
  for (let bit = 0.5; i > 0; i >>= 1, bit /= 2) if (i & 1) x += bit;
  return x;
}
