// Kysely table types for the parts of the reference schema that trustctl
// queries. The SQL in src/db/migrations is the source of truth.
import type { ColumnType, Generated } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type DateOnly = ColumnType<string, string, string>;

export interface OrganisationsTable {
  org_id: Generated<string>;
  slug: string;
  name: string;
  kind: string;
  created_at: Timestamp;
}

export interface SitesTable {
  org_id: string;
  site_id: Generated<string>;
  slug: string;
  name: string;
  kind: string;
  created_at: Timestamp;
}

export interface UsersTable {
  org_id: string;
  site_id: string | null;
  id: Generated<string>;
  kind: string;
  email: string;
  full_name: string;
  phone: string | null;
  date_of_birth: DateOnly | null;
  job_title: string | null;
  created_at: Timestamp;
}

export interface ChildrenTable {
  org_id: string;
  site_id: string;
  id: Generated<string>;
  full_name: string;
  preferred_name: string | null;
  date_of_birth: DateOnly;
  upn: string | null;
  medical_notes: string | null;
  enrolled_on: DateOnly;
  left_on: DateOnly | null;
  created_at: Timestamp;
}

export interface OperatorSessionsTable {
  id: Generated<string>;
  db_user: string;
  os_user: string | null;
  host: string | null;
  client_addr: string | null;
  application_name: string | null;
  command: string;
  reason: string;
  ticket: string | null;
  org_ids: string[];
  all_orgs: boolean;
  started_at: Timestamp;
  expires_at: Timestamp;
  ended_at: Timestamp | null;
  outcome: string | null;
}

export interface AuditEventsTable {
  org_id: string;
  id: Generated<string>;
  site_id: string | null;
  occurred_at: Timestamp;
  recorded_at: Timestamp;
  txid: Generated<string>;
  actor_type: string;
  actor_id: string | null;
  operator_session_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  subject_ids: string[];
  outcome: string;
  reason: string | null;
  ticket: string | null;
  source_ip: string | null;
  request_id: string | null;
  context: unknown;
}

export interface DsarRequestsTable {
  org_id: string;
  site_id: string | null;
  id: Generated<string>;
  reference: string;
  subject_type: string;
  subject_id: string;
  kind: Generated<string>;
  received_on: DateOnly;
  due_on: DateOnly;
  extended_due_on: DateOnly | null;
  extension_reason: string | null;
  status: Generated<string>;
  created_at: Timestamp;
  created_by_session: string | null;
  closed_at: Timestamp | null;
  closure_note: string | null;
  last_exported_at: Timestamp | null;
  last_bundle_sha256: string | null;
}

export interface MediaFilesTable {
  org_id: string;
  site_id: string;
  id: Generated<string>;
  child_id: string | null;
  uploaded_by: string | null;
  storage_key: string;
  content_type: string;
  size_bytes: string;
  sha256: string;
  caption: string | null;
  created_at: Timestamp;
}

export interface Database {
  organisations: OrganisationsTable;
  sites: SitesTable;
  users: UsersTable;
  children: ChildrenTable;
  operator_sessions: OperatorSessionsTable;
  audit_events: AuditEventsTable;
  dsar_requests: DsarRequestsTable;
  media_files: MediaFilesTable;
}
