import { spawnSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('./train.ts', import.meta.url));

/** Runs `npm run train -- ...args` as a child process. */
function train(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8' });
}

describe('the train command', () => {
  it('prints its flags with --help and trains nothing', () => {
    const run = train('--help');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('Usage: npm run train -- --out <dir>');
    for (const flag of ['--dataset <yoochoose-rsc15-100k|diginetica|', '--recent-lr', '--resume']) {
      expect(run.stdout).toContain(flag);
    }
    expect(run.stderr).toBe('');
  });

  // Each value check has its own unit test (tools/lib/args.test.ts); these show the command uses them.
  it('refuses bad flags with exit code 1 and a message that names the flag', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'hearth-train-cli-')), 'model');
    const refusals: [string[], string][] = [
      [['--dataset', 'synthetic'], '--out <model-dir> is required'],
      [
        ['--out', out, '--dataset', 'nope'],
        '--dataset must be one of yoochoose-rsc15-100k, diginetica, amazon-beauty, synthetic',
      ],
      [['--out', out, '--dataset', 'synthetic', '--epochs', '1.5'], '--epochs must be a positive'],
      [
        ['--out', out, '--dataset', 'synthetic', '--recent-fraction', '2'],
        '--recent-fraction must be a number in 0..1',
      ],
    ];
    for (const [args, message] of refusals) {
      const run = train(...args);
      expect(run.status, args.join(' ')).toBe(1);
      expect(run.stderr).toContain(message);
      expect(run.stdout).toBe('');
    }
  });
});
