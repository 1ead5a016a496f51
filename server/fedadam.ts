/**
 * FedAdam, the adaptive server optimiser of Reddi et al. 2021, "Adaptive Federated Optimization"
 * (https://arxiv.org/abs/2003.00295, Algorithm 2). The round's aggregated (and, with DP, noised) mean
 * delta Delta_t is a pseudo-gradient pointing downhill:
 *
 *   m_t = beta1 m_{t-1} + (1 - beta1) Delta_t
 *   v_t = beta2 v_{t-1} + (1 - beta2) Delta_t^2
 *   x_{t+1} = x_t + lr * m_t / (sqrt(v_t) + tau)
 *
 * with m_{-1} = 0 and v_{-1} = tau^2 as in the paper, and no bias correction (the paper has none; tau
 * keeps the first steps bounded instead). Post-processing of the noised mean, so it costs no privacy.
 * The state lives in the store and is written in the same transaction as the version it produced.
 */

/** FedAdam's constants from the paper's experiments (beta1 0.9, beta2 0.99, tau 1e-3). */
export const FEDADAM = { beta1: 0.9, beta2: 0.99, tau: 1e-3 } as const;

/** The optimiser state carried from round to round, in float64. */
export interface FedAdamState {
  /** Rounds applied so far. */
  readonly step: number;
  /** First moment m_t. */
  readonly m: Float64Array;
  /** Second moment v_t. */
  readonly v: Float64Array;
}

/** The state before the first round: m = 0, v = tau^2. */
export function initialFedAdamState(length: number, tau: number = FEDADAM.tau): FedAdamState {
  return { step: 0, m: new Float64Array(length), v: new Float64Array(length).fill(tau * tau) };
}

/**
 * The server's step size per coordinate: `rate` everywhere, or `items.rate` on the coordinates
 * [items.start, items.end) that hold item rows and biases. An item row moves only in the rounds that
 * name it, and only a few of its devices touch it, so it may need a larger step than the dense
 * tensors every device moves every round.
 */
export interface StepSizes {
  readonly rate: number;
  /**
   * The item coordinates' own step size and, optionally, their own tau (left out: the dense
   * tensors' tau). With noise on, a row no device moved sees only noise, which a small tau would
   * turn into a step of about the learning rate; the dense tensors, which every device moves, need
   * no such floor.
   */
  readonly items?: {
    readonly start: number;
    readonly end: number;
    readonly rate: number;
    readonly tau?: number;
  };
}

/** The step size of coordinate `i`. */
export function stepSizeAt(sizes: StepSizes, i: number): number {
  const items = sizes.items;
  return items && i >= items.start && i < items.end ? items.rate : sizes.rate;
}

/** One FedAdam step; returns the new weights and state, leaving the inputs untouched. */
export function fedAdamStep(
  global: Float32Array,
  delta: Float64Array,
  state: FedAdamState | undefined,
  learningRate: number | StepSizes,
  constants: { readonly beta1: number; readonly beta2: number; readonly tau: number } = FEDADAM,
): { weights: Float32Array; state: FedAdamState } {
  const sizes = typeof learningRate === 'number' ? { rate: learningRate } : learningRate;
  const { beta1, beta2, tau } = constants;
  const previous = state ?? initialFedAdamState(global.length, tau);
  if (previous.m.length !== global.length || previous.v.length !== global.length) {
    throw new RangeError(
      `FedAdam state has ${previous.m.length} values, model has ${global.length}; ` +
        'the stored optimiser state belongs to another model layout',
    );
  }
  const m = new Float64Array(global.length);
  const v = new Float64Array(global.length);
  const weights = new Float32Array(global.length);
  const items = sizes.items;
  const itemTau = items?.tau ?? tau;
  for (let i = 0; i < global.length; i++) {
    const d = delta[i]!;
    m[i] = beta1 * previous.m[i]! + (1 - beta1) * d;
    v[i] = beta2 * previous.v[i]! + (1 - beta2) * d * d;
    const t = items && i >= items.start && i < items.end ? itemTau : tau;
    weights[i] = global[i]! + (stepSizeAt(sizes, i) * m[i]!) / (Math.sqrt(v[i]!) + t);
  }
  return { weights, state: { step: previous.step + 1, m, v } };
}
