// Text from the data (names, emails, reasons, tickets, file names) made safe
// to show in a terminal. A teacher's email can hold ESC ] 0 ; … BEL (retitle
// the terminal), ESC [ 2K and CR (erase and overwrite a line), ESC [ 8m
// (hide what follows), or a right-to-left override that makes one name read
// as another. Every human-readable output passes such values through
// `printable`; --json output is JSON, made terminal-safe by `terminalSafeJson`.

// C0 controls (including tab, CR and newline: one value is one line), DEL,
// C1 controls, and the bidi embeddings, overrides and isolates.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_IN_JSON = /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

function visibleEscape(c: string): string {
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * A value from the data as a terminal may show it: control characters and
 * bidi overrides become visible escapes (`\x1b`, `\x0d`, `\u202e`); all
 * else, including other Unicode, is kept. `null`/`undefined` give ''.
 *
 * @example
 * printable('\x1b]0;pwned\x07a@b.example') // '\\x1b]0;pwned\\x07a@b.example'
 * printable('Zoë O\u2019Neill') // unchanged
 */
export function printable(value: string | null | undefined): string {
  if (value === null || value === undefined) return '';
  return value.replace(UNSAFE, visibleEscape);
}

/**
 * JSON text whose bytes a terminal cannot act on: JSON.stringify escapes C0
 * controls but leaves DEL, C1 controls and bidi overrides raw; these become
 * `\u00XX` / `\u202e` escapes, which parse back to the same value.
 *
 * @example
 * terminalSafeJson({ name: '\u202eevil' }) // '{"name":"\\u202eevil"}'
 */
export function terminalSafeJson(value: unknown, space?: number): string {
  // JSON.stringify has already escaped C0 inside strings; the newlines left are its own layout.
  return (JSON.stringify(value, null, space) ?? 'null').replace(UNSAFE_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
