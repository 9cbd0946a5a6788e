// The human side of a bundle: index.html (self-contained, readable by a
// parent: the data as tables, what was withheld and why, and the Article 15
// information) and README.txt. Pure string builders; the export streams
// their pieces into files.
import { createHash } from 'node:crypto';
import { printable } from '../io/printable.js';
import type { AttendanceTally, AttendanceTerm, RecordTally, SectionTally } from './report-terms.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Controls a page would act on or hide, and bidi overrides that make one name read as another (tab and line breaks stay). */
const CONTROLS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** Escapes text for HTML element content and attribute values; controls and bidi overrides become visible escapes. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c]!).replace(CONTROLS, (c) => printable(c));
}

const LABELS: Record<string, string> = {
  upn: 'Unique pupil number (UPN)',
};

/** 'attendance_records' -> 'Attendance records' */
export function humanise(name: string): string {
  if (name.startsWith('archive.')) return `${humanise(name.slice('archive.'.length))} (archived)`;
  if (Object.hasOwn(LABELS, name)) return LABELS[name]!;
  const words = name.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** '2026-11-25' -> '25 Nov 2026'; fixed English, so the bytes never depend on the machine's locale. */
export function readableDate(iso: string): string {
  const [y, m, d] = iso.slice(0, 10).split('-');
  return `${Number(d)} ${MONTHS[Number(m) - 1]} ${y}`;
}

/** '2026-11-25T21:16:14.86+00:00' (UTC) -> '25 Nov 2026, 21:16 UTC' */
export function readableTime(iso: string): string {
  return `${readableDate(iso)}, ${iso.slice(11, 16)} UTC`;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_UTC_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)$/;

/** A cell value as people read it. */
export function displayValue(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'object') return JSON.stringify(value);
  const text = String(value);
  if (ISO_DATE.test(text)) return readableDate(text);
  if (ISO_UTC_TIMESTAMP.test(text)) return readableTime(text);
  return text;
}

/**
 * Columns left out of the report (they stay in data/): tenant keys and
 * internal reference numbers, which mean nothing to a reader and, for
 * staff and other family members, identify third parties.
 */
export function shownInReport(column: string): boolean {
  return !(column === 'id' || column.endsWith('_id') || HIDDEN_REFERENCES.has(column));
}
const HIDDEN_REFERENCES = new Set(['recorded_by', 'uploaded_by', 'reported_by', 'storage_key', 'sha256']);

export interface ReportHeader {
  readonly organisation: string;
  readonly subjectName: string;
  readonly subjectType: string;
  readonly reference: string;
  readonly receivedOn: string;
  readonly dueOn: string;
  readonly asOf: string;
}

/** A section of the report longer than this shows a summary by term, with its rows in a collapsed list. */
export const LONG_SECTION = 20;

const STYLE = `body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ccc}h3{font-size:1.05rem;margin:1.25rem 0 .25rem}
a{color:#0b4f9c}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0;display:block;overflow-x:auto}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f2f2f2}
td.n{text-align:right}tfoot th,tfoot td{font-weight:600}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5rem 1rem}.muted{color:#555}
.summary{background:#f5f8fc;border:1px solid #c9d6e6;padding:0 1.25rem 1rem;margin-top:1rem}
details{margin:.5rem 0}summary{cursor:pointer;font-weight:600;color:#0b4f9c;padding:.25rem 0}
.print-note{display:none}
@media print{
body{margin:0;max-width:none;padding:0;font-size:10pt;color:#000}
a{color:#000;text-decoration:none}
table{display:table;font-size:8.5pt}thead{display:table-header-group}tr{break-inside:avoid}
th,.note,.summary{background:none}
h2,h3,caption{break-after:avoid}
nav{break-after:page}
section.long,section.part{break-before:page}
details:not([open]){display:none}
details:not([open])+.print-note{display:block}
}`;

// The policy allows this one stylesheet, by its hash: no other style, no script, no fetch.
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

/** 1046 -> '1,046': fixed, so the bytes never depend on the machine's locale. */
export function formatCount(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+$)/g, ',');
}

