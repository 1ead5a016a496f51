/**
 * Server configuration: defaults, validation, and the command-line flags of `npm run server`.
 * Every bad value is reported as HEARTH_E_CONFIG naming the flag, so an operator sees which one to fix.
 */
import { HearthError } from '../protocol/errors.js';
import { UPDATE_HEADER_BYTES } from '../protocol/update-format.js';

/** Log levels the server accepts (fastify's pino levels, plus 'silent', the default). */
export const SERVER_LOG_LEVELS = [
  'silent',
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
] as const;

/** One of SERVER_LOG_LEVELS. */
export type ServerLogLevel = (typeof SERVER_LOG_LEVELS)[number];

/**
 * Hard ceiling on an update body, whatever the model size: a body is buffered in memory before it is
 * validated, so an unbounded limit would let one request exhaust the process.
 */
export const MAX_BODY_LIMIT_BYTES = 64 * 1024 * 1024;

/** Everything the server needs to run. */
export interface ServerConfig {
  /** TCP port; 0 picks a free one. */
  readonly port: number;
  /** Interface to bind; loopback by default so nothing is exposed by accident. */
  readonly host: string;
  /** SQLite database file (':memory:' for a throwaway store). */
  readonly dbPath: string;
  /** Seed model directory (manifest.json + weights); only needed while the database has no version. */
  readonly modelDir?: string;
  /** Minimum cohort m: updates a round needs before it aggregates. */
  readonly minCohort: number;
  /** L2 bound S every update is (re-)clipped to. */
  readonly clipNorm: number;
  /** Largest example count an update's weight may claim. */
  readonly maxExamples: number;
  /** Step size of the server optimiser (1 = plain FedAvg). */
  readonly serverLearningRate: number;
  /**
   * Update body limit override. By default it is derived from the model (header + float32 payload);
   * either way it is capped at MAX_BODY_LIMIT_BYTES.
   */
  readonly bodyLimitBytes?: number;
  /**
   * CORS origins: `true` reflects any origin (the SDK runs on third-party sites). The seam for the
   * per-site origin allow-list a later issue adds.
   */
  readonly corsOrigins: true | readonly string[];
  /** fastify logger level; 'silent' turns the logger off. */
  readonly logLevel: ServerLogLevel;
}

/** Defaults for every optional field. */
export const DEFAULT_CONFIG = {
  port: 8787,
  host: '127.0.0.1',
  dbPath: '.hearth/server.db',
  minCohort: 3,
  clipNorm: 1.0,
  maxExamples: 1000,
  serverLearningRate: 1.0,
  corsOrigins: true,
  logLevel: 'silent',
} as const satisfies Partial<ServerConfig>;

function bad(what: string, detail: string): never {
  throw new HearthError('HEARTH_E_CONFIG', `${what} ${detail}`);
}

function checkInt(what: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    bad(what, `must be an integer from ${min} to ${max}, got ${value}`);
  }
}

function checkPositive(what: string, value: number): void {
  if (!Number.isFinite(value) || !(value > 0)) bad(what, `must be a positive number, got ${value}`);
}

