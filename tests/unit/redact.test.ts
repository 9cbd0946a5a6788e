// The recorded command line (operator_sessions.command, and the audit event
// that copies it) must hold no part of a password, whatever it contains.
import { describe, expect, it } from 'vitest';
import { redactCommandLine } from '../../src/redact.js';

const PASSWORDS = [
  'Tr0ub4dor@horse-battery-staple',
  'pa:ss@wo/rd?x#y%41',
  "it's a p@ss \"qu0te d\"",
  'a@b@c:d/e?f#g',
  'p%40ss%2Fword',
];

/** Every piece of the password longer than two characters, split on the characters a parser might stop at. */
const pieces = (pw: string): string[] => pw.split(/[@:/?#%\s'"]+/).filter((p) => p.length > 2);

const expectNoPartOf = (line: string, pw: string): void => {
  expect(line).not.toContain(pw);
  for (const piece of pieces(pw)) expect(line, `"${piece}" of ${pw} in ${line}`).not.toContain(piece);
};

describe('redactCommandLine', () => {
  it('drops a URL password whatever it contains, keeping user, host and database', () => {
    for (const pw of PASSWORDS) {
      for (const scheme of ['postgres', 'postgresql']) {
        const line = redactCommandLine(['trustctl', 'org', 'list', '--database-url', `${scheme}://alice:${pw}@db.example.org:5432/platform`]);
        expectNoPartOf(line, pw);
        expect(line).toBe(`trustctl org list --database-url ${scheme}://alice:***@db.example.org:5432/platform`);
        const joined = redactCommandLine(['trustctl', `--database-url=${scheme}://alice:${pw}@db.example.org/platform?sslmode=verify-full`]);
        expectNoPartOf(joined, pw);
        expect(joined).toBe(`trustctl --database-url=${scheme}://alice:***@db.example.org/platform?sslmode=verify-full`);
      }
    }
  });

  it('drops a percent-encoded URL password and a password query parameter', () => {
    const line = redactCommandLine(['--database-url', `postgres://alice:${encodeURIComponent('Tr0ub4dor@horse')}@h/d?password=${encodeURIComponent('s3@cr/et')}&sslmode=require`]);
    expect(line).toBe('--database-url postgres://alice:***@h/d?password=***');
    expectNoPartOf(line, 's3@cr/et');
    expectNoPartOf(line, 'Tr0ub4dor%40horse');
  });

  it('keeps a URL with no password as it is', () => {
    expect(redactCommandLine(['--database-url', 'postgres://alice@db.example.org/platform?sslmode=verify-full'])).toBe(
      '--database-url postgres://alice@db.example.org/platform?sslmode=verify-full',
    );
  });

  it('drops password= in key=value conninfo, quoted or not', () => {
    for (const pw of PASSWORDS) {
      const quoted = `'${pw.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
      const line = redactCommandLine(['--database-url', `host=db.example.org password = ${quoted} dbname=platform`]);
      expectNoPartOf(line, pw);
      expect(line).toBe("--database-url host=db.example.org password=*** dbname=platform");
    }
    expect(redactCommandLine(['host=h password=Tr0ub4dor@horse-battery-staple user=alice'])).toBe('host=h password=*** user=alice');
    // An unterminated quote: the rest of the argument is dropped, not kept.
    expect(redactCommandLine(["host=h password='Tr0ub4dor@horse dbname=x"])).toBe('host=h password=***');
  });

  it('drops the values of password and passphrase flags and PGPASSWORD-like settings', () => {
    for (const pw of PASSWORDS) {
      for (const args of [
        ['--password', pw],
        [`--password=${pw}`],
        ['--passphrase', pw],
        [`--passphrase=${pw}`],
        [`PGPASSWORD=${pw}`],
        [`DB_PASSWORD=${pw}`],
        ['--db-secret', pw],
      ]) {
        const line = redactCommandLine(['trustctl', ...args, '--org', 'oak-trust']);
        expectNoPartOf(line, pw);
        expect(line).toMatch(/(--password|--passphrase|PGPASSWORD|DB_PASSWORD|--db-secret)[ =]\*\*\* --org oak-trust$/);
      }
    }
  });

  it('still replaces email addresses with [email]', () => {
    expect(redactCommandLine(['dsar', 'export', '--subject', 'Femi.Price@families.example.net', '--subject=a.b@c.org'])).toBe(
      'dsar export --subject [email] --subject=[email]',
    );
  });
});
