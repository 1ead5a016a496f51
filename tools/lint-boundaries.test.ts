/**
 * The folder boundaries (README, "Architecture") as ESLint enforces them on the repository's own
 * config: every folder's import of every other folder is linted, and exactly the directions listed
 * here pass. A widened or forgotten rule in eslint.config.js fails this test.
 */
import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The allowed directions, written down independently of eslint.config.js. */
const ALLOWED: Record<string, readonly string[]> = {
  src: ['protocol'],
  demo: ['src', 'protocol'],
  worker: ['model', 'protocol'],
  model: ['protocol'],
  protocol: [],
  server: ['model', 'protocol'],
  tools: ['model', 'worker', 'server', 'protocol'],
  integration: ['src', 'worker', 'model', 'protocol', 'server', 'tools'],
  bench: ['src', 'worker', 'model', 'protocol', 'server', 'tools', 'demo'],
  e2e: ['src', 'worker', 'model', 'protocol', 'server', 'tools', 'demo'],
};
const FOLDERS = Object.keys(ALLOWED);

let eslint: ESLint;

beforeAll(() => {
  eslint = new ESLint({ cwd: root });
});

/** The rule ids ESLint reports for `code` as if it were the file `path`. */
async function violations(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}${path}` });
  return result!.messages.map((m) => m.ruleId ?? m.message);
}

const importing = (specifier: string) =>
  `import { thing } from '${specifier}';\nexport const value = thing;\n`;

describe('folder boundaries', () => {
  for (const from of FOLDERS) {
    it(`${from}/ imports exactly ${ALLOWED[from]!.join(', ') || 'nothing else'}`, async () => {
      for (const to of FOLDERS.filter((f) => f !== from)) {
        const allowed = ALLOWED[from]!.includes(to);
        // From the folder itself and from one level down, as a real file would climb.
        for (const [path, specifier] of [
          [`${from}/probe.ts`, `../${to}/thing.js`],
          [`${from}/deeper/probe.ts`, `../../${to}/thing.js`],
        ] as const) {
          const found = await violations(path, importing(specifier));
          expect(found.includes('no-restricted-imports'), `${path} -> ${specifier}`).toBe(!allowed);
        }
      }
    });
  }

  it('lets a folder import itself, and tests follow their folder', async () => {
    expect(await violations('worker/deeper/probe.ts', importing('../engine.js'))).toEqual([]);
    expect(await violations('worker/probe.test.ts', importing('../server/start.js'))).toContain(
      'no-restricted-imports',
    );
  });

  it('keeps Node out of code that runs in a browser, and storage and HTTP out of the model', async () => {
    for (const folder of ['src', 'worker', 'model', 'protocol', 'demo']) {
      expect(await violations(`${folder}/probe.ts`, importing('node:fs'))).toContain(
        'no-restricted-imports',
      );
    }
    expect(await violations('server/probe.ts', importing('node:fs'))).toEqual([]);
    expect(await violations('model/probe.ts', importing('idb'))).toContain('no-restricted-imports');
    expect(await violations('src/probe.ts', importing('@tensorflow/tfjs-core'))).toContain(
      'no-restricted-imports',
    );
    expect(await violations('model/probe.ts', 'export const f = () => fetch("/x");\n')).toContain(
      'no-restricted-globals',
    );
    expect(await violations('model/probe.ts', importing('@tensorflow/tfjs-core'))).toEqual([]);
  });
});
