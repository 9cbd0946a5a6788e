-- Requests have a kind: a subject access request (UK GDPR Article 15) or an
-- erasure request (Article 17). Both are due one calendar month after
-- receipt; dsar erase acts only under an erasure request. Requests recorded
-- before this migration are access requests. The archive keeps the column
-- too (retention sweeps archive by column name).
set local role trustctl_owner;
alter table dsar_requests add column kind text not null default 'access' check (kind in ('access', 'erasure'));
alter table archive.dsar_requests add column kind text not null default 'access';
reset role;
