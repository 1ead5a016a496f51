/** Markdown tables for the command-line programs' reports (tools/ and bench/). */

/** One markdown table row: `| a | b |`. */
export function markdownRow(cells: readonly string[]): string {
  return `| ${cells.join(' | ')} |`;
}

/** Formats rows as a markdown table (every column left-aligned). */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  return [
    markdownRow(header),
    markdownRow(header.map(() => '---')),
    ...rows.map((row) => markdownRow(row)),
  ].join('\n');
}
