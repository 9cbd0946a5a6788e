// retention sweep (docs/retention.md#sweep): per organisation, under an
// advisory lock held on one connection for the whole sweep, and per site,
// category and table with a policy, keyset batches of rows past the cut-off
// and not held. Each batch is one short transaction (lock_timeout, FOR UPDATE
// SKIP LOCKED): archive the rows, delete or anonymise them, advance the run's
// cursor. A run killed at any moment is resumed by the next sweep with the
// same cut-off, so the end state is the one an uninterrupted run reaches.
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import { setOperatorContext } from '../db/operator-session.js';
import { RefusedError } from '../errors.js';
import { anonymisedSql, clockSql, heldSql, sweepRefusal, type CategoryTable, type RetentionAction } from './categories.js';
import { anonymiseSet } from '../datamap/anonymise.js';
import { policyScopes } from './plan.js';
import { isDerivedClock } from '../datamap/index.js';

type Trx = Transaction<Database>;


export interface UnitReport {
  readonly site: string | null;
  readonly category: string;
  readonly table: string;
  readonly action: RetentionAction | 'skipped';
  readonly runId: string | null;
  readonly resumed: boolean;
  readonly cutoff: string | null;
  readonly swept: number;
  readonly held: number;
  /** Due rows still there at the end: locked by someone else, or arrived meanwhile; the next sweep takes them. */
  readonly remaining: number;
  readonly batches: number;
  readonly longestBatchMs: number;
  readonly status: 'completed' | 'interrupted' | 'failed' | 'skipped';
  readonly note: string | null;
}

export interface SweepOptions {
  readonly categories?: readonly string[];
  readonly batchSize: number;
  /** Stop (interrupted, resumable) after this long. */
  readonly maxDurationMs?: number;
  /** When the whole sweep started (Date.now()), so --max-duration spans every organisation. */
  readonly startedAt?: number;
  readonly onProgress?: (p: { unit: string; swept: number; total: number }) => void;
}

interface Unit {
  siteId: string | null;
  siteSlug: string | null;
  category: string;
  table: CategoryTable;
  action: RetentionAction;
  keepFor: string;
}

async function units(trx: Trx, orgId: string, categories?: readonly string[]): Promise<Array<Unit | (Omit<Unit, 'action' | 'table'> & { table: CategoryTable; skip: string })>> {
  return (await policyScopes(trx, [orgId], categories)).map((p) => {
    const common = { siteId: p.siteId, siteSlug: p.siteSlug, category: p.category, table: p.table, keepFor: p.keepFor };
    const skip = sweepRefusal(p.category, p.action, p.own) ??
      (p.changedByYouRecently ? 'you set or changed this policy less than 24 hours ago: another operator sweeps under it, or it waits (docs/retention.md)' : null);
    return skip ? { ...common, skip } : { ...common, action: p.action };
  });
}

function scopeSql(u: { siteId: string | null }, orgId: string) {
  return sql`t.org_id = ${orgId}::uuid and ${u.siteId ? sql`t.site_id = ${u.siteId}::uuid` : sql`t.site_id is null`}`;
}

function dueSql(u: Unit, orgId: string, cutoff: string) {
  return sql`${scopeSql(u, orgId)} and ${clockSql(u.table)} <= ${cutoff}::timestamptz and not ${heldSql(u.table, u.category)}
    ${u.action === 'anonymise' ? sql`and not ${anonymisedSql(u.table)}` : sql``}`;
}

/**
 * The keyset order: the clock column itself (so its index serves the batch
 * query) and the id; derived clocks fall back to the clock expression.
 */
async function keysetOf(trx: Trx, table: CategoryTable): Promise<{ key: ReturnType<typeof clockSql>; cast: string }> {
  if (isDerivedClock(table.clock)) return { key: clockSql(table), cast: 'timestamptz' };
  const r = await sql<{ t: string }>`select format_type(a.atttypid, a.atttypmod) as t from pg_attribute a
    where a.attrelid = ${`public.${table.table}`}::regclass and a.attname = ${table.clock}`.execute(trx);
  return { key: sql`t.${sql.ref(table.clock)}`, cast: r.rows[0]!.t };
}

