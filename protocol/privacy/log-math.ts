/**
 * Log-space numerics for the privacy accountant. RDP sums run over terms like
 * C(512, i) * q^i * exp(i^2 / (2 sigma^2)) whose magnitudes overflow float64 long before the sum is
 * finished, so every quantity is kept as its logarithm and combined with log-add / log-sub. Pure
 * functions, no dependencies: the same file runs on the server and, later, on the device.
 */

/**
 * Lanczos coefficients for g = 7, n = 9 (the set popularised by Numerical Recipes / Boost, Godfrey's
 * fit): relative error about 1e-15 for log Gamma on positive arguments, which is all the accountant
 * needs (scipy's gammaln is of the same order).
 */
const LANCZOS_G = 7;
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
  -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
  1.5056327351493116e-7,
];
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * log |Gamma(x)| for any real x that is not a pole (0, -1, -2, ... give +Infinity). Negative and
 * small arguments go through the reflection formula Gamma(x) Gamma(1 - x) = pi / sin(pi x).
 */
export function logGamma(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return Infinity;
  if (x <= 0 && Number.isInteger(x)) return Infinity;
  if (x < 0.5) {
    // sin(pi x) from the distance to the nearest integer: for large |x| the product pi * x would
    // lose the fractional part to rounding before sin ever saw it.
    const frac = x - Math.round(x);
    return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * frac))) - logGamma(1 - x);
  }
  const z = x - 1;
  let sum = LANCZOS[0]!;
  for (let k = 1; k < LANCZOS.length; k++) sum += LANCZOS[k]! / (z + k);
  const t = z + LANCZOS_G + 0.5;
  return HALF_LOG_2PI + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** log C(n, k) for integers 0 <= k <= n, through log Gamma so n in the thousands cannot overflow. */
export function logComb(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/**
 * log |C(alpha, k)| and its sign for real alpha > 0 and integer k >= 0 (the generalised binomial
 * coefficient alpha (alpha - 1) ... (alpha - k + 1) / k!). For non-integer alpha the factors
 * (alpha - j) turn negative once j > alpha, so the sign alternates after k = ceil(alpha); the
 * fractional-order RDP series adds and subtracts terms by this sign, as Opacus and TF Privacy do.
 */
export function logAbsBinomial(alpha: number, k: number): { logAbs: number; sign: 1 | -1 | 0 } {
  if (Number.isInteger(alpha) && k > alpha) return { logAbs: -Infinity, sign: 0 };
  const logAbs = logGamma(alpha + 1) - logGamma(k + 1) - logGamma(alpha - k + 1);
  const negatives = Math.max(0, k - Math.ceil(alpha));
  return { logAbs, sign: negatives % 2 === 0 ? 1 : -1 };
}

/** log(exp(a) + exp(b)) without overflow; -Infinity stands for 0. */
export function logAdd(a: number, b: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  if (lo === -Infinity) return hi;
  return Math.log1p(Math.exp(lo - hi)) + hi;
}

/**
 * log(exp(a) - exp(b)) for a >= b. A negative result cannot be represented, and in the RDP series it
 * would mean the arithmetic has gone wrong, so it throws rather than return a silently wrong bound.
 */
export function logSub(a: number, b: number): number {
  if (a < b) throw new RangeError(`log-space subtraction would be negative (${a} < ${b})`);
  if (b === -Infinity) return a;
  if (a === b) return -Infinity;
  const diff = a - b;
  // expm1 overflows past ~709; exp(b) is then negligible next to exp(a).
  if (diff > 700) return a;
  return Math.log(Math.expm1(diff)) + b;
}

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);

/** erf(x) by its Maclaurin series; accurate to ~1e-16 absolute for |x| <= 2. */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x; // x^(2n+1) (-1)^n / n!
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= -x2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/**
 * log of the continued fraction K(x) = sqrt(pi) exp(x^2) erfc(x) for x >= 1.5, evaluated with the
 * modified Lentz method on the even (Jacobi) form
 *   erfc(x) = x exp(-x^2) / sqrt(pi) * 1 / (x^2 + 1/2 - (1*2/4) / (x^2 + 5/2 - (3*4/4) / (x^2 + 9/2 - ...)))
 * which converges quickly for x away from 0 and never underflows, however large x is.
 */
function logScaledErfcCf(x: number): number {
  const tiny = 1e-300;
  const x2 = x * x;
  let f = x2 + 0.5;
  let c = f;
  let d = 0;
  for (let n = 1; n < 5000; n++) {
    const a = -(n * (2 * n - 1)) / 2;
    const b = x2 + 0.5 + 2 * n;
    d = b + a * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + a / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const step = c * d;
    f *= step;
    if (Math.abs(step - 1) < 1e-16) break;
  }
  return Math.log(x / f);
}

/**
 * log(erfc(x)) with full relative accuracy for large positive x, where erfc(x) itself underflows
 * (x > ~27) — the role scipy's log_ndtr plays in the Python accountants.
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return -Infinity;
  if (x === -Infinity) return Math.LN2;
  if (x < 0) {
    // erfc(x) = 2 - erfc(-x), in (1, 2): no cancellation.
    return Math.LN2 + Math.log1p(-Math.exp(logErfc(-x)) / 2);
  }
  if (x < 1.5) return Math.log1p(-erfSeries(x));
  return -x * x - LOG_SQRT_PI + logScaledErfcCf(x);
}

/** Φ(t), the standard normal CDF, with full relative accuracy in the lower tail (through logErfc). */
export function normalCdf(t: number): number {
  return 0.5 * Math.exp(logErfc(-t / Math.SQRT2));
}
