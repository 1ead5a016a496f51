/**
 * Epsilon of a federated training plan, from the same RDP accountant the server and device use.
 *
 *   npm run privacy -- --noise <z> --sample-rate <q> --steps <t> --delta <d> [--pld]
 *   npm run privacy -- --traffic <visitors a day,...> [server flags]
 *
 * z is the noise multiplier (noise std over the L2 sensitivity), q the probability that one device
 * takes part in a round, t the number of published rounds. Prints epsilon and the RDP order that
 * gave it; with --pld, also the epsilon of the privacy loss distribution (protocol/privacy/pld.ts),
 * the tighter bound `npm run federate -- --accountant pld` prices runs by. With --traffic, a table of what a site running the server with the given flags (its
 * defaults otherwise: `npm run server`'s own parser) spends at each steady traffic after a day, a
 * month and a year (server/privacy.ts trafficEpsilon). Bad or missing flags exit with code 2 and a
 * message naming the flag.
 */
import { HearthError } from '../protocol/errors.js';
import {
  computeEpsilon,
  pldEpsilon,
  type EpsilonResult,
  type PrivacyParams,
} from '../protocol/privacy/index.js';
import { parseArgs as parseServerArgs } from '../server/config.js';
import { currentSettings, trafficEpsilon } from '../server/privacy.js';
import { isEntryPoint } from './lib/entry.js';

/** Usage text of the command. */
export const PRIVACY_USAGE = `Usage: npm run privacy -- --noise <z> --sample-rate <q> --steps <t> --delta <d> [--pld]
       npm run privacy -- --traffic <visitors a day, comma-separated> [npm run server flags]
  --noise <z>         noise multiplier, > 0
  --sample-rate <q>   probability that a device joins a round, in [0, 1]
  --steps <t>         number of noised rounds, a non-negative integer
  --delta <d>         target delta, in (0, 1)
  --pld               also the privacy loss distribution's epsilon (tighter than RDP)`;

/** A command-line mistake: the message names the flag; the process exits with code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const FLAGS = {
  '--noise': 'noise',
  '--sample-rate': 'sampleRate',
  '--steps': 'steps',
  '--delta': 'delta',
} as const satisfies Record<string, keyof PrivacyParams>;

type Key = (typeof FLAGS)[keyof typeof FLAGS];

type Flag = keyof typeof FLAGS;

function isFlag(value: string): value is Flag {
  return Object.hasOwn(FLAGS, value);
}

/** Parses `--flag value` / `--flag=value` pairs into accountant parameters (all four required). */
export function parsePrivacyArgs(argv: readonly string[]): PrivacyParams {
  const out: Partial<Record<Key, number>> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (!isFlag(flag)) throw new UsageError(`${flag} is not a known option`);
    let value: string | undefined;
    if (flag !== arg) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      // '--steps --delta 1e-5' forgot a value; a negative number is still a value (and refused below).
      if (value === undefined || /^--[a-z]/.test(value))
        throw new UsageError(`${flag} needs a value`);
      i++;
    }
    const n = value.trim() === '' ? NaN : Number(value);
    if (Number.isNaN(n)) throw new UsageError(`${flag} must be a number, got '${value}'`);
    const key = FLAGS[flag];
    if (out[key] !== undefined) throw new UsageError(`${flag} given twice`);
    out[key] = n;
  }
  for (const [flag, key] of Object.entries(FLAGS)) {
    if (out[key] === undefined) throw new UsageError(`${flag} is required`);
  }
  const params = out as Required<typeof out>;
  const checks: [Flag, boolean, string][] = [
    ['--noise', Number.isFinite(params.noise) && params.noise > 0, 'a finite number > 0'],
    ['--sample-rate', params.sampleRate >= 0 && params.sampleRate <= 1, 'in [0, 1]'],
    ['--steps', Number.isSafeInteger(params.steps) && params.steps >= 0, 'an integer >= 0'],
    ['--delta', params.delta > 0 && params.delta < 1, 'in (0, 1)'],
  ];
  for (const [flag, ok, rule] of checks) {
    if (!ok) throw new UsageError(`${flag} must be ${rule}, got ${params[FLAGS[flag]]}`);
  }
  return params;
}

/** The report line(s) for a result. */
export function formatPrivacy(params: PrivacyParams, result: EpsilonResult): string {
  return [
    `epsilon = ${result.epsilon}`,
    `best RDP order = ${result.order}`,
    `(noise ${params.noise}, sample rate ${params.sampleRate}, ${params.steps} steps, ` +
      `delta ${params.delta}; sampled Gaussian RDP, Balle et al. 2020 conversion)`,
  ].join('\n');
}

/** The days the traffic table reports epsilon after. */
export const TRAFFIC_DAYS = [1, 30, 365] as const;