/** Self-referencing foreign key columns (a correction naming the row it corrects): kept in the same batch. */
async function selfReferences(trx: Trx, table: string): Promise<string[]> {
  const r = await sql<{ column: string }>`
    select a.attname as column from pg_constraint k
    join pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[array_length(k.conkey, 1)]
    where k.contype = 'f' and k.conrelid = ${`public.${table}`}::regclass and k.confrelid = k.conrelid`.execute(trx);
  return r.rows.map((x) => x.column);
}

/**
 * Sweeps one organisation. `db` must be bound to one connection
 * (Kysely.connection()), which holds the organisation's advisory lock.
 */
export async function sweepOrganisation(
  db: Kysely<Database>,
  session: { readonly id: string },
  org: { readonly id: string; readonly slug: string },
  options: SweepOptions,
): Promise<UnitReport[]> {
  const locked = await sql<{ ok: boolean }>`select pg_try_advisory_lock(hashtextextended(${`trustctl.retention.${org.id}`}, 0)) as ok`.execute(db);
  if (!locked.rows[0]?.ok) {
    throw new RefusedError(`a retention sweep is already running for ${org.slug}`, 'Wait for it to finish (trustctl retention plan shows what is left), then run again');
  }
  const started = options.startedAt ?? Date.now();
  const inTrx = <T>(fn: (trx: Trx) => Promise<T>): Promise<T> =>
    db.transaction().execute(async (trx) => {
      await setOperatorContext(trx, session.id);
      await sql`set local lock_timeout = '2s'`.execute(trx);
      return fn(trx);
    });
  const reports: UnitReport[] = [];
  try {
    const list = await inTrx((trx) => units(trx, org.id, options.categories));
    for (const u of list) {
      const base = { site: u.siteSlug, category: u.category, table: u.table.table };
      if ('skip' in u) {
        reports.push({ ...base, action: 'skipped', runId: null, resumed: false, cutoff: null, swept: 0, held: 0, remaining: 0, batches: 0, longestBatchMs: 0, status: 'skipped', note: u.skip });
        continue;
      }
      if (options.maxDurationMs !== undefined && Date.now() - started > options.maxDurationMs) {
        reports.push({ ...base, action: u.action, runId: null, resumed: false, cutoff: null, swept: 0, held: 0, remaining: 0, batches: 0, longestBatchMs: 0, status: 'interrupted', note: 'not started: --max-duration reached' });
        continue;
      }
      reports.push(u.category === 'audit_events' ? await pruneAuditTrail(inTrx, session, org, u) : await sweepUnit(inTrx, session, org, u, options, started));
    }
  } finally {
    await sql`select pg_advisory_unlock(hashtextextended(${`trustctl.retention.${org.id}`}, 0))`.execute(db);
  }
  return reports;
}

