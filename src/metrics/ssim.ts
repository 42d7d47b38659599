/**
 * SSIM matching scikit-image's `structural_similarity(a, b, channel_axis=0, data_range=255)` with
 * its defaults: 7×7 uniform window, K1 = 0.01, K2 = 0.03, sample covariance (N/(N−1) correction),
 * mean of the SSIM map over the positions whose window lies inside the image (skimage crops
 * (win−1)/2 on each side), averaged over channels. Images are compared on the ×255 scale, by
 * default after rounding to 8 bits (like skimage on uint8 images). `border` pixels are cropped
 * from each side first (the usual SR evaluation crop).
 */
import type { Planar } from '../io/image.js';
import { checkSameSize, toScaled255 } from './common.js';

export interface SsimOptions {
  border?: number;
  quantize?: boolean;
  winSize?: number;
  K1?: number;
  K2?: number;
  dataRange?: number;
}

/** Sums over every winSize×winSize window fully inside an h×w plane → (h−win+1)×(w−win+1). */
function boxSums(src: Float64Array, h: number, w: number, win: number): Float64Array {
  const ow = w - win + 1;
  const oh = h - win + 1;
  const horiz = new Float64Array(h * ow);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      const b = y * w + x;
      for (let k = 0; k < win; k++) s += src[b + k];
      horiz[y * ow + x] = s;
    }
  }
  const out = new Float64Array(oh * ow);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let k = 0; k < win; k++) s += horiz[(y + k) * ow + x];
      out[y * ow + x] = s;
    }
  }
  return out;
}

/** SSIM of one channel plane given as ×255 float64 values. */
export function ssimPlane(x: Float64Array, y: Float64Array, h: number, w: number, opts: SsimOptions = {}): number {
  const win = opts.winSize ?? 7;
  const K1 = opts.K1 ?? 0.01;
  const K2 = opts.K2 ?? 0.03;
  const R = opts.dataRange ?? 255;
  if (!Number.isInteger(win) || win < 3 || win % 2 === 0) throw new Error(`Expected an odd integer ≥ 3 for winSize but received ${win}`);
  if (win > h || win > w) throw new Error(`Expected images of at least ${win}×${win} pixels for ssim but received ${h}×${w}`);
  const n = h * w;
  const xx = new Float64Array(n);
  const yy = new Float64Array(n);
  const xy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    xx[i] = x[i] * x[i];
    yy[i] = y[i] * y[i];
    xy[i] = x[i] * y[i];
  }
  const NP = win * win;
  const covNorm = NP / (NP - 1);
  const sx = boxSums(x, h, w, win);
  const sy = boxSums(y, h, w, win);
  const sxx = boxSums(xx, h, w, win);
  const syy = boxSums(yy, h, w, win);
  const sxy = boxSums(xy, h, w, win);
  const C1 = (K1 * R) ** 2;
  const C2 = (K2 * R) ** 2;
  let total = 0;
  for (let i = 0; i < sx.length; i++) {
    const ux = sx[i] / NP;
    const uy = sy[i] / NP;
    const vx = covNorm * (sxx[i] / NP - ux * ux);
    const vy = covNorm * (syy[i] / NP - uy * uy);
    const vxy = covNorm * (sxy[i] / NP - ux * uy);
    const A1 = 2 * ux * uy + C1;
    const A2 = 2 * vxy + C2;
    const B1 = ux * ux + uy * uy + C1;
    const B2 = vx + vy + C2;
    total += (A1 * A2) / (B1 * B2);
  }
  return total / sx.length;
}

/** Mean SSIM over channels (see the module comment). */
export function ssim(a: Planar, b: Planar, opts: SsimOptions = {}): number {
  const border = opts.border ?? 0;
  const quantize = opts.quantize ?? true;
  checkSameSize(a, b, 'ssim', border);
  const { channels: C, height: H, width: W } = a;
  const h = H - 2 * border;
  const w = W - 2 * border;
  let sum = 0;
  for (let c = 0; c < C; c++) {
    const x = new Float64Array(h * w);
    const y = new Float64Array(h * w);
    for (let r = 0; r < h; r++) {
      const src = (c * H + r + border) * W + border;
      for (let q = 0; q < w; q++) {
        x[r * w + q] = toScaled255(a.data[src + q], quantize);
        y[r * w + q] = toScaled255(b.data[src + q], quantize);
      }
    }
    sum += ssimPlane(x, y, h, w, opts);
  }
  return sum / C;
}
