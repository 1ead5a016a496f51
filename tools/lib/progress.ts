/** Terminal progress bars of the command-line programs, all in one style. */
import cliProgress from 'cli-progress';

/**
 * A one-line progress bar in the tools' common style (cli-progress `shades_classic`); `options`
 * carries the format and any per-bar settings. Not started: call `start(total, 0)`.
 */
export function progressBar(options: cliProgress.Options): cliProgress.SingleBar {
  return new cliProgress.SingleBar(options, cliProgress.Presets.shades_classic);
}