async function sweepUnit(
  inTrx: <T>(fn: (trx: Trx) => Promise<T>) => Promise<T>,
  session: { readonly id: string },
  org: { readonly id: string; readonly slug: string },
  u: Unit,
  options: SweepOptions,
  started: number,
): Promise<UnitReport> {
  const label = `${org.slug}/${u.siteSlug ?? '(organisation)'} ${u.category} ${u.table.table}`;
  // Resume an unfinished run (same cut-off, from its cursor) if the policy is
  // the one it started under; otherwise close it and start afresh.
  const policy = { keep_for: u.keepFor, clock: u.table.clock, action: u.action };
  const run = await inTrx(async (trx) => {
    const open = await sql<{ id: string; cutoff: Date; cursor: { clock: string; id: string } | null; counts: Record<string, unknown> }>`
      select id, cutoff, cursor, counts from public.retention_runs
      where org_id = ${org.id}::uuid and site_id is not distinct from ${u.siteId}::uuid and category = ${u.category}
        and table_name = ${u.table.table} and status in ('running', 'interrupted') for update`.execute(trx);
    const found = open.rows[0];
    const was = found?.counts.policy as Partial<typeof policy> | undefined;
    if (found && was && was.keep_for === policy.keep_for && was.clock === policy.clock && was.action === policy.action) {
      await sql`update public.retention_runs set status = 'running', operator_session_id = ${session.id}::uuid
        where org_id = ${org.id}::uuid and id = ${found.id}::uuid`.execute(trx);
      return { ...found, resumed: true };
    }
    if (found) {
      await sql`update public.retention_runs set status = 'failed', finished_at = statement_timestamp(),
        error = 'superseded: the policy changed after this run stopped; a new run uses the current policy'
        where org_id = ${org.id}::uuid and id = ${found.id}::uuid`.execute(trx);
    }
    const made = await sql<{ id: string; cutoff: Date }>`
      insert into public.retention_runs (org_id, site_id, category, table_name, action, status, cutoff, counts, operator_session_id)
      values (${org.id}::uuid, ${u.siteId}::uuid, ${u.category}, ${u.table.table}, ${u.action}, 'running',
        statement_timestamp() - ${u.keepFor}::interval, ${JSON.stringify({ policy })}::jsonb, ${session.id}::uuid)
      returning id, cutoff`.execute(trx);
    return { ...made.rows[0]!, cursor: null, counts: { policy } as Record<string, unknown>, resumed: false };
  });
  const cutoff = run.cutoff.toISOString();
  const t = sql.table(`public.${u.table.table}`).as('t');
  const { held, due } = await inTrx(async (trx) => {
    const r = await sql<{ held: string; due: string }>`
      select count(*) filter (where ${heldSql(u.table, u.category)}) as held, count(*) filter (where not ${heldSql(u.table, u.category)}) as due
      from ${t} where ${scopeSql(u, org.id)} and ${clockSql(u.table)} <= ${cutoff}::timestamptz
        ${u.action === 'anonymise' ? sql`and not ${anonymisedSql(u.table)}` : sql``}`.execute(trx);
    return { held: Number(r.rows[0]!.held), due: Number(r.rows[0]!.due) };
  });
  const { selfRefs, keyset } = await inTrx(async (trx) => ({
    selfRefs: await selfReferences(trx, u.table.table),
    keyset: await keysetOf(trx, u.table),
  }));

  let cursor = run.cursor;
  let swept = Number(run.counts.swept ?? 0);
  let batches = 0;
  let longest = 0;
  let status: UnitReport['status'] = 'completed';
  let note: string | null = null;
  for (;;) {
    if (options.maxDurationMs !== undefined && Date.now() - started > options.maxDurationMs) {
      status = 'interrupted';
      note = '--max-duration reached; the next sweep resumes here';
      break;
    }
    const t0 = Date.now();
    let n: number;
    try {
      n = await inTrx(async (trx) => {
        // A hold placed while this batch runs waits for it, and covers the next.
        await sql`lock table public.legal_holds in share mode`.execute(trx);
        // The database checks the run against the policy in force, and every
        // row this batch changes against the run (migration 0017).
        await sql`select app.begin_retention_batch(${run.id}::uuid)`.execute(trx);
        const after = cursor
          ? sql`and (${keyset.key}, t.id) > (cast(${cursor.clock} as ${sql.raw(keyset.cast)}), ${cursor.id}::uuid)`
          : sql``;
        const batch = await sql<{ id: string; clock: string }>`
          select t.id::text as id, ${keyset.key}::text as clock from ${t}
          where ${dueSql(u, org.id, cutoff)} ${after}
          order by ${keyset.key}, t.id limit ${options.batchSize}
          for update of t skip locked`.execute(trx);
        if (batch.rows.length === 0) return 0;
        let ids = batch.rows.map((r) => r.id);
        for (const col of selfRefs) {
          // Rows that refer to these (corrections) go with them when they are due
          // too and free; an original whose referring rows cannot go stays.
          const extra = await sql<{ id: string }>`
            select t.id::text as id from ${t} where ${dueSql(u, org.id, cutoff)} and t.${sql.ref(col)} = any (${ids}::uuid[])
              and not (t.id = any (${ids}::uuid[])) for update of t skip locked`.execute(trx);
          ids = [...ids, ...extra.rows.map((r) => r.id)];
          for (;;) {
            const stuck = await sql<{ id: string }>`
              select distinct t.${sql.ref(col)}::text as id from ${t}
              where t.org_id = ${org.id}::uuid and t.${sql.ref(col)} = any (${ids}::uuid[]) and not (t.id = any (${ids}::uuid[]))`.execute(trx);
            if (stuck.rows.length === 0) break;
            const keep = new Set(stuck.rows.map((r) => r.id));
            ids = ids.filter((id) => !keep.has(id));
          }
        }
        if (ids.length === 0) {
          const last = batch.rows[batch.rows.length - 1]!;
          cursor = { clock: last.clock, id: last.id };
          return -1; // a batch with nothing it could take: move on
        }
        // Compared as uuids, so the primary key's index finds them.
        const where = sql`org_id = ${org.id}::uuid and id = any (${ids}::uuid[])`;
        if (u.action === 'archive') {
          // Copied by the database from the live rows, by column name (a column added later lands in its own archive column).
          const copied = await sql<{ n: string }>`select app.archive_rows(${ids}::uuid[]) as n`.execute(trx);
          if (Number(copied.rows[0]!.n) !== ids.length) {
            throw new Error(`${u.table.table}: ${ids.length} rows taken but ${copied.rows[0]!.n} archived; nothing was committed`);
          }
        }
        if (u.action === 'anonymise') {
          await sql`update ${sql.table(`public.${u.table.table}`)} set ${anonymiseSet(u.table.anonymise, u.table.idColumn)} where ${where}`.execute(trx);
        } else {
          await sql`delete from ${sql.table(`public.${u.table.table}`)} where ${where}`.execute(trx);
        }
        const last = batch.rows[batch.rows.length - 1]!;
        cursor = { clock: last.clock, id: last.id };
        await sql`update public.retention_runs set cursor = ${JSON.stringify(cursor)}::jsonb,
          counts = counts || jsonb_build_object('swept', coalesce((counts->>'swept')::bigint, 0) + ${ids.length})
          where org_id = ${org.id}::uuid and id = ${run.id}::uuid`.execute(trx);
        return ids.length;
      });
    } catch (error) {
      status = 'failed';
      note = `${(error as { code?: string }).code ?? ''} ${(error as Error).message}`.trim();
      await inTrx((trx) => sql`update public.retention_runs set status = 'failed', error = ${note}, finished_at = statement_timestamp()
        where org_id = ${org.id}::uuid and id = ${run.id}::uuid`.execute(trx));
      break;
    }
    longest = Math.max(longest, Date.now() - t0);
    if (n === 0) break;
    if (n < 0) continue;
    batches += 1;
    swept += n;
    options.onProgress?.({ unit: label, swept, total: swept + Math.max(0, due - (swept - Number(run.counts.swept ?? 0))) });
  }

  const remaining = await inTrx(async (trx) => {
    const r = await sql<{ n: string }>`select count(*) as n from ${t} where ${dueSql(u, org.id, cutoff)}`.execute(trx);
    return Number(r.rows[0]!.n);
  });
  if (status !== 'failed') {
    await inTrx(async (trx) => {
      const counts = { policy, swept, held, remaining, batches, longest_batch_ms: longest };
      await sql`update public.retention_runs set status = ${status}, counts = ${JSON.stringify(counts)}::jsonb,
        finished_at = case when ${status} = 'completed' then statement_timestamp() end
        where org_id = ${org.id}::uuid and id = ${run.id}::uuid`.execute(trx);
    });
  }
  await inTrx((trx) =>
    sql`select app.audit_record(${org.id}::uuid, ${u.siteId}::uuid, 'retention.sweep', 'retention_run', ${run.id}, '{}'::uuid[],
      ${status === 'failed' ? 'failure' : 'success'}, ${JSON.stringify({
        category: u.category, table: u.table.table, action: u.action, cutoff, status, resumed: run.resumed,
        swept, [u.action === 'archive' ? 'archived' : u.action === 'anonymise' ? 'anonymised' : 'deleted']: swept - Number(run.counts.swept ?? 0),
        held, remaining, ...(note ? { note } : {}),
      })}::jsonb)`.execute(trx),
  );
  return {
    site: u.siteSlug,
    category: u.category,
    table: u.table.table,
    action: u.action,
    runId: run.id,
    resumed: run.resumed,
    cutoff,
    swept,
    held,
    remaining,
    batches,
    longestBatchMs: longest,
    status,
    note,
  };
}


