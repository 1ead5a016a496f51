/**
 * The trainer as a library: `trainAndExport` runs one training end to end; DEFAULTS and scoringDims
 * say what a run on each dataset trains, for callers that size models like the shipped ones.
 */
export { DEFAULTS, scoringDims, type Hyper } from './defaults.js';
export {
  trainAndExport,
  type RunOptions,
  type TrainAndExportOptions,
  type TrainAndExportResult,
} from './train-and-export.js';
