/**
 * JSON Lines (https://jsonlines.org/): one JSON value a line, blank lines skipped. Shared by the
 * readers of catalogues (server/catalog-parse.ts) and of sites' click logs (tools/data/site-log.ts),
 * which report a bad line by its number through `bad`.
 */
export function jsonLines(
  text: string,
  bad: (line: number, problem: string) => never,
): { readonly value: unknown; readonly line: number }[] {
  const out: { value: unknown; line: number }[] = [];
  text.split('\n').forEach((row, i) => {
    if (row.trim() === '') return;
    try {
      out.push({ value: JSON.parse(row), line: i + 1 });
    } catch (error) {
      bad(i + 1, `not JSON (${(error as Error).message})`);
    }
  });
  return out;
}
