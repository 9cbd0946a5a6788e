// Removing secrets from text that trustctl stores or prints. Kept apart from
// src/db/connection.ts so every command can use it without loading the
// connection-string parser at start-up.

/**
 * Removes secrets from a command line before it is stored: any password
 * inside a URL (--database-url), and email addresses (a DSAR subject named
 * by email), which are personal data.
 *
 * @example
 * redactCommandLine(['db', 'status', '--database-url', 'postgres://a:secret@h/d'])
 * // 'db status --database-url postgres://a:***@h/d'
 */
export function redactCommandLine(args: readonly string[]): string {
  return args
    .map((arg) => arg.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@'))
    .map((arg) => arg.replace(/(password=)[^&\s]*/gi, '$1***'))
    // A person's email (--subject) is personal data: the session record and its audit event keep the id only.
    .map((arg) => arg.replace(/(^|=)[^\s@:/=]+@[^\s@:/=]+\.[^\s@:/=]+$/, '$1[email]'))
    .join(' ');
}
