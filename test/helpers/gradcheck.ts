/**
 * Finite-difference gradient check in float64: compares the tape's gradient of
 * L = Σ out · R (R random, fixed) with central differences, for every input.
 */
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';

export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randn(shape: number[], r: () => number, dtype: 'float32' | 'float64' = 'float64', scale = 1): Tensor {
  const t = Tensor.zeros(shape, dtype);
  for (let i = 0; i < t.size; i++) {
    const u = Math.max(r(), 1e-12);
    t.data[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return t;
}

export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

export function gradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: { eps?: number; tol?: number; seed?: number } = {}): void {
  const eps = opts.eps ?? 1e-6;
  const tol = opts.tol ?? 1e-3;
  for (const x of inputs) assert.equal(x.dtype, 'float64', 'gradcheck inputs must be float64');
  const r = rng(opts.seed ?? 99);
  const probe = fn(...inputs);
  const R = new Float64Array(probe.size);
  for (let i = 0; i < R.length; i++) R[i] = r() * 2 - 1;
  const lossOf = (): number => {
    const out = fn(...inputs);
    let s = 0;
    for (let i = 0; i < out.size; i++) s += out.data[i] * R[i];
    return s;
  };
  for (const x of inputs) {
    x.requiresGrad = true;
    x.grad = null;
  }
  const out = fn(...inputs);
  out.backward(R);
  for (let k = 0; k < inputs.length; k++) {
    const x = inputs[k];
    const analytic = x.grad ? Float64Array.from(x.grad) : new Float64Array(x.size);
    const numeric = new Float64Array(x.size);
    for (let i = 0; i < x.size; i++) {
      const orig = x.data[i];
      x.data[i] = orig + eps;
      const lp = lossOf();
      x.data[i] = orig - eps;
      const lm = lossOf();
      x.data[i] = orig;
      numeric[i] = (lp - lm) / (2 * eps);
    }
    const e = relErr(analytic, numeric);
    assert.ok(e <= tol, `gradient of input ${k} (shape [${x.shape}]) differs from finite differences: rel err ${e}`);
  }
}
