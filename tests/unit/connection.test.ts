import { describe, expect, it } from 'vitest';
import { isLocalHost, parseDatabaseUrl } from '../../src/db/connection.js';
import { redactCommandLine } from '../../src/redact.js';
import { RefusedError } from '../../src/errors.js';
import { exitCodeFor } from '../../src/errors.js';

describe('the TLS rule', () => {
  it('treats loopback and Unix sockets as local', () => {
    for (const h of ['localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]', '/var/run/postgresql', undefined]) {
      expect(isLocalHost(h)).toBe(true);
    }
    for (const h of ['db.example.com', '10.0.0.5', '128.0.0.1', '::2']) expect(isLocalHost(h)).toBe(false);
  });

  it('requires verified TLS for a remote host, by default and with verify-full', () => {
    for (const url of ['postgres://a:pw@db.example.com/x', 'postgres://a:pw@db.example.com/x?sslmode=verify-full']) {
      const t = parseDatabaseUrl(url);
      expect(t.config.ssl).toMatchObject({ rejectUnauthorized: true });
      expect(t.insecure).toBe(false);
    }
  });

  it('refuses weaker sslmodes for a remote host (exit 2) unless explicitly skipped', () => {
    for (const mode of ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'no-verify']) {
      const url = `postgres://a:pw@db.example.com/x?sslmode=${mode}`;
      expect(() => parseDatabaseUrl(url)).toThrow(RefusedError);
      try {
        parseDatabaseUrl(url);
      } catch (e) {
        expect(exitCodeFor(e)).toBe(2);
        expect((e as Error).message).not.toContain('pw');
      }
      const skipped = parseDatabaseUrl(url, { skipTlsVerify: true });
      expect(skipped.insecure).toBe(true);
    }
  });

  it('allows plain connections to loopback', () => {
    expect(parseDatabaseUrl('postgres://a:pw@127.0.0.1:5432/x').config.ssl).toBe(false);
    expect(parseDatabaseUrl('postgres://a:pw@localhost/x?sslmode=disable').config.ssl).toBe(false);
  });

  it('refuses an unreadable sslrootcert and a bad port with one line', () => {
    expect(() => parseDatabaseUrl('postgres://a@db.example.com/x?sslrootcert=/nonexistent/ca.pem')).toThrow(/cannot read sslrootcert/);
    expect(() => parseDatabaseUrl('postgres://a@127.0.0.1:99999/x')).toThrow(RefusedError);
  });
});

describe('secrets', () => {
  it('never shows the password in the display form', () => {
    const t = parseDatabaseUrl('postgres://alice:s3cr3t@127.0.0.1:5432/platform');
    expect(t.display).toBe('alice@127.0.0.1:5432/platform');
    expect(t.display).not.toContain('s3cr3t');
  });

  it('removes passwords from recorded command lines', () => {
    const line = redactCommandLine(['trustctl', 'org', 'list', '--database-url', 'postgres://alice:s3cr3t@h:5432/d?password=x2']);
    expect(line).toBe('trustctl org list --database-url postgres://alice:***@h:5432/d?password=***');
  });

  it('removes email addresses (a subject named by email), keeping ids and URLs', () => {
    const line = redactCommandLine(['trustctl', 'dsar', 'erase', '--subject', 'Femi.Price@families.example.net', '--subject=a.b@c.org',
      '--request', 'ER-1', '--database-url', 'postgres://op:pw@db.example.org/x', '--org', 'oak-trust']);
    expect(line).toBe('trustctl dsar erase --subject [email] --subject=[email] --request ER-1 --database-url postgres://op:***@db.example.org/x --org oak-trust');
  });
});

describe('the host pg will actually use', () => {
  // node-postgres fills a missing host from PGHOST (then "localhost"); the rule must classify that host, not the URL's blank.
  const refusedWith = (url: string, env: NodeJS.ProcessEnv): unknown => {
    try {
      parseDatabaseUrl(url, { env });
    } catch (e) {
      return e;
    }
    return undefined;
  };

  it('refuses a host-less URL when PGHOST names a remote host (exit 2), as it refuses that host in the URL', () => {
    for (const url of ['postgres:///db', 'postgres:///db?sslmode=disable', 'postgresql://alice:pw@/db?sslmode=require']) {
      const e = refusedWith(url, { PGHOST: 'db.example.com' });
      if (url === 'postgres:///db') {
        // No sslmode: verified TLS to the PGHOST host, and the host is pinned so pg cannot re-read the environment.
        expect(e).toBeUndefined();
        const t = parseDatabaseUrl(url, { env: { PGHOST: 'db.example.com' } });
        expect(t.local).toBe(false);
        expect(t.config.host).toBe('db.example.com');
        expect(t.config.ssl).toMatchObject({ rejectUnauthorized: true });
        continue;
      }
      expect(e).toBeInstanceOf(RefusedError);
      expect(exitCodeFor(e)).toBe(2);
      expect((e as Error).message).toContain('db.example.com');
      expect((e as Error).message).not.toContain('pw');
    }
  });

  it('refuses PGHOSTADDR naming a remote address (exit 2): pg ignores it, so trustctl will not guess', () => {
    for (const env of [{ PGHOSTADDR: '10.0.0.5' }, { PGHOSTADDR: '203.0.113.9', PGHOST: 'localhost' }]) {
      const e = refusedWith('postgres:///db?sslmode=disable', env);
      expect(e).toBeInstanceOf(RefusedError);
      expect(exitCodeFor(e)).toBe(2);
      expect((e as Error).message).toContain('PGHOSTADDR');
    }
  });

  it('refuses PGSERVICE (exit 2): pg ignores service files, so the host they name cannot be checked', () => {
    const e = refusedWith('postgres:///db', { PGSERVICE: 'prod', PGSERVICEFILE: '/etc/pg_service.conf' });
    expect(e).toBeInstanceOf(RefusedError);
    expect(exitCodeFor(e)).toBe(2);
  });

  it('accepts a host-less URL with a local or socket PGHOST, or none, in plain text', () => {
    for (const [env, host] of [
      [{}, 'localhost'],
      [{ PGHOST: 'localhost' }, 'localhost'],
      [{ PGHOST: '127.0.0.1' }, '127.0.0.1'],
      [{ PGHOST: '/var/run/postgresql' }, '/var/run/postgresql'],
      [{ PGHOSTADDR: '127.0.0.1' }, 'localhost'],
    ] as const) {
      const t = parseDatabaseUrl('postgres:///db?sslmode=disable', { env });
      expect(t.local).toBe(true);
      expect(t.config.host).toBe(host);
      expect(t.config.ssl).toBe(false);
    }
  });

  it('lets the URL host win over PGHOST, as pg does', () => {
    const t = parseDatabaseUrl('postgres://a@127.0.0.1/db?sslmode=disable', { env: { PGHOST: 'db.example.com' } });
    expect(t.local).toBe(true);
    expect(t.config.host).toBe('127.0.0.1');
    expect(() => parseDatabaseUrl('postgres://a@db.example.com/db?sslmode=disable', { env: { PGHOST: 'localhost' } })).toThrow(RefusedError);
  });
});
