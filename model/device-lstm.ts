/**
 * The LSTM recurrence for device-batched local training (local-update.ts), with backpropagation
 * through time written out. Every device has its own recurrent matrix ([B, h, 4h]), so autodiff's
 * gradient would be an outer product [B, h, 4h] per time step, plus a transpose of the matrix per
 * step: on the wasm backend ~100 ms a step for 128 devices, most of local training. Here the
 * matrix is transposed once, each step's gate gradients are kept, and the matrix's gradient is one
 * batched product over all steps, sum_t h_{t-1}^T dz_t.
 *
 * The maths is forward.ts lstmStates' (gates i, f, g, o in that order; h = c = 0 before the first
 * step): z_t = xz_t + h_{t-1} U, c_t = s(f) c_{t-1} + s(i) tanh(g), h_t = s(o) tanh(c_t).
 */
import * as tf from '@tensorflow/tfjs-core';

/** [B, m, k] x [B, k, n]. */
function bmm(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  return tf.matMul(a, b);
}

/**
 * Hidden states [B, S, T, h] of B devices' S windows of T steps, from the input half of the gate
 * pre-activations `xz` [B, S, T, 4h] (x_t W + b) and each device's recurrent matrix `u` [B, h, 4h].
 * Differentiable with respect to both.
 */
export function deviceLstm(xz: tf.Tensor4D, u: tf.Tensor3D): tf.Tensor4D {
  const [B, S, T, four] = xz.shape;
  const h = four / 4;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, recurrent, save] = args as [tf.Tensor4D, tf.Tensor3D, tf.GradSaveFunc];
    const steps = tf.unstack(input, 2) as tf.Tensor3D[]; // T x [B, S, 4h]
    const gates: tf.Tensor3D[] = [];
    const cells: tf.Tensor3D[] = [];
    const states: tf.Tensor3D[] = [];
    let hPrev: tf.Tensor3D | null = null;
    let cPrev: tf.Tensor3D | null = null;
    for (const xzt of steps) {
      const z: tf.Tensor3D = hPrev ? tf.add(xzt, bmm(hPrev, recurrent)) : xzt;
      const [zi, zf, zg, zo] = tf.split(z, 4, 2) as [
        tf.Tensor3D,
        tf.Tensor3D,
        tf.Tensor3D,
        tf.Tensor3D,
      ];
      const i = tf.sigmoid(zi);
      const f = tf.sigmoid(zf);
      const g = tf.tanh(zg);
      const o = tf.sigmoid(zo);
      const ig: tf.Tensor3D = tf.mul(i, g);
      const c: tf.Tensor3D = cPrev ? tf.add(tf.mul(f, cPrev), ig) : ig;
      const hNext: tf.Tensor3D = tf.mul(o, tf.tanh(c));
      gates.push(tf.concat([i, f, g, o], 2));
      cells.push(c);
      states.push(hNext);
      hPrev = hNext;
      cPrev = c;
    }
    const value = tf.stack(states, 2) as tf.Tensor4D;
    const savedGates = tf.stack(gates, 2);
    const savedCells = tf.stack(cells, 2);
    save([savedGates, savedCells, value, recurrent]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [gateAll, cellAll, stateAll, uSaved] = saved as [
          tf.Tensor4D,
          tf.Tensor4D,
          tf.Tensor4D,
          tf.Tensor3D,
        ];
        const uT = tf.transpose(uSaved, [0, 2, 1]); // [B, 4h, h], once
        const dStates = tf.unstack(dy, 2) as tf.Tensor3D[];
        const gateSteps = tf.unstack(gateAll, 2) as tf.Tensor3D[];
        const cellSteps = tf.unstack(cellAll, 2) as tf.Tensor3D[];
        const dz: tf.Tensor3D[] = new Array<tf.Tensor3D>(T);
        let dhNext: tf.Tensor3D | null = null;
        let dcNext: tf.Tensor3D | null = null;
        for (let t = T - 1; t >= 0; t--) {
          const [i, f, g, o] = tf.split(gateSteps[t]!, 4, 2) as [
            tf.Tensor3D,
            tf.Tensor3D,
            tf.Tensor3D,
            tf.Tensor3D,
          ];
          const dh: tf.Tensor3D = dhNext ? tf.add(dStates[t]!, dhNext) : dStates[t]!;
          const tc = tf.tanh(cellSteps[t]!);
          const dOut = tf.mul(dh, tc);
          let dc: tf.Tensor3D = tf.mul(tf.mul(dh, o), tf.sub(1, tf.square(tc)));
          if (dcNext) dc = tf.add(dc, dcNext);
          const di = tf.mul(dc, g);
          const dg = tf.mul(dc, i);
          const parts = [
            tf.mul(di, tf.mul(i, tf.sub(1, i))),
            t > 0
              ? tf.mul(tf.mul(dc, cellSteps[t - 1]!), tf.mul(f, tf.sub(1, f)))
              : tf.zerosLike(f),
            tf.mul(dg, tf.sub(1, tf.square(g))),
            tf.mul(dOut, tf.mul(o, tf.sub(1, o))),
          ];
          dz[t] = tf.concat(parts, 2) as tf.Tensor3D;
          dcNext = tf.mul(dc, f) as tf.Tensor3D;
          dhNext = t > 0 ? bmm(dz[t]!, uT) : null;
        }
        const dxz = tf.stack(dz, 2) as tf.Tensor4D;
        if (T === 1) return [dxz, tf.zerosLike(uSaved)];
        // dU = sum_{t>=1} h_{t-1}^T dz_t, all steps and windows in one product per device.
        const hPrevAll = tf.reshape(tf.slice(stateAll, [0, 0, 0, 0], [B, S, T - 1, h]), [
          B,
          S * (T - 1),
          h,
        ]) as tf.Tensor3D;
        const dzLater = tf.reshape(tf.slice(dxz, [0, 0, 1, 0], [B, S, T - 1, 4 * h]), [
          B,
          S * (T - 1),
          4 * h,
        ]) as tf.Tensor3D;
        const dU = bmm(tf.transpose(hPrevAll, [0, 2, 1]), dzLater);
        return [dxz, dU];
      },
    };
  });
  return op(xz, u) as tf.Tensor4D;
}
