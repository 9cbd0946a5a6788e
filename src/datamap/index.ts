// The data map: for every table of the reference schema, its tenant key,
// which columns point at which kind of data subject, its retention category
// and clock, what a DSAR does with it, and how erasure treats each personal
// column. DSAR, erasure, retention and the doctor read this; a test compares
// it with the live catalog so a new table or person reference cannot be
// forgotten.

/**
 * Kinds of data subject. 'user' is any account (staff, guardian, support);
 * 'any' is a column that may name a child or a user. Support staff are
 * platform users of the platform organisation.
 */
export type SubjectKind = 'child' | 'guardian' | 'staff' | 'user' | 'any';

/** What a DSAR export does with a table's rows about the subject. */
export type DsarTreatment =
  | {
      readonly kind: 'include';
      /** Rows of this table matching column = value are withheld pending review. */
      readonly withhold?: {
        readonly column: string;
        readonly equals: string;
        readonly category: string;
        readonly reason: string;
      };
    }
  | { readonly kind: 'withheld_pending_review'; readonly category: string; readonly reason: string }
  | { readonly kind: 'exclude'; readonly reason: string };

/**
 * What anonymising a row (erasure of the person's own record, or a
 * retention sweep with action anonymise) does to one of its columns. A
 * column with a strategy other than 'keep' is a personal column.
 */
export type ColumnErasure =
  | 'null' // set to NULL
  | 'redact' // replace with a fixed redaction marker
  | 'pseudonym' // keyed pseudonym, stable per organisation
  | 'generalise_date' // keep the year only (as 31 December)
  | 'keep'; // left as it is: see TableErasure.columns

/** What erasure does with a row about the subject. */
export type RowErasure = 'delete' | 'anonymise' | 'keep';

/** How erasure of a subject treats a table's rows about them (docs/erasure.md). */
export interface TableErasure {
  readonly row: RowErasure;
  /**
   * Every column of the table that is not its tenant key, its id column or a
   * subject reference (those name the row and the person by id; erasure
   * deletes or keeps the row), and how anonymising a row treats it: a
   * strategy for a personal column, 'keep' for the rest, which is either not
   * personal (codes, flags, counts, the record's own times) or in a table
   * whose rows about a person are never anonymised, only deleted or kept
   * whole for the reason the certificate gives (a safeguarding record's
   * description goes with its row). Listing every column means a new one
   * must be classified here; tests/integration/erasure-columns.test.ts
   * fails on a column this map does not name.
   */
  readonly columns: Readonly<Record<string, ColumnErasure>>;
  /**
   * A statutory retention rule: rows are kept, whatever the subject asks,
   * until this clock (a column of the row, or a derived clock) has passed.
   */
  readonly statutory?: { readonly clock: string; readonly reason: string };
  /** For row 'keep': why the platform keeps these records about the subject. */
  readonly keepReason?: string;
  /**
   * For the person's own record: the columns that identify them, left as
   * they are when the record is kept because other records about them are
   * (the rest of its personal columns are still anonymised).
   */
  readonly identify?: readonly string[];
}

export interface SubjectReference {
  readonly column: string;
  readonly kind: SubjectKind;
  /** How the row relates to the person: it IS them, is ABOUT them, or was made BY them. */
  readonly relation: 'is' | 'about' | 'by';
  /** The column is an array of ids (uuid[]), not one id. */
  readonly array?: true;
  /**
   * The column holding the organisation of the person referred to, where it
   * is not the row's own org_id (support staff's grants in other
   * organisations); user ids are unique only within an organisation.
   */
  readonly orgColumn?: string;
}

export interface TableMap {
  readonly table: string;
  /** org_id, plus site_id where rows belong to a site; null for platform tables. */
  readonly tenantKey: { readonly org: string; readonly site: string | null } | null;
  readonly idColumn: string;
  /** Why the platform holds this data (Article 15(1)(a)). */
  readonly purpose: string;
  readonly subjects: readonly SubjectReference[];
  /** Retention category and the column its clock reads; null if not swept. */
  readonly retention: { readonly category: string; readonly clock: string } | null;
  readonly dsar: DsarTreatment;
  /** The order people read its rows in (the id is always added last); default: the retention clock. */
  readonly order?: readonly string[];
  readonly erasure: TableErasure;
  /** Part of the audit trail: append-only, sealed, and not itself captured. */
  readonly auditTrail?: true;
}