/** The page up to its first section. */
export function reportHead(h: ReportHeader): string {
  return `<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'sha256-${STYLE_HASH}'; base-uri 'none'; form-action 'none'">
<meta name="referrer" content="no-referrer">
<title>Information held about ${escapeHtml(h.subjectName)} (${escapeHtml(h.reference)})</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Information held about ${escapeHtml(h.subjectName)}</h1>
`;
}

// How to complain, in the summary and in full in the Article 15 section.
const COMPLAIN = `If you are unhappy with how we have handled your information or this request, you can complain to the
Information Commissioner’s Office (ICO): <strong>ico.org.uk/make-a-complaint</strong>, telephone <strong>0303 123 1113</strong>`;

const SUBJECT_TYPES: Record<string, string> = { child: 'a child', guardian: 'a parent or carer', staff: 'a member of staff' };

/** One kind of record in the report, with the rows it shows. */
export interface ReportKind {
  readonly table: string;
  readonly purpose: string;
  readonly rows: number;
}

/**
 * Whether a kind of record has a section in the report: every kind the
 * bundle holds a file of, except an archive with nothing in it (its data
 * files are still in the bundle).
 */
export function sectionShown(kind: ReportKind): boolean {
  return kind.rows > 0 || !kind.table.startsWith('archive.');
}

/**
 * What a parent reads first: who this is about, the kinds of record held
 * and how many of each, that information may be left out (the same words
 * in every response, as in the notice further down), and their rights.
 * Counts are of the rows the bundle holds, so they move with nothing withheld.
 */
export function summarySection(h: ReportHeader, kinds: readonly ReportKind[], erased: boolean): string {
  const held = kinds.filter((k) => k.rows > 0);
  const none = kinds.filter((k) => k.rows === 0 && sectionShown(k));
  const rows = held
    .map((k) => `<tr><th scope="row"><a href="#${escapeHtml(k.table)}">${escapeHtml(humanise(k.table))}</a></th>`
      + `<td class="n">${formatCount(k.rows)}</td><td>${escapeHtml(k.purpose)}</td></tr>`)
    .join('\n');
  const notes = [
    ...(none.length > 0 ? [`We hold no records of these kinds: ${none.map((k) => escapeHtml(humanise(k.table))).join(', ')}.`] : []),
    ...(held.some((k) => k.table.startsWith('archive.'))
      ? ['Records marked (archived) are older ones moved out of everyday use under our retention policy; we still hold them.']
      : []),
    'Long lists, such as attendance, are summarised by school term, with every record in a list you can open below the summary.',
  ];
  const erasure = erased
    ? `\n<p>We erased information about ${escapeHtml(h.subjectName)} earlier; what we still hold, and why, is under
<a href="#erasure">Your information was erased</a>.</p>`
    : '';
  return `<section class="summary" aria-labelledby="summary">
<h2 id="summary">Summary</h2>
<p>This is ${escapeHtml(h.organisation)}’s response to your subject access request <strong>${escapeHtml(h.reference)}</strong>,
received on ${escapeHtml(readableDate(h.receivedOn))} and due by ${escapeHtml(readableDate(h.dueOn))}. It is about
<strong>${escapeHtml(h.subjectName)}</strong> (${escapeHtml(Object.hasOwn(SUBJECT_TYPES, h.subjectType) ? SUBJECT_TYPES[h.subjectType]! : h.subjectType)}), and shows the personal data we hold, as it
stood after the last change to it, on ${escapeHtml(readableTime(h.asOf))}.</p>
<h3>What we hold</h3>
<table>
<caption>Records held about ${escapeHtml(h.subjectName)}, by kind</caption>
<thead><tr><th scope="col">Kind of record</th><th scope="col">Records</th><th scope="col">Why we hold it</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
${notes.map((n) => `<p>${n}</p>`).join('\n')}${erasure}
<h3>Information that may be left out</h3>
<p>The law allows some information to be withheld: where releasing it could cause serious harm, or where it is also
about other people and it would not be fair to them. Our Data Protection Officer reviews every such item. We say
this in every response; it does not mean that anything was left out of this one. See
<a href="#withheld">Information that may not be included</a>.</p>
<h3>Your rights, and how to complain</h3>
<p>You can ask us to correct information that is wrong, to erase it, to restrict how we use it, or object to how we
use it: contact ${escapeHtml(h.organisation)}’s Data Protection Officer.
${COMPLAIN}. See <a href="#rights">Your rights</a> and <a href="#complain">How to complain</a>.</p>
<h3>The files in this response</h3>
<p>Internal reference numbers are left out of this page; the same data with every column is in the <code>data/</code>
folder of this bundle as JSON and CSV files (one file per kind of record, archives included), and photos and documents
are in <code>media/</code>. <code>manifest.json</code> lists every file with its SHA-256 fingerprint, so the files can
be checked against the copy of this response that we keep.</p>
</section>
`;
}

