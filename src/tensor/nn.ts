/**
 * Convolution and resampling ops (NCHW), each with its gradient. Convolutions run on the active
 * kernels (native when built); float64 tensors always use the reference kernels.
 */
import { Tensor, result, accumulateGrad, allocLike, allocOut, outputInto, type Buf } from './tensor.js';
import { kernels } from '../kernels/index.js';
import { referenceKernels } from '../kernels/reference.js';
import type { Conv2dGeom, Kernels } from '../kernels/types.js';

function kernelsFor(t: Tensor): Kernels {
  return t.dtype === 'float64' ? referenceKernels : kernels();
}

function expect4d(t: Tensor, name: string, op: string): void {
  if (t.ndim !== 4) throw new Error(`Expected a 4-D NCHW tensor for ${name} of ${op} but received shape [${t.shape.join(',')}]`);
}

/**
 * 2-D convolution, stride 1, zero padding `pad` (default: same size for odd kernels). `into`
 * (no tape only): the buffer to write the output to (e.g. a channel block of a larger map).
 */
export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null = null, pad?: number, into?: Buf): Tensor {
  expect4d(x, 'x', 'conv2d');
  expect4d(w, 'weight', 'conv2d');
  const [n, cin, h, wd] = x.shape;
  const [cout, wcin, kh, kw] = w.shape;
  if (wcin !== cin) throw new Error(`Expected a weight with ${cin} input channels for conv2d but received shape [${w.shape.join(',')}]`);
  if (bias && bias.size !== cout) throw new Error(`Expected a bias of ${cout} values for conv2d but received ${bias.size}`);
  const p = pad ?? (kh - 1) >> 1;
  const g: Conv2dGeom = { n, cin, h, w: wd, cout, kh, kw, pad: p };
  const oh = h + 2 * p - kh + 1;
  const ow = wd + 2 * p - kw + 1;
  const K = kernelsFor(x);
  const out = outputInto(into, x.data, n * cout * oh * ow, "x for conv2d's into");
  K.conv2d(x.data, w.data, bias ? bias.data : null, g, out);
  const parents = bias ? [x, w, bias] : [x, w];
  return result(out, [n, cout, oh, ow], parents, (gy) => {
    if (x.requiresGrad) {
      const gx = allocOut(x.data, x.size);
      K.conv2dBackwardData(gy, w.data, g, gx, false);
      accumulateGrad(x, gx, true);
    }
    if (w.requiresGrad || bias?.requiresGrad) {
      const gw = allocLike(w.data, w.size);
      const gb = bias ? allocLike(bias.data, bias.size) : null;
      K.conv2dBackwardFilter(gy, x.data, g, gw, gb, false);
      accumulateGrad(w, gw, true);
      if (bias && gb) accumulateGrad(bias, gb, true);
    }
  });
}

/** Nearest-neighbour resize to (oh, ow): source index floor(dst · in / out) (PyTorch 'nearest'). */
export function resizeNearest(x: Tensor, oh: number, ow: number): Tensor {
  expect4d(x, 'x', 'resizeNearest');
  const [n, c, h, w] = x.shape;
  if (oh === h && ow === w) return x; // the identity (its gradient passes straight through)
  const ys = new Int32Array(oh);
  const xs = new Int32Array(ow);
  for (let i = 0; i < oh; i++) ys[i] = Math.min(h - 1, Math.floor((i * h) / oh));
  for (let j = 0; j < ow; j++) xs[j] = Math.min(w - 1, Math.floor((j * w) / ow));
  const X = x.data;
  const out = allocOut(X, n * c * oh * ow);
  for (let p = 0; p < n * c; p++) {
    const ib = p * h * w;
    const ob = p * oh * ow;
    for (let i = 0; i < oh; i++) {
      const o = ob + i * ow;
      if (i > 0 && ys[i] === ys[i - 1]) {
        out.copyWithin(o, o - ow, o); // upsampling repeats rows: copy the row just written
        continue;
      }
      const r = ib + ys[i] * w;
      for (let j = 0; j < ow; j++) out[o + j] = X[r + xs[j]];
    }
  }
  return result(out, [n, c, oh, ow], [x], (g) => {
    const gx = allocLike(g, x.size);
    for (let p = 0; p < n * c; p++) {
      const ib = p * h * w;
      const ob = p * oh * ow;
      for (let i = 0; i < oh; i++) {
        const r = ib + ys[i] * w;
        const o = ob + i * ow;
        for (let j = 0; j < ow; j++) gx[r + xs[j]] += g[o + j];
      }
    }
    accumulateGrad(x, gx, true);
  });
}

