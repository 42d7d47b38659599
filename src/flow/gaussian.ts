import { Tensor } from '../tensor/tensor.js';
import * as T from '../tensor/index.js';

const LOG_2PI = Math.log(2 * Math.PI);

/** Σ over C,H,W of log N(x; mean, exp(logs)) = −½(2·logs + (x−mean)²/exp(2·logs) + log 2π), per sample [B]. */
export function logNormal(x: Tensor, mean: Tensor | null, logs: Tensor | null): Tensor {
  let q: Tensor;
  if (mean && logs) {
    const d = T.mul(T.sub(x, mean), T.exp(T.neg(logs)));
    q = T.add(T.square(d), T.scale(logs, 2));
  } else {
    q = T.square(x);
  }
  return T.affineScalar(T.sum(q, [1, 2, 3]), -0.5, (-0.5 * LOG_2PI * x.size) / x.shape[0]);
}