/** Fills defaults into a partial config and validates every field. */
export function resolveConfig(partial: Partial<ServerConfig> = {}): ServerConfig {
  const config: ServerConfig = { ...DEFAULT_CONFIG, ...stripUndefined(partial) };
  checkInt('port', config.port, 0, 65535);
  if (config.host === '') bad('host', 'must not be empty');
  if (config.dbPath === '') bad('db', 'must not be empty');
  if (config.modelDir === '') bad('model', 'must not be empty');
  checkInt('minCohort', config.minCohort, 1, 1_000_000);
  checkPositive('clipNorm', config.clipNorm);
  checkInt('maxExamples', config.maxExamples, 1, 1_000_000);
  checkPositive('serverLearningRate', config.serverLearningRate);
  if (config.bodyLimitBytes !== undefined) {
    checkInt('bodyLimitBytes', config.bodyLimitBytes, UPDATE_HEADER_BYTES, MAX_BODY_LIMIT_BYTES);
  }
  if (!(SERVER_LOG_LEVELS as readonly string[]).includes(config.logLevel)) {
    bad('logLevel', `must be one of ${SERVER_LOG_LEVELS.join(', ')}, got ${config.logLevel}`);
  }
  return config;
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/**
 * The update body limit for a model of `paramCount` values: header plus a float32 payload (the
 * largest dtype), or the configured override, never above MAX_BODY_LIMIT_BYTES.
 */
export function updateBodyLimit(paramCount: number, config: ServerConfig): number {
  const derived = config.bodyLimitBytes ?? UPDATE_HEADER_BYTES + 4 * paramCount;
  return Math.min(derived, MAX_BODY_LIMIT_BYTES);
}

/** Usage text of the CLI. */
export const USAGE = `Usage: npm run server -- [options]
  --port <n>          TCP port, 0 for any free port (default ${DEFAULT_CONFIG.port})
  --host <h>          interface to bind (default ${DEFAULT_CONFIG.host})
  --db <file>         SQLite database file (default ${DEFAULT_CONFIG.dbPath})
  --model <dir>       seed model directory, needed while the database is empty
  --min-cohort <m>    updates per round before aggregation (default ${DEFAULT_CONFIG.minCohort})
  --clip-norm <S>     L2 clipping bound of updates (default ${DEFAULT_CONFIG.clipNorm})
  --log-level <l>     ${SERVER_LOG_LEVELS.join(' | ')} (default ${DEFAULT_CONFIG.logLevel})`;

type FlagParser = (value: string, flag: string, out: Record<string, unknown>) => void;

function intFlag(key: keyof ServerConfig, min: number, max: number): FlagParser {
  return (value, flag, out) => {
    const n = /^-?\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      bad(flag, `must be an integer from ${min} to ${max}, got '${value}'`);
    }
    out[key] = n;
  };
}

function positiveFlag(key: keyof ServerConfig): FlagParser {
  return (value, flag, out) => {
    const n = value.trim() === '' ? NaN : Number(value);
    if (!Number.isFinite(n) || !(n > 0)) bad(flag, `must be a positive number, got '${value}'`);
    out[key] = n;
  };
}

function stringFlag(key: keyof ServerConfig): FlagParser {
  return (value, flag, out) => {
    if (value === '') bad(flag, 'must not be empty');
    out[key] = value;
  };
}

const FLAGS: Readonly<Record<string, FlagParser>> = {
  '--port': intFlag('port', 0, 65535),
  '--host': stringFlag('host'),
  '--db': stringFlag('dbPath'),
  '--model': stringFlag('modelDir'),
  '--min-cohort': intFlag('minCohort', 1, 1_000_000),
  '--clip-norm': positiveFlag('clipNorm'),
  '--log-level': (value, flag, out) => {
    if (!(SERVER_LOG_LEVELS as readonly string[]).includes(value)) {
      bad(flag, `must be one of ${SERVER_LOG_LEVELS.join(', ')}, got '${value}'`);
    }
    out.logLevel = value;
  },
};

/**
 * Parses CLI flags (`--flag value` or `--flag=value`; argv without the node and script entries) into
 * a validated config. Throws HEARTH_E_CONFIG naming the offending flag.
 */
export function parseArgs(argv: readonly string[]): ServerConfig {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const parse = FLAGS[flag];
    if (!parse) bad(flag, 'is not a known option (see --help)');
    let value: string | undefined;
    if (flag !== arg) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      // A following flag is a forgotten value, not the value itself.
      if (value === undefined || value.startsWith('--')) bad(flag, 'needs a value');
      i++;
    }
    parse(value, flag, out);
  }
  return resolveConfig(out as Partial<ServerConfig>);
}
