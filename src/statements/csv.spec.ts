import { describe, expect, it } from '@jest/globals';
import { csvField, csvLine, inertText } from './csv.js';

describe('csv', () => {
  it.each([
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    ['cr\r', '"cr\r"'],
    ['', ''],
  ])('writes the field %p as %p', (v, out) => {
    expect(csvField(v)).toBe(out);
  });

  it('ends a line with CRLF', () => {
    expect(csvLine(['a', 'b,c'])).toBe('a,"b,c"\r\n');
  });

  it.each([
    ['=SUM(A1)', "'=SUM(A1)"],
    ['+1', "'+1"],
    ['-1', "'-1"],
    ['@cmd', "'@cmd"],
    ['prod', 'prod'],
  ])('keeps the text %p from running as a formula', (v, out) => {
    expect(inertText(v)).toBe(out);
  });
});
