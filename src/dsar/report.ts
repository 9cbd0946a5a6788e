// The human side of a bundle: index.html (self-contained, readable by a
// parent: the data as tables, what was withheld and why, and the Article 15
// information) and README.txt. Pure string builders; the export streams
// their pieces into files.
import { printable } from '../io/printable.js';

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
  const label = LABELS[name];
  if (label) return label;
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

const STYLE = `body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f2f2f2}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5rem 1rem}.muted{color:#555}`;

export function reportHead(h: ReportHeader): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'">
<meta name="referrer" content="no-referrer">
<title>Information held about ${escapeHtml(h.subjectName)} (${escapeHtml(h.reference)})</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Information held about ${escapeHtml(h.subjectName)}</h1>
<p>This is ${escapeHtml(h.organisation)}’s response to your subject access request <strong>${escapeHtml(h.reference)}</strong>,
received on ${escapeHtml(readableDate(h.receivedOn))} and due by ${escapeHtml(readableDate(h.dueOn))}. It shows the personal
data we hold about this ${escapeHtml(h.subjectType)}, as it stood after the last change to it, on ${escapeHtml(readableTime(h.asOf))}.</p>
<p class="muted">Each section below is one kind of record. Internal reference numbers are left out here; the same data
with every column is in the <code>data/</code> folder of this bundle as JSON and CSV files, and photos and documents are
in <code>media/</code>. <code>manifest.json</code> lists every file with its SHA-256 fingerprint, so the files can be
checked against the copy of this response that we keep.</p>
`;
}

function sectionHeading(table: string, purpose: string): string {
  return `<h2 id="${escapeHtml(table)}">${escapeHtml(humanise(table))}</h2>\n<p>${escapeHtml(purpose)}</p>\n`;
}

/** A table's section up to its first row. */
export function sectionOpen(table: string, purpose: string, columns: readonly string[]): string {
  const shown = columns.filter(shownInReport);
  return `${sectionHeading(table, purpose)}<table>\n<thead><tr>${shown.map((c) => `<th>${escapeHtml(humanise(c))}</th>`).join('')}</tr></thead>\n<tbody>\n`;
}

/** The section of a table that holds nothing about the subject. */
export function sectionEmpty(table: string, purpose: string): string {
  return `${sectionHeading(table, purpose)}<p class="muted">None held.</p>\n`;
}

export function sectionRow(columns: readonly string[], row: Record<string, unknown>): string {
  const cells = columns.filter(shownInReport).map((c) => `<td>${escapeHtml(displayValue(row[c]))}</td>`);
  return `<tr>${cells.join('')}</tr>\n`;
}

export function sectionClose(): string {
  return '</tbody>\n</table>\n';
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
  return `<h2 id="withheld">Information that may not be included</h2>
<div class="note"><p>The Data Protection Act 2018 allows information to be withheld where releasing it could cause
serious harm, or where it is also about other people and it would not be fair to them to release it. Our Data
Protection Officer reviews every such item before deciding. This notice is in every response, whether or not
anything was withheld from it.</p>
<p>If you think information is missing, or disagree with a decision to withhold it, you can ask us to review it,
or complain to the ICO (see below).</p></div>
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
  return `<h2 id="erasure">Your information was erased</h2>\n<div class="note">${items}</div>\n`;
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
  return `<h2 id="your-rights">About this information (UK GDPR Article 15)</h2>
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
<h3>Your rights</h3>
<p>You (or your child) have the right to ask us to correct information that is wrong (rectification), to erase it
where we no longer have a reason to keep it, to restrict how we use it, and to object to how we use it. Contact
${escapeHtml(info.organisation)}’s Data Protection Officer to use any of these rights.</p>
<h3>How to complain</h3>
<p>If you are unhappy with how we have handled your information or this request, you can complain to the
Information Commissioner’s Office (ICO): <strong>ico.org.uk/make-a-complaint</strong>, telephone
<strong>0303 123 1113</strong>, or write to Information Commissioner’s Office, Wycliffe House, Water Lane,
Wilmslow, Cheshire SK9 5AF.</p>
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