/** Anchor links to every section, in page order. */
export function contentsSection(kinds: readonly ReportKind[], erased: boolean): string {
  const link = (id: string, label: string, extra = '') => `<li><a href="#${escapeHtml(id)}">${escapeHtml(label)}</a>${extra}</li>`;
  const records = kinds.filter(sectionShown).map((k) => link(k.table, humanise(k.table), ` (${k.rows === 0 ? 'none' : formatCount(k.rows)})`));
  const items = [
    link('summary', 'Summary'),
    ...(erased ? [link('erasure', 'Your information was erased')] : []),
    `<li>The records we hold<ol>\n${records.join('\n')}\n</ol></li>`,
    link('withheld', 'Information that may not be included'),
    link('your-rights', 'About this information', `<ol>\n${link('rights', 'Your rights')}\n${link('complain', 'How to complain')}\n</ol>`),
  ];
  return `<nav aria-labelledby="contents">
<h2 id="contents">Contents</h2>
<ol>
${items.join('\n')}
</ol>
</nav>
`;
}

/** What a section needs besides its rows: its columns, row count and, for a long one, its counts by term. */
export interface SectionInput extends ReportKind {
  readonly columns: readonly string[];
  readonly tally: SectionTally | null;
}

const isLong = (s: SectionInput): boolean => s.rows > LONG_SECTION;

function percent(part: number, whole: number): string {
  return whole === 0 ? '–' : `${(Math.round((part * 1000) / whole) / 10).toFixed(1)}%`;
}

function summaryTable(caption: string, head: readonly string[], body: ReadonlyArray<readonly [string, ...string[]]>, total: readonly [string, ...string[]]): string {
  const row = ([label, ...cells]: readonly [string, ...string[]]) =>
    `<tr><th scope="row">${escapeHtml(label)}</th>${cells.map((c) => `<td class="n">${escapeHtml(c)}</td>`).join('')}</tr>`;
  return `<table>
<caption>${escapeHtml(caption)}</caption>
<thead><tr>${head.map((h) => `<th scope="col">${escapeHtml(h)}</th>`).join('')}</tr></thead>
<tbody>
${body.map(row).join('\n')}
</tbody>
<tfoot>${row(total)}</tfoot>
</table>
`;
}

const TERM_RULE = 'Terms go by calendar month: autumn September to December, spring January to March, summer April to August (with the summer holiday), so a week around Easter may fall in a different term from your school’s own calendar.';

function attendanceSummary(s: SectionInput, tally: AttendanceTally): string {
  const terms = tally.terms();
  const sum = (f: (t: AttendanceTerm) => number) => terms.reduce((n, t) => n + f(t), 0);
  const line = (label: string, f: (fn: (t: AttendanceTerm) => number) => number): [string, ...string[]] => {
    const open = f((t) => t.sessions) - f((t) => t.closed);
    return [label, ...[f((t) => t.sessions), f((t) => t.present), f((t) => t.late), f((t) => t.authorisedAbsence),
      f((t) => t.unauthorisedAbsence), f((t) => t.closed)].map(formatCount), percent(f((t) => t.present + t.late), open), formatCount(f((t) => t.corrected))];
  };
  return `${summaryTable(
    `${humanise(s.table)} by school term`,
    ['Term', 'Sessions', 'Present', 'Late', 'Authorised absence', 'Unauthorised absence', 'School closed', 'Attended', 'Marks corrected'],
    terms.map((t) => line(t.term.label, (f) => f(t))),
    line('All terms', sum),
  )}<p class="muted">A session is one morning or afternoon register. Where a mark was corrected later, the session counts once,
with its latest mark; both marks are in the full list. Attended is present and late sessions out of the sessions the
school was open. ${TERM_RULE}</p>
`;
}