/** Nearest ×2 upsampling. */
export function upsampleNearest2x(x: Tensor): Tensor {
  expect4d(x, 'x', 'upsampleNearest2x');
  return resizeNearest(x, x.shape[2] * 2, x.shape[3] * 2);
}

/**
 * Bilinear downsampling by an even integer factor f, as PyTorch's
 * interpolate(scale_factor=1/f, mode='bilinear', align_corners=False) without antialiasing:
 * output floor(n/f); source coordinate (dst + ½)·f − ½ falls midway between pixels f·dst + f/2 − 1
 * and f·dst + f/2, so each output is the mean of that 2×2 block (for f = 2: the block at (2y, 2x)).
 */
export function downsampleBilinear(x: Tensor, factor = 2): Tensor {
  expect4d(x, 'x', 'downsampleBilinear');
  if (!(Number.isInteger(factor) && factor >= 2 && factor % 2 === 0)) {
    throw new Error(`Expected an even integer factor for downsampleBilinear but received ${factor}`);
  }
  const [n, c, h, w] = x.shape;
  const oh = Math.floor(h / factor);
  const ow = Math.floor(w / factor);
  const o0 = factor / 2 - 1;
  // every output o with the index r of its 2×2 input block's top-left pixel (the block: r, r + 1, r + w, r + w + 1)
  const blocks = (f: (o: number, r: number) => void): void => {
    for (let p = 0; p < n * c; p++) {
      const ib = p * h * w;
      const ob = p * oh * ow;
      for (let i = 0; i < oh; i++) {
        const r0 = ib + (factor * i + o0) * w + o0;
        for (let j = 0; j < ow; j++) f(ob + i * ow + j, r0 + factor * j);
      }
    }
  };
  const X = x.data;
  const out = allocLike(X, n * c * oh * ow);
  blocks((o, r) => {
    out[o] = 0.25 * (X[r] + X[r + 1] + X[r + w] + X[r + w + 1]);
  });
  return result(out, [n, c, oh, ow], [x], (g) => {
    const gx = allocLike(g, x.size);
    blocks((o, r) => {
      const v = 0.25 * g[o];
      gx[r] += v;
      gx[r + 1] += v;
      gx[r + w] += v;
      gx[r + w + 1] += v;
    });
    accumulateGrad(x, gx, true);
  });
}

/** Bilinear ½ downsampling (see downsampleBilinear). */
export function downsampleBilinearHalf(x: Tensor): Tensor {
  return downsampleBilinear(x, 2);
}

/**
 * Squeeze (C,H,W) → (4C,H/2,W/2): output channel c·4 + i·2 + j at (u,v) is input channel c at
 * (2u+i, 2v+j). `inverse` does the unsqueeze. A pure permutation: gradients permute back.
 */
export function squeeze2(x: Tensor, inverse = false): Tensor {
  expect4d(x, 'x', 'squeeze2');
  const [n, c, h, w] = x.shape;
  let C: number, H: number, W: number; // the unsqueezed (C,H,W)
  if (!inverse) {
    if (h % 2 || w % 2) throw new Error(`Expected even height and width for squeeze but received ${h}×${w}`);
    C = c;
    H = h;
    W = w;
  } else {
    if (c % 4) throw new Error(`Expected channels divisible by 4 for unsqueeze but received ${c}`);
    C = c / 4;
    H = h * 2;
    W = w * 2;
  }
  const h2 = H / 2;
  const w2 = W / 2;
  // big[n,cc,2u+i,2v+j] <-> small[n,cc*4+i*2+j,u,v]
  const move = (src: Buf, toSmall: boolean): Buf => {
    const out = allocOut(src, src.length);
    for (let b = 0; b < n; b++) {
      for (let cc = 0; cc < C; cc++) {
        const bigBase = (b * C + cc) * H * W;
        for (let i = 0; i < 2; i++) {
          for (let j = 0; j < 2; j++) {
            const smallBase = (b * C * 4 + cc * 4 + i * 2 + j) * h2 * w2;
            for (let u = 0; u < h2; u++) {
              const br = bigBase + (2 * u + i) * W + j;
              const sr = smallBase + u * w2;
              if (toSmall) for (let v = 0; v < w2; v++) out[sr + v] = src[br + 2 * v];
              else for (let v = 0; v < w2; v++) out[br + 2 * v] = src[sr + v];
            }
          }
        }
      }
    }
    return out;
  };
  const toSmall = !inverse;
  const shape = inverse ? [n, C, H, W] : [n, 4 * C, h2, w2];
  return result(move(x.data, toSmall), shape, [x], (g) => accumulateGrad(x, move(g, !toSmall), true));
}
