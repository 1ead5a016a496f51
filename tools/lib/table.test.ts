import { describe, expect, it } from 'vitest';
import { markdownRow, markdownTable } from './table.js';

describe('markdownTable', () => {
  it('writes a header, a rule and one line per row', () => {
    expect(markdownRow(['a', 'b'])).toBe('| a | b |');
    expect(
      markdownTable(
        ['operation', 'median ms'],
        [
          ['encode', '1.00'],
          ['decode', '2.50'],
        ],
      ),
    ).toBe(
      ['| operation | median ms |', '| --- | --- |', '| encode | 1.00 |', '| decode | 2.50 |'].join(
        '\n',
      ),
    );
  });
});
