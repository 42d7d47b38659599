/**
 * Fused ops for the flow's hot element-wise chains: one pass forward, one pass backward, instead
 * of a chain of broadcast ops each allocating its own result and gradient.
 */
import { Tensor, result, accumulateGrad, allocLike, allocOut, outputInto, isGradEnabled, type Buf } from './tensor.js';
import { ew } from './ew.js';
import type { ElementwiseKernels } from '../kernels/types.js';

function dims(x: Tensor): [number, number, number] {
  if (x.ndim !== 4) throw new Error(`Expected a 4-D NCHW tensor but received shape [${x.shape.join(',')}]`);
  return [x.shape[0], x.shape[1], x.shape[2] * x.shape[3]];
}

/**
 * The backward pass of a channel affine map (or its inverse) with output `out`, from the per-channel
 * sums sb = Σ g and ss = Σ g·out (g taken as 0 where relu and out ≤ 0): the input's gradient g·e[c],
 * and the bias's and logs' gradients `grads(sb, ss, c)`. The sums come from the backend's kernel
 * for float32, else from the same loop here (float64, or the TypeScript loops forced).
 */
function channelAffineBackward(
  K: ElementwiseKernels | null,
  g: Buf,
  out: Buf,
  input: Tensor,
  bias: Tensor,
  logs: Tensor,
  e: Float64Array,
  e32: Float32Array | null,
  relu: boolean,
  grads: (sb: number, ss: number, ch: number) => [number, number],
): void {
  const [n, c, hw] = dims(input);
  const gx = input.requiresGrad ? allocOut(input.data, input.size) : null;
  const sb = new Float64Array(c);
  const ss = new Float64Array(c);
  if (K && g instanceof Float32Array) K.channelAffineBackward(g, out as Float32Array, n, c, hw, e32!, relu, gx as Float32Array | null, sb, ss);
  else
    for (let b = 0; b < n; b++) {
      for (let ch = 0; ch < c; ch++) {
        const o = (b * c + ch) * hw;
        for (let i = 0; i < hw; i++) {
          const gi = relu && out[o + i] <= 0 ? 0 : g[o + i];
          sb[ch] += gi;
          ss[ch] += gi * out[o + i];
          if (gx) gx[o + i] = gi * e[ch];
        }
      }
    }
  const gb = allocLike(bias.data, c);
  const gs = allocLike(logs.data, c);
  for (let ch = 0; ch < c; ch++) [gb[ch], gs[ch]] = grads(sb[ch], ss[ch], ch);
  if (gx) accumulateGrad(input, gx, true);
  accumulateGrad(bias, gb, true);
  accumulateGrad(logs, gs, true);
}

/**
 * Per-channel affine map out = (x + bias[c]) · exp(k · logs[c]), optionally followed by ReLU.
 * ActNorm is k = 1; ZeroConv's output scaling is k = 3.
 */
export function channelAffine(x: Tensor, bias: Tensor, logs: Tensor, k = 1, relu = false, inPlace = false): Tensor {
  const [n, c, hw] = dims(x);
  if (bias.size !== c || logs.size !== c) throw new Error(`Expected ${c} values for bias and logs of channelAffine but received ${bias.size} and ${logs.size}`);
  const X = x.data;
  // inPlace (no tape only): the caller hands over a temporary that nothing else reads
  const out = inPlace && !isGradEnabled() ? X : allocOut(X, X.length);
  const e = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) e[ch] = Math.exp(k * logs.data[ch]);
  const K = ew(X, bias.data, logs.data);
  const e32 = K ? Float32Array.from(e) : null;
  if (K) K.channelAffine(X as Float32Array, n, c, hw, bias.data as Float32Array, e32!, relu, out as Float32Array);
  else
    for (let b = 0; b < n; b++) {
      for (let ch = 0; ch < c; ch++) {
        const o = (b * c + ch) * hw;
        const bv = bias.data[ch];
        const ev = e[ch];
        if (relu)
          for (let i = 0; i < hw; i++) {
            const v = (X[o + i] + bv) * ev;
            out[o + i] = v > 0 ? v : 0;
          }
        else for (let i = 0; i < hw; i++) out[o + i] = (X[o + i] + bv) * ev;
      }
    }
  return result(out, x.shape, [x, bias, logs], (g) => {
    channelAffineBackward(K, g, out, x, bias, logs, e, e32, relu, (sb, ss, ch) => [sb * e[ch], k * ss]);
  });
}

/** Inverse of channelAffine (k, no ReLU): x = y · exp(−k · logs[c]) − bias[c]. */
export function channelAffineInverse(y: Tensor, bias: Tensor, logs: Tensor, k = 1): Tensor {
  const [n, c, hw] = dims(y);
  const Y = y.data;
  const out = allocOut(Y, Y.length);
  const e = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) e[ch] = Math.exp(-k * logs.data[ch]);
  // natively as the forward map: y·e⁻ − b = (y − b·e⁺)·e⁻
  const K = ew(Y, bias.data, logs.data);
  const e32 = K ? Float32Array.from(e) : null;
  if (K) {
    const b2 = new Float32Array(c);
    for (let ch = 0; ch < c; ch++) b2[ch] = -bias.data[ch] / e[ch];
    K.channelAffine(Y as Float32Array, n, c, hw, b2, e32!, false, out as Float32Array);
  } else
    for (let b = 0; b < n; b++)
      for (let ch = 0; ch < c; ch++) {
        const o = (b * c + ch) * hw;
        const bv = bias.data[ch];
        const ev = e[ch];
        for (let i = 0; i < hw; i++) out[o + i] = Y[o + i] * ev - bv;
      }
  return result(out, y.shape, [y, bias, logs], (g) => {
    // Σ g and Σ g·y per channel (y in the place of the forward output), gy = g·e⁻
    channelAffineBackward(K, g, Y, y, bias, logs, e, e32, false, (sb, ss, ch) => [-sb, -k * ss * e[ch]]);
  });
}

