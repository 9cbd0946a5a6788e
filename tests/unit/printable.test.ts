import { describe, expect, it } from 'vitest';
import { printable, terminalSafeJson } from '../../src/io/printable.js';

describe('printable', () => {
  it('shows C0, DEL, C1 and bidi characters as visible escapes, and keeps other text', () => {
    expect(printable('\x1b]0;t\x07\x1b[2K\rx\x7f\x9b\t\n')).toBe('\\x1b]0;t\\x07\\x1b[2K\\x0dx\\x7f\\x9b\\x09\\x0a');
    expect(printable('a\u202ecba\u202c \u2066b\u2069')).toBe('a\\u202ecba\\u202c \\u2066b\\u2069');
    expect(printable('Zoë O’Neill <zoe@oak.example> 学校')).toBe('Zoë O’Neill <zoe@oak.example> 学校');
    expect(printable(null)).toBe('');
  });
});

describe('terminalSafeJson', () => {
  it('escapes DEL, C1 and bidi characters and parses back to the same value', () => {
    const value = { name: '\u202eevil\x9b31m\x7f', lines: 'a\nb\x1b' };
    const text = terminalSafeJson(value, 2);
    expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
    expect(JSON.parse(text)).toEqual(value);
  });
});