/**
 * The markdown table of `--traffic <list>` under the server flags `serverArgv` (the server's own
 * parser and defaults): per steady traffic, updates and rounds a day and epsilon after each of
 * TRAFFIC_DAYS.
 */
export function trafficTable(list: string | undefined, serverArgv: readonly string[]): string {
  if (list === undefined || list.startsWith('--')) throw new UsageError('--traffic needs a value');
  const visitors = list.split(',').map((v) => Number(v));
  if (!visitors.every((v) => Number.isFinite(v) && v > 0)) {
    throw new UsageError(`--traffic must be positive numbers separated by commas, got '${list}'`);
  }
  const config = parseServerArgs(serverArgv);
  const f = (x: number, digits: number) =>
    x.toLocaleString('en-US', { maximumFractionDigits: digits });
  const windows = config.roundWindowSeconds > 0;
  const charge = currentSettings(config);
  const lines = [
    windows
      ? `z ${config.noiseMultiplier}, q ${config.sampleRate}, m ${config.minCohort}, round windows of ` +
        `${config.roundWindowSeconds} s with count noise ${config.countNoise} (each charged at z ` +
        `${f(charge.noiseMultiplier, 4)}, published or not), delta ${config.delta.toExponential()}; ` +
        'each visitor visits once a day'
      : `z ${config.noiseMultiplier}, q ${config.sampleRate}, m ${config.minCohort}, s ${config.maxStaleness} ` +
        `(charged at q_eff ${f(charge.sampleRate, 4)}), delta ${config.delta.toExponential()}, round deadline ` +
        `${config.roundDeadlineSeconds} s; each visitor visits once a day`,
    '',
    `| visitors a day | updates a day | ${windows ? 'updates a window' : 'rounds a day'} | ${TRAFFIC_DAYS.map((d) => `ε after ${d} day${d > 1 ? 's' : ''}`).join(' | ')} |`,
    `| --- | --- | --- | ${TRAFFIC_DAYS.map(() => '---').join(' | ')} |`,
  ];
  for (const n of visitors) {
    const t = trafficEpsilon(config, n, TRAFFIC_DAYS);
    const unit = windows ? 'windows' : 'rounds';
    const eps =
      t.roundsFill || windows
        ? t.epsilon.map((e) => `${f(e.epsilon, 2)} (${f(e.rounds, 0)} ${unit})`)
        : TRAFFIC_DAYS.map(() => 'no round fills before the deadline');
    // With windows every window is charged; one expecting fewer than m updates mostly publishes
    // nothing.
    const third = windows
      ? `${f(t.updatesPerDay / t.roundsPerDay, 1)}${t.roundsFill ? '' : ' (< m: few publish)'}`
      : f(t.roundsPerDay, 2);
    lines.push(`| ${f(n, 0)} | ${f(t.updatesPerDay, 1)} | ${third} | ${eps.join(' | ')} |`);
  }
  return lines.join('\n');
}

/**
 * Runs the command on `argv` and returns its exit code: 0 with the report on `out`, 2 with the
 * message and usage on `err` for a usage mistake.
 */
export function runPrivacyCli(
  argv: readonly string[],
  out: (line: string) => void,
  err: (line: string) => void,
): number {
  if (argv.includes('--help') || argv.includes('-h')) {
    out(PRIVACY_USAGE);
    return 0;
  }
  try {
    const traffic = argv.indexOf('--traffic');
    if (traffic >= 0) {
      out(trafficTable(argv[traffic + 1], [...argv.slice(0, traffic), ...argv.slice(traffic + 2)]));
      return 0;
    }
    const pld = argv.includes('--pld');
    const params = parsePrivacyArgs(argv.filter((arg) => arg !== '--pld'));
    out(formatPrivacy(params, computeEpsilon(params)));
    if (pld) {
      const { noise, sampleRate, steps, delta } = params;
      out(
        `PLD epsilon = ${pldEpsilon([{ noise, sampleRate, steps }], delta)}\n` +
          '(privacy loss distribution, each loss rounded up onto a 1e-4 grid: an upper bound ' +
          'within steps x 1e-4 of the exact value; the server reports the RDP epsilon above)',
      );
    }
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      err(`${error.message}\n\n${PRIVACY_USAGE}`);
      return 2;
    }
    // The flags are checked above; the accountant's own validation is a second line of defence.
    if (
      error instanceof HearthError &&
      (error.code === 'HEARTH_E_PRIVACY_PARAMS' || error.code === 'HEARTH_E_CONFIG')
    ) {
      err(`${error.message}\n\n${PRIVACY_USAGE}`);
      return 2;
    }
    throw error;
  }
}

if (isEntryPoint(import.meta.url)) {
  process.exitCode = runPrivacyCli(
    process.argv.slice(2),
    (line) => console.log(line),
    (line) => console.error(line),
  );
}