/**
 * Retention clocks derived from the row's child rather than read from a
 * column of the row: the day the child left, and their 25th birthday.
 */
export const DERIVED_CLOCKS = {
  child_left_on: 'the day the child left (children.left_on)',
  child_25th_birthday: 'the child’s 25th birthday (children.date_of_birth + 25 years)',
} as const;
export type DerivedClock = keyof typeof DERIVED_CLOCKS;
// Own keys only: --clock constructor (or __proto__, toString) names no derived clock.
export const isDerivedClock = (clock: string): clock is DerivedClock => Object.hasOwn(DERIVED_CLOCKS, clock);

const include: DsarTreatment = { kind: 'include' };
/** Columns anonymising a row leaves as they are ('keep'). */
const keep = (...columns: string[]): Record<string, 'keep'> => Object.fromEntries(columns.map((c) => [c, 'keep']));
const exclude = (reason: string): DsarTreatment => ({ kind: 'exclude', reason });
const site = { org: 'org_id', site: 'site_id' } as const;

/**
 * Every table of the reference schema.
 *
 * @example
 * dataMap.find((t) => t.table === 'notes')?.dsar // { kind: 'include' }
 */
export const dataMap: readonly TableMap[] = [
  {
    table: 'organisations',
    tenantKey: { org: 'org_id', site: null },
    idColumn: 'org_id',
    purpose: 'Identifies the trust or group that is the data controller.',
    subjects: [],
    retention: null,
    dsar: exclude('Not personal data.'),
    erasure: { row: 'keep', columns: keep('slug', 'name', 'kind', 'created_at') },
  },
  {
    table: 'sites',
    tenantKey: { org: 'org_id', site: 'site_id' },
    idColumn: 'site_id',
    purpose: 'Identifies the school or setting.',
    subjects: [],
    retention: null,
    dsar: exclude('Not personal data.'),
    erasure: { row: 'keep', columns: keep('slug', 'name', 'kind', 'created_at') },
  },
  {
    table: 'users',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'Accounts of staff and guardians, to let them use the platform and contact them.',
    subjects: [{ column: 'id', kind: 'user', relation: 'is' }],
    retention: null,
    dsar: include,
    erasure: {
      row: 'anonymise',
      columns: { email: 'pseudonym', full_name: 'redact', phone: 'null', date_of_birth: 'null', job_title: 'null', ...keep('kind', 'created_at') },
      identify: ['email', 'full_name'],
    },
  },
  {
    table: 'role_assignments',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'Records who may see which school’s data, and why.',
    subjects: [{ column: 'user_id', kind: 'user', relation: 'is', orgColumn: 'user_org_id' }],
    retention: { category: 'access', clock: 'created_at' },
    dsar: include,
    erasure: {
      row: 'keep',
      columns: keep(
        'role', 'starts_at', 'expires_at', 'ticket', 'reason', 'granted_by_session', 'approval_state', 'approved_by',
        'approved_at', 'revoked_at', 'revoked_by', 'revoke_reason', 'denied_by', 'denied_at', 'deny_reason',
        'created_at',
      ),
      keepReason: 'Access history: who could see which school’s data, when and why. Grants are never rewritten (docs/access.md).',
    },
  },
  {
    table: 'children',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'The child’s record, to provide education and care.',
    subjects: [{ column: 'id', kind: 'child', relation: 'is' }],
    retention: { category: 'pupil_record', clock: 'left_on' },
    dsar: include,
    erasure: {
      row: 'anonymise',
      columns: {
        full_name: 'redact',
        preferred_name: 'null',
        date_of_birth: 'generalise_date',
        upn: 'null',
        medical_notes: 'null',
        ...keep('enrolled_on', 'left_on', 'created_at'),
      },
      // A kept safeguarding record must say whose it is; its 25th-birthday clock reads the exact date of birth.
      identify: ['full_name', 'date_of_birth', 'upn'],
    },
  },
  {
    table: 'guardianships',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'Who has parental responsibility, to contact and involve them.',
    subjects: [
      { column: 'child_id', kind: 'child', relation: 'about' },
      { column: 'guardian_id', kind: 'guardian', relation: 'is' },
    ],
    retention: { category: 'pupil_record', clock: 'child_left_on' },
    dsar: include,
    erasure: { row: 'delete', columns: keep('relationship', 'parental_responsibility', 'created_at') },
  },
  {
    table: 'groups',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'Classes and caseloads.',
    subjects: [],
    retention: null,
    dsar: exclude('Not personal data; a subject’s memberships are exported instead.'),
    erasure: { row: 'keep', columns: keep('name', 'kind', 'created_at') },
  },
  {
    table: 'group_memberships',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'Which class or caseload a child or member of staff belongs to.',
    subjects: [
      { column: 'child_id', kind: 'child', relation: 'about' },
      { column: 'staff_id', kind: 'staff', relation: 'is' },
    ],
    retention: null,
    dsar: include,
    erasure: { row: 'delete', columns: keep('group_id', 'role', 'created_at') },
  },
  {
    table: 'attendance_records',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'Attendance registers, a legal duty of schools.',
    subjects: [
      { column: 'child_id', kind: 'child', relation: 'about' },
      { column: 'recorded_by', kind: 'staff', relation: 'by' },
    ],
    retention: { category: 'attendance', clock: 'session_date' },
    dsar: include,
    order: ['session_date', 'session', 'recorded_at'],
    erasure: { row: 'delete', columns: { correction_reason: 'redact', ...keep('session_date', 'session', 'status', 'recorded_at', 'corrects_id') } },
  },
  {
    table: 'notes',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'Notes about a child’s progress and wellbeing.',
    subjects: [
      { column: 'child_id', kind: 'child', relation: 'about' },
      { column: 'author_id', kind: 'staff', relation: 'by' },
    ],
    retention: { category: 'notes', clock: 'created_at' },
    dsar: {
      kind: 'include',
      withhold: {
        column: 'kind',
        equals: 'sensitive',
        category: 'sensitive_notes',
        reason: 'Sensitive notes may hold third parties’ data or be exempt (serious harm); released only after review.',
      },
    },
    erasure: { row: 'delete', columns: { body: 'redact', ...keep('kind', 'guardian_visible', 'created_at') } },
  },
  {
    table: 'safeguarding_concerns',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'Safeguarding records, to protect children from harm.',
    subjects: [
      { column: 'child_id', kind: 'child', relation: 'about' },
      { column: 'reported_by', kind: 'staff', relation: 'by' },
    ],
    retention: { category: 'safeguarding', clock: 'child_25th_birthday' },
    dsar: {
      kind: 'withheld_pending_review',
      category: 'safeguarding',
      reason: 'May be exempt (serious harm, third-party data); released only after review.',
    },
    erasure: {
      row: 'delete',
      // Never anonymised: deleted, or kept whole by statute or a hold; the description goes with its row.
      columns: keep('category', 'description', 'status', 'occurred_at', 'created_at', 'closed_at'),
      statutory: {
        clock: 'child_25th_birthday',
        reason: 'Child protection records are kept until the child’s 25th birthday (Keeping Children Safe in Education).',
      },
    },
  },
  {
    table: 'wellbeing_checkins',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'Wellbeing check-ins, to support the child.',
    subjects: [
      { column: 'child_id', kind: 'child', relation: 'about' },
      { column: 'recorded_by', kind: 'staff', relation: 'by' },
    ],
    retention: { category: 'wellbeing', clock: 'checked_in_at' },
    dsar: include,
    erasure: { row: 'delete', columns: { comment: 'redact', ...keep('mood', 'checked_in_at') } },
  },
  {
    table: 'rota_shifts',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'Staff rotas, to run the setting safely.',
    subjects: [{ column: 'staff_id', kind: 'staff', relation: 'is' }],
    retention: { category: 'staff_rota', clock: 'ends_at' },
    dsar: include,
    erasure: { row: 'delete', columns: keep('starts_at', 'ends_at', 'duty') },
  },
  {
    table: 'staff_activity',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'What staff did on the platform, for accountability.',
    subjects: [
      { column: 'staff_id', kind: 'staff', relation: 'is' },
      { column: 'child_id', kind: 'child', relation: 'about' },
    ],
    retention: { category: 'staff_activity', clock: 'occurred_at' },
    dsar: include,
    erasure: { row: 'delete', columns: keep('action', 'occurred_at') },
  },
  {
    table: 'media_files',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'Photos and documents of the child’s learning.',
    subjects: [
      { column: 'child_id', kind: 'child', relation: 'about' },
      { column: 'uploaded_by', kind: 'staff', relation: 'by' },
    ],
    retention: { category: 'media', clock: 'created_at' },
    dsar: include,
    erasure: { row: 'delete', columns: { caption: 'redact', ...keep('storage_key', 'content_type', 'size_bytes', 'sha256', 'created_at') } },
  },
  {
    table: 'audit_events',
    auditTrail: true,
    tenantKey: site,
    idColumn: 'id',
    purpose: 'The audit trail of changes to and reads of personal data.',
    subjects: [{ column: 'subject_ids', kind: 'any', relation: 'about', array: true }],
    retention: { category: 'audit_events', clock: 'occurred_at' },
    dsar: exclude('Security records; the subject’s id in them is kept so the trail stays verifiable.'),
    erasure: {
      row: 'keep',
      columns: keep(
        'occurred_at', 'recorded_at', 'txid', 'actor_type', 'actor_id', 'operator_session_id', 'action',
        'target_type', 'target_id', 'outcome', 'reason', 'ticket', 'source_ip', 'request_id', 'context',
      ),
      keepReason: 'The audit trail is append-only and sealed; its events name the subject by id only, and the id is kept so the trail stays verifiable.',
    },
  },
  {
    table: 'audit_chain',
    auditTrail: true,
    tenantKey: { org: 'org_id', site: null },
    idColumn: 'chain_seq',
    purpose: 'The hash chain that seals the audit trail, so any change to it can be detected.',
    subjects: [],
    retention: null,
    dsar: exclude('Not personal data: sequence numbers and hashes.'),
    erasure: { row: 'keep', columns: keep('event_id', 'prev_hash', 'hash', 'sealed_at', 'operator_session_id') },
  },
  {
    table: 'audit_checkpoints',
    auditTrail: true,
    tenantKey: { org: 'org_id', site: null },
    idColumn: 'id',
    purpose: 'Signed heads of the audit chain, to detect a rewrite of the whole trail.',
    subjects: [],
    retention: null,
    dsar: exclude('Not personal data.'),
    erasure: { row: 'keep', columns: keep('chain_seq', 'head_hash', 'rows', 'horizon', 'created_at', 'operator_session_id', 'key_id', 'signature') },
  },
  {
    table: 'audit_anchors',
    auditTrail: true,
    tenantKey: { org: 'org_id', site: null },
    idColumn: 'chain_seq',
    purpose: 'Where verification of the audit chain starts after old events were removed by retention.',
    subjects: [],
    retention: null,
    dsar: exclude('Not personal data.'),
    erasure: { row: 'keep', columns: keep('hash', 'pruned_at', 'operator_session_id') },
  },
  {
    table: 'retention_policies',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'Retention settings.',
    subjects: [],
    retention: null,
    dsar: exclude('Not personal data.'),
    erasure: { row: 'keep', columns: keep('category', 'keep_for', 'clock', 'action', 'created_at', 'updated_at', 'set_by_session') },
  },
  {
    table: 'access_policies',
    tenantKey: { org: 'org_id', site: null },
    idColumn: 'role',
    purpose: 'Access settings: the longest time-boxed grant per role, approval and ticket rules.',
    subjects: [],
    retention: null,
    dsar: exclude('Not personal data.'),
    erasure: { row: 'keep', columns: keep('max_duration', 'sensitive', 'ticket_pattern', 'updated_at', 'updated_by') },
  },
  {
    table: 'legal_holds',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'Legal holds that stop records being deleted.',
    subjects: [{ column: 'subject_id', kind: 'any', relation: 'about' }],
    retention: null,
    dsar: exclude('Legal proceedings; disclosed, where required, by the DPO.'),
    erasure: {
      row: 'keep',
      columns: keep(
        'category', 'reason', 'created_at', 'created_by_session', 'released_at', 'released_by_session',
        'release_reason',
      ),
      keepReason: 'A legal hold names the subject by id so that their held records stay preserved.',
    },
  },
  {
    table: 'retention_runs',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'The ledger of retention sweeps.',
    subjects: [],
    retention: null,
    dsar: exclude('Not personal data.'),
    erasure: {
      row: 'keep',
      columns: keep(
        'category', 'status', 'cutoff', 'cursor', 'counts', 'operator_session_id', 'started_at', 'finished_at',
        'table_name', 'action', 'error',
      ),
    },
  },
  {
    table: 'dsar_requests',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'Subject access requests and their due dates.',
    subjects: [{ column: 'subject_id', kind: 'any', relation: 'about' }],
    retention: { category: 'dsar', clock: 'created_at' },
    // Its status changes when a bundle is exported, so including it would
    // make every export differ from the last; the manifest carries the request.
    dsar: exclude('Request-handling record; this request’s reference and dates are in the bundle’s manifest.'),
    erasure: {
      row: 'keep',
      columns: keep(
        'reference', 'kind', 'subject_type', 'received_on', 'due_on', 'extended_due_on', 'extension_reason', 'status',
        'created_at', 'created_by_session', 'closed_at', 'closure_note', 'last_exported_at', 'last_bundle_sha256',
      ),
      keepReason: 'The record of the person’s requests, this one included: their id, references and dates.',
    },
  },
  {
    table: 'erasures',
    tenantKey: site,
    idColumn: 'id',
    purpose: 'The ledger of erasures, so they survive a backup restore.',
    subjects: [{ column: 'subject_id', kind: 'any', relation: 'about' }],
    retention: null,
    dsar: exclude('Holds only the subject’s id, kept to re-apply the erasure.'),
    erasure: {
      row: 'keep',
      columns: keep(
        'request_id', 'request_reference', 'subject_type', 'erased_at', 'operator_session_id', 'counts', 'account',
        'certificate_sha256', 'media_pending',
      ),
      keepReason: 'The erasure ledger holds the id only, to re-apply the erasure after a backup restore.',
    },
  },
  {
    table: 'operator_sessions',
    tenantKey: null,
    idColumn: 'id',
    purpose: 'Operator sessions: who at the platform looked at data, why, and when.',
    subjects: [],
    retention: null,
    dsar: exclude('Platform staff records, not about tenants’ data subjects.'),
    erasure: {
      row: 'keep',
      columns: keep(
        'db_user', 'os_user', 'host', 'client_addr', 'application_name', 'command', 'reason', 'ticket', 'org_ids',
        'all_orgs', 'started_at', 'expires_at', 'ended_at', 'outcome',
      ),
    },
  },
  {
    table: 'platform_settings',
    tenantKey: null,
    idColumn: 'key',
    purpose: 'Platform configuration.',
    subjects: [],
    retention: null,
    dsar: exclude('Not personal data.'),
    erasure: { row: 'keep', columns: keep('value', 'description') },
  },
  {
    table: 'trustctl_migrations',
    tenantKey: null,
    idColumn: 'name',
    purpose: 'Schema migrations applied.',
    subjects: [],
    retention: null,
    dsar: exclude('Not personal data.'),
    erasure: { row: 'keep', columns: keep('sha256', 'applied_at') },
  },
];

/**
 * Whether a data-map reference of kind `ref` can name a subject of kind
 * `subject`. Any account column can hold any kind of account: a parent who
 * volunteers is on the rota, a teacher's own child attends the school; so
 * for a guardian or member of staff every account column counts.
 *
 * @example
 * refersTo('staff', 'guardian') // true
 * refersTo('staff', 'child') // false
 */
export function refersTo(ref: SubjectKind, subject: 'child' | 'guardian' | 'staff'): boolean {
  if (ref === 'any') return true;
  return subject === 'child' ? ref === 'child' : ref !== 'child';
}
