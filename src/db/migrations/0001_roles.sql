-- Roles and schemas. Runs as the administrative connection (a superuser, or a
-- role that may create BYPASSRLS roles), because roles are cluster-wide.
--
--   trustctl_owner    NOLOGIN. Owns every table. Subject to forced RLS.
--   trustctl_definer  NOLOGIN, BYPASSRLS. Owns only the reviewed SECURITY
--                     DEFINER functions in schema app (policy helpers, audit
--                     capture, operator sessions). Owns no table.
--   app_user          NOLOGIN group for the platform's request path.
--   trustctl_operator NOLOGIN group; each operator's LOGIN role is a member.
do $$
begin
  if not exists (select from pg_roles where rolname = 'trustctl_owner') then
    create role trustctl_owner nologin;
  end if;
  if not exists (select from pg_roles where rolname = 'trustctl_definer') then
    create role trustctl_definer nologin bypassrls;
  end if;
  if not exists (select from pg_roles where rolname = 'app_user') then
    create role app_user nologin;
  end if;
  if not exists (select from pg_roles where rolname = 'trustctl_operator') then
    create role trustctl_operator nologin;
  end if;
end
$$;

alter role trustctl_owner nologin nosuperuser nobypassrls nocreatedb nocreaterole noreplication;
alter role trustctl_definer nologin nosuperuser bypassrls nocreatedb nocreaterole noreplication;
alter role app_user nologin nosuperuser nobypassrls nocreatedb nocreaterole noreplication;
alter role trustctl_operator nologin nosuperuser nobypassrls nocreatedb nocreaterole noreplication;

do $$
begin
  execute format('grant connect, temporary on database %I to app_user, trustctl_operator', current_database());
  execute format('grant connect, create on database %I to trustctl_owner', current_database());
  execute format('revoke all on database %I from public', current_database());
end
$$;

grant usage, create on schema public to trustctl_owner;
grant usage on schema public to trustctl_definer, app_user, trustctl_operator;
revoke create on schema public from public;

create schema if not exists app authorization trustctl_owner;
revoke all on schema app from public;
grant usage on schema app to trustctl_definer, app_user, trustctl_operator;

-- Functions created by the owner are not executable by PUBLIC unless granted.
alter default privileges for role trustctl_owner revoke execute on functions from public;
alter default privileges for role trustctl_definer revoke execute on functions from public;
