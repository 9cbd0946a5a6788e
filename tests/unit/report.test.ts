// The parent's report and README (src/dsar/report.ts) without a database:
// the pieces a bundle's index.html is streamed from, put together from
// fixed inputs with hostile text in every field a tenant writes. The page
// is pinned byte for byte (tests/unit/__snapshots__/report.html, reviewed
// when it changes), and checked for what must hold whatever the wording:
// escaping, the style's hash in the policy, links that land, headings in order.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  article15Section, contentsSection, displayValue, erasureSection, escapeHtml, formatCount, humanise, LONG_SECTION, readableDate, readableTime,
  readmeText, reportHead, reportTail, sectionEnd, sectionRow, sectionShown, sectionStart, shownInReport, summarySection, withheldSection,
  type ReportHeader, type SectionInput,
} from '../../src/dsar/report.js';
import { AttendanceTally, tallyFor } from '../../src/dsar/report-terms.js';
import { printable } from '../../src/io/printable.js';

const HOSTILE = `Ada <script>alert(1)</script> "O'Neil" & \u202egnp.exe\u202c`;

describe('text as a page shows it', () => {
  it('escapeHtml: markup characters, controls and bidi overrides; tabs and line breaks stay', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&amp;</a>`)).toBe('&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;');
    expect(escapeHtml('a\tb\nc\rd')).toBe('a\tb\nc\rd');
    for (const c of ['\u0000', '\u0008', '\u000b', '\u000c', '\u000e', '\u001f', '\u007f', '\u009f', '\u202a', '\u202e', '\u2066', '\u2069']) {
      const out = escapeHtml(`x${c}y`);
      expect(out, JSON.stringify(c)).not.toContain(c);
      expect(out.startsWith('x') && out.endsWith('y') && out.length > 3, JSON.stringify(c)).toBe(true);
    }
    expect(escapeHtml('\u00a0é\u2014\u2067')).toBe('\u00a0é\u2014\u2067'.replace('\u2067', escapeHtml('\u2067')));
    expect(escapeHtml('\u2067')).not.toBe('\u2067');
  });

  it('humanise: table and column names as words; archives say so; labels by own key only', () => {
    expect(humanise('attendance_records')).toBe('Attendance records');
    expect(humanise('upn')).toBe('Unique pupil number (UPN)');
    expect(humanise('archive.notes')).toBe('Notes (archived)');
    expect(humanise('archive.upn')).toBe('Unique pupil number (UPN) (archived)');
    expect(humanise('constructor')).toBe('Constructor');
    expect(humanise('to_string')).toBe('To string');
    expect(humanise('')).toBe('');
  });

  it('dates and times in fixed English, whatever the machine’s locale', () => {
    expect(readableDate('2026-11-05')).toBe('5 Nov 2026');
    expect(readableDate('2026-01-31T23:59:59Z')).toBe('31 Jan 2026');
    expect(readableDate('2026-12-01')).toBe('1 Dec 2026');
    expect(readableTime('2026-11-25T21:16:14.86+00:00')).toBe('25 Nov 2026, 21:16 UTC');
  });

  it('displayValue: empty, yes/no, JSON, dates, UTC times; anything else as written', () => {
    expect(displayValue(null)).toBe('');
    expect(displayValue(undefined)).toBe('');
    expect(displayValue(true)).toBe('yes');
    expect(displayValue(false)).toBe('no');
    expect(displayValue({ a: [1, 'b'] })).toBe('{"a":[1,"b"]}');
    expect(displayValue(['x'])).toBe('["x"]');
    expect(displayValue('2026-03-04')).toBe('4 Mar 2026');
    expect(displayValue('2026-03-04T08:05:00Z')).toBe('4 Mar 2026, 08:05 UTC');
    expect(displayValue('2026-03-04T08:05:00.123456+00:00')).toBe('4 Mar 2026, 08:05 UTC');
    expect(displayValue('2026-03-04T08:05:00+01:00')).toBe('2026-03-04T08:05:00+01:00');
    expect(displayValue('2026-03-04T08:05+00:00')).toBe('2026-03-04T08:05+00:00');
    expect(displayValue('x2026-03-04')).toBe('x2026-03-04');
    expect(displayValue('2026-03-04 ')).toBe('2026-03-04 ');
    expect(displayValue('2026-03-04T08:05:00Zx')).toBe('2026-03-04T08:05:00Zx');
    expect(displayValue(0)).toBe('0');
    expect(displayValue(12.5)).toBe('12.5');
  });

  it('internal references are left out of the page', () => {
    for (const c of ['id', 'child_id', 'org_id', 'recorded_by', 'uploaded_by', 'reported_by', 'storage_key', 'sha256']) expect(shownInReport(c), c).toBe(false);
    for (const c of ['full_name', 'identity', 'status', 'session_date', 'sha256sum', 'ids']) expect(shownInReport(c), c).toBe(true);
  });

  it('counts with thousands separators', () => {
    expect([0, 7, 999, 1000, 1046, 99999, 1234567].map(formatCount)).toEqual(['0', '7', '999', '1,000', '1,046', '99,999', '1,234,567']);
  });
});

const HEAD: ReportHeader = {
  organisation: `Oak <b>Trust</b>`,
  subjectName: HOSTILE,
  subjectType: 'child',
  reference: `SAR-7 <i>`,
  receivedOn: '2026-11-02',
  dueOn: '2026-12-02',
  asOf: '2026-11-30T09:15:00Z',
};

/** The page from its pieces, in the order export streams them. */
function page(): string {
  const register = new AttendanceTally();
  const short: SectionInput = { table: 'notes', purpose: `Notes <about> "progress"`, rows: 2, columns: ['id', 'child_id', 'body', 'created_at', 'guardian_visible'], tally: null };
  const activity = tallyFor('staff_activity', ['id', 'occurred_at'], { retention: { clock: 'occurred_at' } })!;
  const attendanceRows = Array.from({ length: LONG_SECTION + 1 }, (_, i) => ({
    id: `a${i}`, child_id: 'c', session_date: `2025-${i < 10 ? '03' : '04'}-${10 + Math.floor(i / 2)}`, session: i % 2 ? 'pm' : 'am',
    status: ['present', 'late', 'authorised_absence', 'unauthorised_absence', 'closed'][i % 5], recorded_by: 'u',
  }));
  for (const r of attendanceRows) register.add(r);
  const activityRows = Array.from({ length: LONG_SECTION + 2 }, (_, i) => ({ id: `s${i}`, occurred_at: i === 0 ? null : `2025-${i < 12 ? '10' : '01'}-0${1 + (i % 9)}T09:00:00+00:00`, action: 'signed in' }));
  for (const r of activityRows) activity.add(r);
  const long: SectionInput = { table: 'attendance_records', purpose: 'Registers.', rows: attendanceRows.length, columns: ['id', 'child_id', 'session_date', 'session', 'status', 'recorded_by'], tally: register };
  const records: SectionInput = { table: 'staff_activity', purpose: 'What staff did.', rows: activityRows.length, columns: ['id', 'occurred_at', 'action'], tally: activity };
  const untallied: SectionInput = { table: 'media_files', purpose: 'Photos.', rows: LONG_SECTION + 1, columns: ['id', 'caption'], tally: null };
  const empty: SectionInput = { table: 'wellbeing_checkins', purpose: 'Check-ins.', rows: 0, columns: ['id'], tally: null };
  const archivedEmpty: SectionInput = { table: 'archive.notes', purpose: 'Old notes.', rows: 0, columns: ['id'], tally: null };
  const archived: SectionInput = { table: 'archive.attendance_records', purpose: 'Old registers.', rows: 1, columns: ['id', 'session_date'], tally: null };
  const kinds = [short, long, records, untallied, empty, archivedEmpty, archived];
  const section = (s: SectionInput, rows: Record<string, unknown>[]) => sectionStart(s) + rows.map((r) => sectionRow(s.columns, r)).join('') + sectionEnd(s);
  return [
    reportHead(HEAD),
    summarySection(HEAD, kinds, true),
    contentsSection(kinds, true),
    erasureSection([
      { erased_at: '2026-06-01T10:00:00Z', request: `ERA-1 <x>`, kept: [{ table: 'safeguarding_concerns', rows: 2, reason: 'Statutory', why: `Kept to <25>` }] },
      { erased_at: '2026-07-01T10:00:00Z', request: null, kept: [] },
    ]),
    section(short, [
      { id: 'n1', child_id: 'c', body: HOSTILE, created_at: '2026-10-01T08:00:00Z', guardian_visible: true },
      { id: 'n2', child_id: 'c', body: null, created_at: '2026-10-02', guardian_visible: false },
    ]),
    section(long, attendanceRows),
    section(records, activityRows),
    section(untallied, Array.from({ length: untallied.rows }, (_, i) => ({ id: `m${i}`, caption: `photo ${i}` }))),
    section(empty, []),
    ...(sectionShown(archivedEmpty) ? [section(archivedEmpty, [])] : []),
    section(archived, [{ id: 'x', session_date: '2019-01-07' }]),
    withheldSection(),
    article15Section({ organisation: HEAD.organisation, purposes: [{ table: 'notes', purpose: `Progress <notes>` }], retention: [{ table: 'notes', period: `6 years & a day` }] }),
    reportTail(),
  ].join('');
}

describe('the whole page', () => {
  // Built inside each test, not when the file is collected: mutation testing's per-test
  // coverage then sees every test that reads the page.

  it('is pinned byte for byte', async () => {
    const html = page();
    // The stylesheet is pinned by its hash (the source holds its text; the next test checks the policy allows it).
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    const pinned = html.replace(style, `/* the stylesheet of src/dsar/report.ts, sha256 ${createHash('sha256').update(style).digest('hex')} */`);
    await expect(pinned).toMatchFileSnapshot('__snapshots__/report.html');
  });

  it('carries tenant text only escaped', () => {
    const html = page();
    expect(html).not.toMatch(/<script|<b>|<i>|<x>|<about>|<notes>|<25>/);
    expect(html).not.toContain('\u202e');
    expect(html).toContain('Ada &lt;script&gt;alert(1)&lt;/script&gt; &quot;O&#39;Neil&quot; &amp; ');
    expect(html).toContain('Oak &lt;b&gt;Trust&lt;/b&gt;');
  });

  it('allows its one stylesheet by hash, and nothing else', () => {
    const html = page();
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    const hash = createHash('sha256').update(style).digest('base64');
    expect(html).toContain(`content="default-src 'none'; style-src 'sha256-${hash}'; base-uri 'none'; form-action 'none'"`);
    expect(html.match(/<style>/g)).toHaveLength(1);
    expect(html).not.toMatch(/ style=|<link|<img|<iframe|https?:\/\//);
  });

  it('has a target for every link, and headings that never skip a level', () => {
    const html = page();
    const ids = new Set([...html.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]));
    const links = [...html.matchAll(/href="#([^"]+)"/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(10);
    for (const l of links) expect(ids.has(l), l).toBe(true);
    let level = 0;
    for (const [, h] of html.matchAll(/<h([1-6])[ >]/g)) {
      expect(Number(h)).toBeLessThanOrEqual(level + 1);
      level = Number(h);
    }
  });

  it('shows an empty archive only in its data files, and says a short section holds nothing', () => {
    const html = page();
    expect(sectionShown({ table: 'archive.notes', purpose: '', rows: 0 })).toBe(false);
    expect(sectionShown({ table: 'archive.notes', purpose: '', rows: 1 })).toBe(true);
    expect(sectionShown({ table: 'notes', purpose: '', rows: 0 })).toBe(true);
    expect(html).not.toContain('id="archive.notes"');
    expect(html).toContain('<h2 id="wellbeing_checkins">Wellbeing checkins</h2>\n<p>Check-ins.</p>\n<p class="muted">None held.</p>\n</section>\n');
    expect(sectionEnd({ table: 'x', purpose: '', rows: 0, columns: [], tally: null })).toBe('');
    expect(erasureSection([])).toBe('');
  });

  it('a section of exactly LONG_SECTION rows is short; one more is summarised', () => {
    const at = (rows: number) => sectionStart({ table: 'notes', purpose: 'p', rows, columns: ['body'], tally: null });
    expect(LONG_SECTION).toBe(20);
    expect(at(20)).not.toContain('<details>');
    expect(at(21)).toContain('<details>');
    expect(sectionEnd({ table: 'notes', purpose: 'p', rows: 20, columns: [], tally: null })).toBe('</tbody>\n</table>\n</section>\n');
  });
});

describe('a smaller response', () => {
  const kinds = (rows: number[]) => rows.map((n, i) => ({ table: ['notes', 'media_files', 'wellbeing_checkins'][i]!, purpose: 'p', rows: n }));

  it('without empty kinds, archives or an erasure, says none of those things', () => {
    const summary = summarySection(HEAD, kinds([3, 1]), false);
    expect(summary).not.toMatch(/We hold no records|\(archived\)|Records marked|We erased|Stryker/);
    expect(summary).toContain('<p>Long lists, such as attendance');
    const contents = contentsSection(kinds([3, 1]), false);
    expect(contents).not.toMatch(/erasure|Stryker/);
    expect(contents.match(/<li>/g)).toHaveLength(8);
  });

  it('names every kind it holds nothing of, in a list', () => {
    expect(summarySection(HEAD, kinds([3, 0, 0]), false)).toContain('<p>We hold no records of these kinds: Media files, Wellbeing checkins.</p>');
  });

  it('joins several reasons kept, purposes and periods one per line', () => {
    const erased = erasureSection([{ erased_at: '2026-06-01T10:00:00Z', request: 'E-1', kept: [
      { table: 'notes', rows: 1, reason: 'Held', why: 'A hold.' }, { table: 'attendance_records', rows: 4, reason: 'Statute', why: 'The law.' }] }]);
    expect(erased).toContain('<ul>\n<li><strong>Notes</strong> (1): Held. A hold.</li>\n<li><strong>Attendance records</strong> (4): Statute. The law.</li>\n</ul>');
    const info = article15Section({ organisation: 'Oak', purposes: [{ table: 'notes', purpose: 'A' }, { table: 'media_files', purpose: 'B' }],
      retention: [{ table: 'notes', period: '1 year' }, { table: 'media_files', period: '2 years' }] });
    expect(info).toContain('<ul>\n<li><strong>Notes</strong>: A</li>\n<li><strong>Media files</strong>: B</li>\n</ul>');
    expect(info).toContain('<ul>\n<li><strong>Notes</strong>: 1 year</li>\n<li><strong>Media files</strong>: 2 years</li>\n</ul>');
  });

  it('a register of closed days only has no attendance figure; a record summary spans its first to its last date', () => {
    const register = new AttendanceTally();
    for (let i = 0; i <= LONG_SECTION; i++) register.add({ session_date: `2025-05-${String(1 + Math.floor(i / 2)).padStart(2, '0')}`, session: i % 2 ? 'pm' : 'am', status: 'closed' });
    const closed = sectionStart({ table: 'attendance_records', purpose: 'p', rows: LONG_SECTION + 1, columns: ['session_date'], tally: register });
    expect(closed).toContain('<td class="n">21</td><td class="n">–</td><td class="n">0</td></tr></tfoot>');
    const activity = tallyFor('staff_activity', ['id', 'occurred_at'], { retention: { clock: 'occurred_at' } })!;
    for (const at of ['2025-02-03', '2025-05-06', '2025-10-07', null]) activity.add({ occurred_at: at });
    const spread = sectionStart({ table: 'staff_activity', purpose: 'p', rows: LONG_SECTION + 1, columns: ['occurred_at'], tally: activity });
    expect(spread).toContain('<tfoot><tr><th scope="row">All terms</th><td class="n">21</td><td class="n">3 Feb 2025</td><td class="n">7 Oct 2025</td></tr></tfoot>');
  });
});

describe('README.txt', () => {
  it('is plain text: controls made visible, markup left as written', () => {
    const text = readmeText({ ...HEAD, subjectType: 'guardian', files: 12, withheld: [] });
    expect(text.split('\n').slice(0, 3)).toEqual([
      'Subject access request SAR-7 <i>',
      `Oak <b>Trust</b>: information held about ${printable(HOSTILE)} (guardian)`,
      'Received 2 Nov 2026; due 2 Dec 2026; records as they stood on 30 Nov 2026, 09:15 UTC.',
    ]);
    expect(text).not.toContain('\u202e');
    expect(printable(HOSTILE)).toMatch(/^Ada <script>alert\(1\)<\/script> "O'Neil" & .+gnp\.exe.+$/);
    expect(text.endsWith('Files: 12 (plus manifest.json).\n')).toBe(true);
    expect(text).toContain('trustctl dsar verify <this zip>');
  });
});
