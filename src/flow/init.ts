/** Weight initialisers (as the published code): orthogonal, normal, Kaiming, PyTorch's conv default. */
import type { Rng } from '../tensor/random.js';

/** A random orthogonal n×n matrix: Q of the QR decomposition of a Gaussian matrix (Gram–Schmidt, float64). */
export function orthogonal(n: number, rng: Rng): Float32Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < a.length; i++) a[i] = rng.normal();
  // modified Gram–Schmidt on columns
  for (let j = 0; j < n; j++) {
    for (let k = 0; k < j; k++) {
      let d = 0;
      for (let i = 0; i < n; i++) d += a[i * n + j] * a[i * n + k];
      for (let i = 0; i < n; i++) a[i * n + j] -= d * a[i * n + k];
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += a[i * n + j] ** 2;
    norm = Math.sqrt(norm);
    for (let i = 0; i < n; i++) a[i * n + j] /= norm;
  }
  return Float32Array.from(a);
}

export function normalInit(n: number, std: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  rng.fillNormal(out, std);
  return out;
}

/** Kaiming-normal (fan-in, gain √2) scaled by `scale`: the RRDB dense blocks use 0.1. */
export function kaimingNormal(shape: number[], scale: number, rng: Rng): Float32Array {
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return normalInit(
    shape.reduce((a, b) => a * b, 1),
    (scale * Math.sqrt(2)) / Math.sqrt(fanIn),
    rng,
  );
}

/** PyTorch's default Conv2d init: weight and bias U(−1/√fan_in, 1/√fan_in). */
export function torchDefaultConv(shape: number[], rng: Rng): { weight: Float32Array; bias: Float32Array } {
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const bound = 1 / Math.sqrt(fanIn);
  const weight = new Float32Array(shape.reduce((a, b) => a * b, 1));
  rng.fillUniform(weight, -bound, bound);
  const bias = new Float32Array(shape[0]);
  rng.fillUniform(bias, -bound, bound);
  return { weight, bias };
}