function recordSummary(s: SectionInput, tally: RecordTally): string {
  const terms = tally.terms();
  const date = (d: string | null) => (d === null ? '' : readableDate(d));
  const first = terms.map((t) => t.first).filter((d): d is string => d !== null).sort()[0] ?? null;
  const last = terms.map((t) => t.last).filter((d): d is string => d !== null).sort().at(-1) ?? null;
  return `${summaryTable(
    `${humanise(s.table)} by school term (by ${humanise(tally.dateColumn).toLowerCase()})`,
    ['Term', 'Records', 'First', 'Last'],
    terms.map((t) => [t.term.label, formatCount(t.records), date(t.first), date(t.last)]),
    ['All terms', formatCount(s.rows), date(first), date(last)],
  )}<p class="muted">${TERM_RULE}</p>
`;
}

/** A table's section up to its first row (or the whole section, when it holds nothing). */
export function sectionStart(s: SectionInput): string {
  const long = isLong(s);
  const open = `<section${long ? ' class="long"' : ''} aria-labelledby="${escapeHtml(s.table)}">
<h2 id="${escapeHtml(s.table)}">${escapeHtml(humanise(s.table))}</h2>
<p>${escapeHtml(s.purpose)}</p>
`;
  if (s.rows === 0) return `${open}<p class="muted">None held.</p>\n</section>\n`;
  const shown = s.columns.filter(shownInReport);
  const table = `<table>
<caption>${escapeHtml(humanise(s.table))}${long ? ', every record' : ''}</caption>
<thead><tr>${shown.map((c) => `<th scope="col">${escapeHtml(humanise(c))}</th>`).join('')}</tr></thead>
<tbody>
`;
  if (!long) return open + table;
  const summary = !s.tally ? '' : s.tally.kind === 'attendance' ? attendanceSummary(s, s.tally) : recordSummary(s, s.tally);
  return `${open}<p>${formatCount(s.rows)} records: a summary first, then every record in a list you can open.</p>
${summary}<details>
<summary>Show every record (${formatCount(s.rows)})</summary>
${table}`;
}

export function sectionRow(columns: readonly string[], row: Record<string, unknown>): string {
  const cells = columns.filter(shownInReport).map((c) => `<td>${escapeHtml(displayValue(row[c]))}</td>`);
  return `<tr>${cells.join('')}</tr>\n`;
}

/** A table's section after its last row. */
export function sectionEnd(s: SectionInput): string {
  if (s.rows === 0) return '';
  if (!isLong(s)) return '</tbody>\n</table>\n</section>\n';
  return `</tbody>
</table>
</details>
<p class="print-note">The ${formatCount(s.rows)} records themselves are not printed. To print them, open “Show every record”
before printing; they are also in <code>data/${escapeHtml(s.table)}.csv</code>.</p>
</section>
`;
}

export interface WithheldLine {
  readonly table: string;
  readonly category: string;
  readonly rows: number;
  readonly reason: string;
}

/**
 * What the requester is told about withheld records: the same notice in
 * every bundle, whether or not anything was withheld, so that nothing a
 * parent reads depends on a withheld record (naming, or even revealing, a
 * safeguarding record to a parent could tip off someone it concerns). The
 * DPO's detail is in the DPO record beside the bundle and the audit trail.
 */
export function withheldSection(): string {
  return `<section class="part" aria-labelledby="withheld">
<h2 id="withheld">Information that may not be included</h2>
<div class="note"><p>The Data Protection Act 2018 allows information to be withheld where releasing it could cause
serious harm, or where it is also about other people and it would not be fair to them to release it. Our Data
Protection Officer reviews every such item before deciding. This notice is in every response, whether or not
anything was withheld from it.</p>
<p>If you think information is missing, or disagree with a decision to withhold it, you can ask us to review it,
or complain to the ICO (see <a href="#complain">How to complain</a>).</p></div>
</section>
`;
}

export interface ErasureLine {
  readonly erased_at: string;
  readonly request: string | null;
  readonly kept: ReadonlyArray<{ readonly table: string; readonly rows: number; readonly reason: string; readonly why: string }>;
}

