/** Building a model whose every weight is about to be loaded, without the wasted random initialisation. */
import { Rng } from '../tensor/random.js';

/**
 * A generator that draws nothing: weights come out zero (NaN for the orthogonal InvConv init), and
 * the (slow) published initialisation of tens of millions of values is skipped. loadStateDict then
 * replaces every one of them or fails.
 */
export class NoInitRng extends Rng {
  override next = () => 0.5;
  override normal(): number {
    return 0;
  }
  override fillNormal(out: Float32Array | Float64Array, _std = 1, mean = 0): void {
    if (mean !== 0) out.fill(mean);
  }
  override fillUniform(out: Float32Array | Float64Array, lo = 0, hi = 1): void {
    const v = (lo + hi) / 2;
    if (v !== 0) out.fill(v);
  }
}
