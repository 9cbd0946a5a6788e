// The demo's guided tour: what the operator can see, through which door,
// and what the audit trail recorded. Read-only; runs as an operator.
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import { withOperatorSession } from '../db/operator-session.js';
import type { Database } from '../db/schema.js';
import { sealAuditChain, type OrgSealResult } from '../audit/seal.js';
import { verifyAuditChain, type VerifyAuditResult } from '../audit/verify.js';
import { exportSubjectBundle, type ExportResult } from '../dsar/export.js';
import { verifyBundle, type VerifyResult } from '../dsar/verify.js';

export interface TourResult {
  readonly withoutSession: { readonly childrenVisible: number };
  readonly scopedSession: { readonly org: string; readonly childrenVisible: number; readonly otherOrgChildrenVisible: number };
  readonly organisations: ReadonlyArray<{
    readonly slug: string;
    readonly sites: number;
    readonly children: number;
    readonly staff: number;
    readonly guardians: number;
    readonly attendance: number;
    readonly notes: number;
    readonly safeguarding: number;
    readonly media: number;
    readonly auditEvents: number;
  }>;
  readonly sessionEvents: number;
}

/**
 * @example
 * const tour = await runDemoTour(db.kysely, { commandLine: 'trustctl demo', logger })
 */
export async function runDemoTour(
  db: Kysely<Database>,
  { commandLine, logger }: { commandLine: string; logger: Logger },
): Promise<TourResult> {
  // 1. Without an operator session an operator sees nothing.
  const none = await db
    .transaction()
    .execute((trx) => trx.selectFrom('children').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow());

  // 2. A session scoped to one organisation sees that organisation only.
  const scoped = await withOperatorSession(
    db,
    { reason: 'trustctl demo: show a scoped session', orgSlugs: ['little-acorns'], command: commandLine },
    (s) =>
      s.transaction(async (trx) => {
        const rows = await sql<{ mine: string; others: string }>`
          select count(*) filter (where o.slug = 'little-acorns') as mine,
                 count(*) filter (where o.slug <> 'little-acorns') as others
          from children c join organisations o on o.org_id = c.org_id`.execute(trx);
        return rows.rows[0]!;
      }),
    { logger },
  );

  // 3. A session over every organisation, for the overview.
  return withOperatorSession(
    db,
    { reason: 'trustctl demo: guided tour', allOrgs: true, command: commandLine },
    async (s) => {
      const organisations = await s.transaction(async (trx) => {
        const res = await sql<Record<string, string>>`
          select o.slug,
            (select count(*) from sites x where x.org_id = o.org_id) as sites,
            (select count(*) from children x where x.org_id = o.org_id) as children,
            (select count(*) from users x where x.org_id = o.org_id and x.kind <> 'guardian') as staff,
            (select count(*) from users x where x.org_id = o.org_id and x.kind = 'guardian') as guardians,
            (select count(*) from attendance_records x where x.org_id = o.org_id) as attendance,
            (select count(*) from notes x where x.org_id = o.org_id) as notes,
            (select count(*) from safeguarding_concerns x where x.org_id = o.org_id) as safeguarding,
            (select count(*) from media_files x where x.org_id = o.org_id) as media,
            (select count(*) from audit_events x where x.org_id = o.org_id) as audit_events
          from organisations o order by o.slug`.execute(trx);
        return res.rows.map((r) => ({
          slug: r.slug!,
          sites: Number(r.sites),
          children: Number(r.children),
          staff: Number(r.staff),
          guardians: Number(r.guardians),
          attendance: Number(r.attendance),
          notes: Number(r.notes),
          safeguarding: Number(r.safeguarding),
          media: Number(r.media),
          auditEvents: Number(r.audit_events),
        }));
      }, { readOnly: true });
      const sessionEvents = await s.transaction(async (trx) => {
        const res = await sql<{ n: string }>`
          select count(*) as n from audit_events where action like 'operator_session.%'`.execute(trx);
        return Number(res.rows[0]!.n);
      });
      return {
        withoutSession: { childrenVisible: Number(none.n) },
        scopedSession: {
          org: 'little-acorns',
          childrenVisible: Number(scoped.mine),
          otherOrgChildrenVisible: Number(scoped.others),
        },
        organisations,
        sessionEvents,
      };
    },
    { logger },
  );
}

export interface DemoDsarResult {
  readonly export: ExportResult;
  readonly verify: VerifyResult;
}

/**
 * The demo's last step: export the seeded subject access request's bundle
 * and verify it offline, as a DPO would before sending it.
 *
 * @example
 * const dsar = await runDemoDsar(db.kysely, { commandLine, logger, mediaDir, outDir, toolVersion })
 */
export async function runDemoDsar(
  db: Kysely<Database>,
  input: { commandLine: string; logger: Logger; mediaDir: string; outDir: string; toolVersion: string },
): Promise<DemoDsarResult> {
  const reference = 'DSAR-2026-001';
  const exported = await withOperatorSession(
    db,
    { reason: `trustctl demo: subject access request ${reference}`, orgSlugs: ['oak-trust'], command: input.commandLine },
    async (session) => {
      const subjectId = await session.transaction(async (trx) => {
        const row = await trx
          .selectFrom('dsar_requests')
          .select('subject_id')
          .where('reference', '=', reference)
          .executeTakeFirstOrThrow();
        return row.subject_id;
      });
      return exportSubjectBundle(
        session,
        {
          orgSlug: 'oak-trust',
          subject: { id: subjectId },
          reference,
          outDir: input.outDir,
          include: [],
          reviewer: null,
          mediaDir: input.mediaDir,
          encrypt: false,
          force: true,
          toolVersion: input.toolVersion,
        },
        { logger: input.logger },
      );
    },
    { logger: input.logger },
  );
  return { export: exported, verify: await verifyBundle(exported.path, {}) };
}

export interface DemoAuditResult {
  readonly seal: readonly OrgSealResult[];
  readonly verify: VerifyAuditResult;
}

/**
 * The demo's audit step: seal the trail of every organisation and verify it.
 *
 * @example
 * const audit = await runDemoAudit(db.kysely, { commandLine, logger })
 */
export async function runDemoAudit(
  db: Kysely<Database>,
  input: { commandLine: string; logger: Logger },
): Promise<DemoAuditResult> {
  return withOperatorSession(
    db,
    { reason: 'trustctl demo: seal and verify the audit trail', allOrgs: true, command: input.commandLine },
    async (session) => ({
      seal: await sealAuditChain(session, { batchSize: 10_000 }, { logger: input.logger }),
      verify: await verifyAuditChain(session, {}, { logger: input.logger }),
    }),
    { logger: input.logger },
  );
}
