/** Small dense linear algebra: matmul, log|det W| and the inverse of a square matrix (float64 inside). */
import { Tensor, result, accumulateGrad, allocLike, type Buf } from './tensor.js';
import { kernels } from '../kernels/index.js';
import { referenceKernels } from '../kernels/reference.js';

/** 2-D matrix product a[m,k] · b[k,n]. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim !== 2 || b.ndim !== 2 || a.shape[1] !== b.shape[0]) {
    throw new Error(`Expected 2-D tensors [m,k] and [k,n] for matmul but received [${a.shape.join(',')}] and [${b.shape.join(',')}]`);
  }
  const [m, k] = a.shape;
  const n = b.shape[1];
  const K = a.dtype === 'float64' ? referenceKernels : kernels();
  const out = allocLike(a.data, m * n);
  K.matmul(a.data, b.data, m, k, n, false, false, out, false);
  return result(out, [m, n], [a, b], (g) => {
    if (a.requiresGrad) {
      const ga = allocLike(a.data, m * k); // g[m,n] · bᵀ
      K.matmul(g, b.data, m, n, k, false, true, ga, false);
      accumulateGrad(a, ga, true);
    }
    if (b.requiresGrad) {
      const gb = allocLike(b.data, k * n); // aᵀ · g
      K.matmul(a.data, g, k, m, n, true, false, gb, false);
      accumulateGrad(b, gb, true);
    }
  });
}

/** LU decomposition with partial pivoting in float64. Returns null for a singular matrix. */
function lu(a: ArrayLike<number>, n: number): { lu: Float64Array; perm: Int32Array; sign: number } | null {
  const m = Float64Array.from(a as ArrayLike<number>);
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  let sign = 1;
  for (let c = 0; c < n; c++) {
    let p = c;
    let best = Math.abs(m[c * n + c]);
    for (let r = c + 1; r < n; r++) {
      const v = Math.abs(m[r * n + c]);
      if (v > best) {
        best = v;
        p = r;
      }
    }
    if (best === 0) return null;
    if (p !== c) {
      for (let j = 0; j < n; j++) {
        const t = m[c * n + j];
        m[c * n + j] = m[p * n + j];
        m[p * n + j] = t;
      }
      const t = perm[c];
      perm[c] = perm[p];
      perm[p] = t;
      sign = -sign;
    }
    const d = m[c * n + c];
    for (let r = c + 1; r < n; r++) {
      const f = (m[r * n + c] /= d);
      if (f !== 0) for (let j = c + 1; j < n; j++) m[r * n + j] -= f * m[c * n + j];
    }
  }
  return { lu: m, perm, sign };
}

/** Inverse of an n×n matrix in float64. Throws on a singular matrix. */
export function invertMatrix(a: ArrayLike<number>, n: number): Float64Array {
  const f = lu(a, n);
  if (!f) throw new Error(`Expected an invertible ${n}×${n} matrix but received a singular one`);
  const inv = new Float64Array(n * n);
  const col = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) col[i] = f.perm[i] === j ? 1 : 0;
    for (let i = 0; i < n; i++) {
      let s = col[i];
      for (let k = 0; k < i; k++) s -= f.lu[i * n + k] * col[k];
      col[i] = s;
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = col[i];
      for (let k = i + 1; k < n; k++) s -= f.lu[i * n + k] * col[k];
      col[i] = s / f.lu[i * n + i];
    }
    for (let i = 0; i < n; i++) inv[i * n + j] = col[i];
  }
  return inv;
}

function squareSize(w: Tensor, op: string): number {
  if (w.ndim !== 2 || w.shape[0] !== w.shape[1]) throw new Error(`Expected a square matrix for ${op} but received shape [${w.shape.join(',')}]`);
  return w.shape[0];
}

function castTo(like: Buf, src: Float64Array): Buf {
  if (like instanceof Float64Array) return src;
  return Float32Array.from(src);
}

/** log|det W| (a scalar tensor); gradient W⁻ᵀ. */
export function logAbsDet(w: Tensor): Tensor {
  const n = squareSize(w, 'logAbsDet');
  const f = lu(w.data, n);
  if (!f) throw new Error(`Expected an invertible ${n}×${n} matrix for logAbsDet but received a singular one`);
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.log(Math.abs(f.lu[i * n + i]));
  const out = allocLike(w.data, 1);
  out[0] = s;
  return result(out, [], [w], (g) => {
    const inv = invertMatrix(w.data, n);
    const gw = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) gw[i * n + j] = g[0] * inv[j * n + i];
    accumulateGrad(w, castTo(w.data, gw), true);
  });
}

/** W⁻¹ (float64 inside); gradient −W⁻ᵀ · G · W⁻ᵀ. */
export function inverse(w: Tensor): Tensor {
  const n = squareSize(w, 'inverse');
  const inv = invertMatrix(w.data, n);
  return result(castTo(w.data, inv.slice()), [n, n], [w], (g) => {
    const gw = new Float64Array(n * n);
    // t = G · W⁻ᵀ ; gw = −W⁻ᵀ · t
    const t = new Float64Array(n * n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += g[i * n + k] * inv[j * n + k];
        t[i * n + j] = s;
      }
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += inv[k * n + i] * t[k * n + j];
        gw[i * n + j] = -s;
      }
    accumulateGrad(w, castTo(w.data, gw), true);
  });
}
