// Removing secrets from text that trustctl stores or prints. Kept apart from
// src/db/connection.ts so every command can use it without loading the
// connection-string parser at start-up.
//
// Each argument is read the way a database driver or a shell would read it
// (URL, key=value conninfo, --flag value, NAME=value), and the secret is
// dropped whatever characters it holds. Where an argument cannot be read
// cleanly, more is dropped rather than less.

/** A name that says its value is a secret: password, sslpassword, passphrase, PGPASSWORD, --db-secret, --token. */
const SECRET_NAME = /pass|secret|token/i;
/** Flags whose name matches SECRET_NAME but take no value. */
const VALUELESS_FLAG = /-stdin$/i;
const HIDDEN = '***';

/**
 * Removes secrets from a command line before it is stored: a password in a
 * URL or a key=value connection string (--database-url), the value of any
 * password, passphrase, secret or token flag or NAME=value setting, and email
 * addresses (a DSAR subject named by email), which are personal data.
 *
 * @example
 * redactCommandLine(['db', 'status', '--database-url', 'postgres://a:se@cret@h/d'])
 * // 'db status --database-url postgres://a:***@h/d'
 */
export function redactCommandLine(args: readonly string[]): string {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const flag = /^(--?[A-Za-z0-9][\w-]*)(=?)/.exec(arg);
    if (flag && SECRET_NAME.test(flag[1]!) && !VALUELESS_FLAG.test(flag[1]!)) {
      if (flag[2]) {
        out.push(`${flag[1]}=${HIDDEN}`);
      } else {
        out.push(arg);
        if (i + 1 < args.length) {
          out.push(HIDDEN);
          i++;
        }
      }
      continue;
    }
    // --database-url=VALUE: redact the value as an argument of its own.
    const joined = flag && flag[2] ? `${flag[1]}=` : '';
    out.push(joined + redactEmail(redactValue(arg.slice(joined.length))));
  }
  return out.join(' ');
}

function redactValue(value: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return redactUrl(value);
  if (/^\s*[A-Za-z_][\w]*\s*=/.test(value)) return redactConninfo(value);
  return value;
}

/**
 * A URL's user information ends at the last "@" before the host (how the
 * WHATWG URL parser and pg-connection-string read a raw "@" in a password),
 * but a raw "/", "?" or "#" in the password hides that "@" from them; so
 * everything from the first ":" of the user information to the last "@" of
 * the whole argument goes.
 */
function redactUrl(url: string): string {
  const start = url.indexOf('://') + 3;
  const at = url.lastIndexOf('@');
  let head = url.slice(0, start);
  let rest = url.slice(start);
  if (at >= start) {
    const userinfo = url.slice(start, at);
    const colon = userinfo.indexOf(':');
    if (colon >= 0) {
      head += `${userinfo.slice(0, colon)}:${HIDDEN}@`;
      rest = url.slice(at + 1);
    }
  }
  return head + redactQuery(rest);
}

/** ?password=…: the value and everything after it go, since a raw "&" may be part of it. */
function redactQuery(rest: string): string {
  const q = rest.indexOf('?');
  if (q < 0) return rest;
  const params = rest.slice(q + 1).split('&');
  const kept: string[] = [];
  for (const param of params) {
    const eq = param.indexOf('=');
    const key = decodeSafely(eq < 0 ? param : param.slice(0, eq));
    if (SECRET_NAME.test(key)) {
      kept.push(`${eq < 0 ? param : param.slice(0, eq)}=${HIDDEN}`);
      break;
    }
    kept.push(param);
  }
  return `${rest.slice(0, q)}?${kept.join('&')}`;
}

function decodeSafely(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * libpq's key=value form: values are bare (backslash escapes) or single-quoted
 * (backslash escapes), separated by white space. A secret key's value is
 * replaced; if the text stops parsing after a secret key, the rest goes too.
 */
function redactConninfo(text: string): string {
  const parts: string[] = [];
  let i = 0;
  let sawSecret = false;
  const skipSpace = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  while (true) {
    skipSpace();
    if (i >= text.length) return parts.join(' ');
    const key = /^[A-Za-z_]\w*/.exec(text.slice(i));
    if (!key) break;
    i += key[0].length;
    skipSpace();
    if (text[i] !== '=') {
      i -= key[0].length;
      break;
    }
    i++;
    skipSpace();
    const valueStart = i;
    let closed = true;
    if (text[i] === "'") {
      closed = false;
      for (i++; i < text.length; i++) {
        if (text[i] === '\\') i++;
        else if (text[i] === "'") {
          closed = true;
          i++;
          break;
        }
      }
    } else {
      for (; i < text.length && !/\s/.test(text[i]!); i++) if (text[i] === '\\') i++;
    }
    const secret = SECRET_NAME.test(key[0]);
    sawSecret ||= secret;
    parts.push(`${key[0]}=${secret ? HIDDEN : text.slice(valueStart, i)}`);
    if (!closed) return parts.join(' ');
  }
  // Not conninfo from here on: keep it as written, unless a secret came before it or may be in it.
  const rest = text.slice(i);
  if (sawSecret) return parts.join(' ');
  return [...parts, SECRET_NAME.test(rest) ? HIDDEN : rest].join(' ');
}

/** A person's email (--subject) is personal data: the session record and its audit event keep the id only. */
function redactEmail(value: string): string {
  return value.replace(/^[^\s@:/=]+@[^\s@:/=]+\.[^\s@:/=]+$/, '[email]');
}
