/** Small random tensors and models for the model tests. */
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/tensor/random.js';
import type { createModel } from '../../src/models/api.js';

/** A tensor of uniform values in [lo, hi) from a seeded stream. */
export function rand(shape: number[], seed: number, lo = 0, hi = 1): Tensor {
  const t = Tensor.zeros(shape);
  new Rng(seed).fillUniform(t.data, lo, hi);
  return t;
}

/** Randomise every parameter so no layer is an identity (ZeroConvs start at zero). */
export function randomiseModel(m: ReturnType<typeof createModel>, seed: number): void {
  const r = new Rng(seed);
  for (const [name, p] of m.parameters()) {
    if (name.endsWith('invconv.weight')) continue;
    const std = /logs$/.test(name) ? 0.02 : /\.4\.(weight|bias)$|conv\.(weight|bias)$/.test(name) ? 0.01 : null;
    if (std !== null) for (let i = 0; i < p.size; i++) p.data[i] = std * r.normal();
    else if (/actnorm\.(bias|logs)$/.test(name)) for (let i = 0; i < p.size; i++) p.data[i] = 0.05 * r.normal();
  }
}
