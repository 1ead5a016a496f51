/**
 * A levelled logger for library code (SDK and worker), silent by default: a host page's console is
 * not ours to fill. `data-debug` turns it up. Never pass interaction data to it above 'debug'.
 */

export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug';

const RANK: Record<LogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };

/** A logger bound to a scope name. */
export interface Logger {
  error(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  info(...args: unknown[]): void;
  debug(...args: unknown[]): void;
}

let level: LogLevel = 'silent';

/** Sets the level for every logger in this realm (page or worker). */
export function setLogLevel(next: LogLevel): void {
  level = next;
}

/** Creates a logger whose lines start with `[hearth:<scope>]`. */
export function createLogger(scope: string): Logger {
  const emit =
    (at: Exclude<LogLevel, 'silent'>) =>
    (...args: unknown[]): void => {
      if (RANK[level] < RANK[at]) return;
      // The one sanctioned console use: everything funnels through here.
      // eslint-disable-next-line no-console
      console[at === 'debug' ? 'log' : at](`[hearth:${scope}]`, ...args);
    };
  return { error: emit('error'), warn: emit('warn'), info: emit('info'), debug: emit('debug') };
}