/** What an earlier erasure of the person kept of what this response shows, and why. */
export function erasureSection(erasures: readonly ErasureLine[]): string {
  if (erasures.length === 0) return '';
  const items = erasures
    .map((e) => {
      const kept =
        e.kept.length === 0
          ? '<p>None of the records in this response were kept from before that erasure.</p>'
          : `<ul>\n${e.kept
              .map((k) => `<li><strong>${escapeHtml(humanise(k.table))}</strong> (${k.rows}): ${escapeHtml(k.reason)}. ${escapeHtml(k.why)}</li>`)
              .join('\n')}\n</ul>`;
      return `<p>On ${escapeHtml(readableTime(e.erased_at))} we erased your information${e.request ? ` (request ${escapeHtml(e.request)})` : ''}. What this response still shows from before then was kept for these reasons:</p>\n${kept}`;
    })
    .join('\n');
  return `<section aria-labelledby="erasure">\n<h2 id="erasure">Your information was erased</h2>\n<div class="note">${items}</div>\n</section>\n`;
}

export interface RetentionLine {
  readonly table: string;
  readonly period: string;
}

export interface Article15 {
  readonly organisation: string;
  readonly purposes: ReadonlyArray<{ readonly table: string; readonly purpose: string }>;
  readonly retention: readonly RetentionLine[];
}

export function article15Section(info: Article15): string {
  const purposes = info.purposes
    .map((p) => `<li><strong>${escapeHtml(humanise(p.table))}</strong>: ${escapeHtml(p.purpose)}</li>`)
    .join('\n');
  const retention = info.retention
    .map((r) => `<li><strong>${escapeHtml(humanise(r.table))}</strong>: ${escapeHtml(r.period)}</li>`)
    .join('\n');
  return `<section class="part" aria-labelledby="your-rights">
<h2 id="your-rights">About this information (UK GDPR Article 15)</h2>
<h3>Why we hold it, and what kinds of data it is</h3>
<ul>
${purposes}
</ul>
<h3>Who it is shared with</h3>
<p>Staff of ${escapeHtml(info.organisation)} who need it for their role; the provider of the platform that stores it,
who processes it only on our instructions under contract; and, where the law requires it (for example to protect
a child, or for statutory returns), the local authority, the Department for Education or other public bodies.
We do not sell it. It is not transferred outside the UK.</p>
<h3>How long we keep it</h3>
<ul>
${retention}
</ul>
<h3>Where it came from</h3>
<p>From you or your family, from the school or setting (staff who work with the child), and from other schools or
public bodies when a child joins us.</p>
<h3>Automated decisions</h3>
<p>We do not make decisions about you or your child by automated means, including profiling.</p>
<h3 id="rights">Your rights</h3>
<p>You (or your child) have the right to ask us to correct information that is wrong (rectification), to erase it
where we no longer have a reason to keep it, to restrict how we use it, and to object to how we use it. Contact
${escapeHtml(info.organisation)}’s Data Protection Officer to use any of these rights.</p>
<h3 id="complain">How to complain</h3>
<p>${COMPLAIN}, or write to Information Commissioner’s Office, Wycliffe House, Water Lane, Wilmslow,
Cheshire SK9 5AF.</p>
</section>
`;
}

export function reportTail(): string {
  return '</body>\n</html>\n';
}

export interface ReadmeInput extends ReportHeader {
  readonly files: number;
  readonly withheld: readonly WithheldLine[];
}

export function readmeText(r: ReadmeInput): string {
  return `Subject access request ${r.reference}
${printable(r.organisation)}: information held about ${printable(r.subjectName)} (${r.subjectType})
Received ${readableDate(r.receivedOn)}; due ${readableDate(r.dueOn)}; records as they stood on ${readableTime(r.asOf)}.

Open index.html in a web browser to read it. The same data is in data/ as
JSON and CSV (one file per kind of record); photos and documents are in media/.
In the CSV files a value that starts with = + - @ (or a tab) has a ' put in
front of it, so that a spreadsheet shows it as text and never runs it as a
formula; the JSON files hold every value exactly as recorded.

manifest.json lists every file with its size and SHA-256 fingerprint. To check
the files: trustctl dsar verify <this zip>, or compare each file with sha256sum.

The law allows some information to be withheld; index.html explains when.

Files: ${r.files} (plus manifest.json).
`;
}