const sig = (v: number) => 1 / (1 + Math.exp(-v));

/**
 * SRFlow's affine from a net output `raw` (2C channels: shift = raw[:, 0::2], scale =
 * sigmoid(raw[:, 1::2] + 2) + eps): forward out = (h + shift) · scale, inverse h = out/scale − shift.
 */
export function affineFromNet(h: Tensor, raw: Tensor, eps: number, inverse = false, into?: Buf): Tensor {
  const [n, c, hw] = dims(h);
  if (raw.shape[1] !== 2 * c || (raw.shape[0] !== n && raw.shape[0] !== 1) || raw.shape[2] * raw.shape[3] !== hw) {
    throw new Error(`Expected a net output of shape [${n},${2 * c},${h.shape[2]},${h.shape[3]}] for affineFromNet but received [${raw.shape.join(',')}]`);
  }
  const rb = raw.shape[0] === n ? 1 : 0; // raw batch stride factor: 0 broadcasts one conditioning over the batch
  const H = h.data;
  const R = raw.data;
  // into (no tape only): the buffer to write to, e.g. a channel block of a larger map, or h's own (in place)
  const out = outputInto(into, H, H.length, "h for affineFromNet's into");
  const K = ew(H, R);
  if (K) K.affineFromNet(H as Float32Array, R as Float32Array, n, c, hw, rb, eps, inverse, out as Float32Array);
  else
    for (let b = 0; b < n; b++)
      for (let ch = 0; ch < c; ch++) {
        const o = (b * c + ch) * hw;
        const rs = (rb * b * 2 * c + 2 * ch) * hw; // shift channel
        const rc = rs + hw; // scale channel
        if (!inverse) for (let i = 0; i < hw; i++) out[o + i] = (H[o + i] + R[rs + i]) * (sig(R[rc + i] + 2) + eps);
        else for (let i = 0; i < hw; i++) out[o + i] = H[o + i] / (sig(R[rc + i] + 2) + eps) - R[rs + i];
      }
  return result(out, h.shape, [h, raw], (g) => {
    const gh = h.requiresGrad ? allocOut(H, H.length) : null;
    const gr = raw.requiresGrad ? allocLike(R, R.length) : null;
    if (K && g instanceof Float32Array)
      K.affineFromNetBackward(g, H as Float32Array, R as Float32Array, n, c, hw, rb, eps, inverse, gh as Float32Array | null, gr as Float32Array | null);
    else
      for (let b = 0; b < n; b++)
        for (let ch = 0; ch < c; ch++) {
          const o = (b * c + ch) * hw;
          const rs = (rb * b * 2 * c + 2 * ch) * hw;
          const rc = rs + hw;
          for (let i = 0; i < hw; i++) {
            const s = sig(R[rc + i] + 2);
            const scale = s + eps;
            const gi = g[o + i];
            if (!inverse) {
              if (gh) gh[o + i] = gi * scale;
              if (gr) {
                gr[rs + i] += gi * scale;
                gr[rc + i] += gi * (H[o + i] + R[rs + i]) * s * (1 - s);
              }
            } else {
              if (gh) gh[o + i] = gi / scale;
              if (gr) {
                gr[rs + i] -= gi;
                gr[rc + i] += ((-gi * H[o + i]) / (scale * scale)) * s * (1 - s);
              }
            }
          }
        }
    if (gh) accumulateGrad(h, gh, true);
    if (gr) accumulateGrad(raw, gr, true);
  });
}

/** Per-sample Σ log(sigmoid(raw[:, 1::2] + 2) + eps) over channels and pixels: shape [N]. */
export function sumLogScale(raw: Tensor, eps: number): Tensor {
  const [n, c2, hw] = dims(raw);
  const c = c2 / 2;
  const R = raw.data;
  const out = allocLike(R, n);
  const K = ew(R);
  if (K) {
    const o64 = new Float64Array(n);
    K.sumLogScale(R as Float32Array, n, c, hw, eps, o64);
    out.set(o64);
  } else
    for (let b = 0; b < n; b++) {
      let s = 0;
      for (let ch = 0; ch < c; ch++) {
        const rc = (b * c2 + 2 * ch + 1) * hw;
        for (let i = 0; i < hw; i++) s += Math.log(sig(R[rc + i] + 2) + eps);
      }
      out[b] = s;
    }
  return result(out, [n], [raw], (g) => {
    const gr = allocLike(R, R.length);
    if (K && g instanceof Float32Array) K.sumLogScaleBackward(R as Float32Array, n, c, hw, eps, g, gr as Float32Array);
    else
      for (let b = 0; b < n; b++)
        for (let ch = 0; ch < c; ch++) {
          const rc = (b * c2 + 2 * ch + 1) * hw;
          for (let i = 0; i < hw; i++) {
            const s = sig(R[rc + i] + 2);
            gr[rc + i] = (g[b] * s * (1 - s)) / (s + eps);
          }
        }
    accumulateGrad(raw, gr, true);
  });
}