/**
 * The audit_events category: the trail is pruned only by whole sealed
 * prefixes, through a checkpoint (app.audit_prune), one checkpoint per
 * transaction, up to the last checkpoint before the first event still inside
 * the keep-for period. Any active hold on the organisation that could cover
 * audit events (no category, or audit_events) stops pruning altogether.
 */
async function pruneAuditTrail(
  inTrx: <T>(fn: (trx: Trx) => Promise<T>) => Promise<T>,
  session: { readonly id: string },
  org: { readonly id: string; readonly slug: string },
  u: Unit,
): Promise<UnitReport> {
  const run = await inTrx(async (trx) => {
    const made = await sql<{ id: string; cutoff: Date }>`
      insert into public.retention_runs (org_id, site_id, category, table_name, action, status, cutoff, counts, operator_session_id)
      values (${org.id}::uuid, null, 'audit_events', 'audit_events', 'delete', 'running', statement_timestamp() - ${u.keepFor}::interval, '{}', ${session.id}::uuid)
      returning id, cutoff`.execute(trx);
    return made.rows[0]!;
  });
  const cutoff = run.cutoff.toISOString();
  const holds = await inTrx(async (trx) =>
    Number((await sql<{ n: string }>`select count(*) as n from public.legal_holds where org_id = ${org.id}::uuid and released_at is null
      and (category is null or category = 'audit_events')`.execute(trx)).rows[0]!.n));
  let swept = 0;
  let batches = 0;
  let longest = 0;
  let note: string | null = null;
  let status: UnitReport['status'] = 'completed';
  if (holds > 0) {
    note = `${holds} legal hold(s) may cover audit events: nothing pruned`;
  } else {
    // The checkpoints that may be pruned through, oldest first.
    const targets = await inTrx(async (trx) => {
      const r = await sql<{ seq: string }>`
        with first_kept as (
          select min(x.chain_seq) as seq from public.audit_chain x
          join public.audit_events e on e.org_id = x.org_id and e.id = x.event_id
          where x.org_id = ${org.id}::uuid and e.occurred_at > ${cutoff}::timestamptz)
        select distinct k.chain_seq::text as seq from public.audit_checkpoints k, first_kept f
        where k.org_id = ${org.id}::uuid and k.chain_seq > 0
          and k.chain_seq > coalesce((select max(a.chain_seq) from public.audit_anchors a where a.org_id = ${org.id}::uuid), 0)
          and k.chain_seq < coalesce(f.seq, (select max(x.chain_seq) + 1 from public.audit_chain x where x.org_id = ${org.id}::uuid), 0)
        order by 1`.execute(trx);
      return r.rows.map((x) => x.seq).sort((a, b) => Number(a) - Number(b));
    });
    for (const seq of targets) {
      const t0 = Date.now();
      try {
        const n = await inTrx(async (trx) => Number((await sql<{ n: string }>`select app.audit_prune(${org.id}::uuid, ${seq}::bigint) as n`.execute(trx)).rows[0]!.n));
        swept += n;
        batches += 1;
      } catch (error) {
        status = 'failed';
        note = `${(error as { code?: string }).code ?? ''} ${(error as Error).message}`.trim();
        break;
      }
      longest = Math.max(longest, Date.now() - t0);
    }
  }
  await inTrx(async (trx) => {
    await sql`update public.retention_runs set status = ${status}, counts = ${JSON.stringify({ swept, held: holds, batches, longest_batch_ms: longest })}::jsonb,
      finished_at = statement_timestamp(), error = ${status === 'failed' ? note : null}
      where org_id = ${org.id}::uuid and id = ${run.id}::uuid`.execute(trx);
    await sql`select app.audit_record(${org.id}::uuid, null, 'retention.sweep', 'retention_run', ${run.id}, '{}'::uuid[],
      ${status === 'failed' ? 'failure' : 'success'}, ${JSON.stringify({ category: 'audit_events', table: 'audit_events', action: 'prune', cutoff, status, swept, held: holds, ...(note ? { note } : {}) })}::jsonb)`.execute(trx);
  });
  return {
    site: null, category: 'audit_events', table: 'audit_events', action: 'delete', runId: run.id, resumed: false, cutoff,
    swept, held: holds, remaining: 0, batches, longestBatchMs: longest, status, note,
  };
}
