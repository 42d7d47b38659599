import type { Planar } from '../io/image.js';

/**
 * Periodic 2-pixel energy ("hatching"): the share of an image's fine-detail energy that sits on the
 * Nyquist lines of its 2-D spectrum, i.e. in patterns that alternate every pixel along x (vertical
 * stripes: the column-Nyquist line u_x = ½ cycle/pixel) or along y (horizontal stripes).
 *
 * The image is reduced to luma (BT.601 weights; a 1-channel image is used as it is), its mean is
 * removed and it is multiplied by a separable Hann window (so the image borders do not leak into
 * every frequency). With the DFT power P(u, v):
 *   fine band  = frequencies beyond the LR's Nyquist limit: max(|u|, |v|) > ½ / scale cycles/pixel
 *   columns    = P on the line |u_x| = ½ (all u_y) — one bin either side is counted as well, so a
 *                pattern whose period drifts slightly from 2 is still caught
 *   rows       = the same for |u_y| = ½
 *   result     = (columns or rows, whichever is larger) / fine band
 * A natural photograph or a bicubic upscale keeps this near 1 %: its spectrum falls off smoothly
 * towards Nyquist. A network that leaves a 2-pixel pattern puts a spike there.
 */
export interface PeriodicEnergy {
  /** Share of the fine band on the column-Nyquist line (vertical stripes, period 2 along x). */
  columns: number;
  /** Share on the row-Nyquist line (horizontal stripes, period 2 along y). */
  rows: number;
  /** max(columns, rows). */
  value: number;
}

function luma(img: Planar): Float64Array {
  const n = img.height * img.width;
  const y = new Float64Array(n);
  if (img.channels === 1) {
    for (let i = 0; i < n; i++) y[i] = img.data[i];
  } else if (img.channels >= 3) {
    for (let i = 0; i < n; i++) y[i] = 0.299 * img.data[i] + 0.587 * img.data[n + i] + 0.114 * img.data[2 * n + i];
  } else {
    throw new Error(`Expected an image with 1 or 3+ channels for periodicEnergy but received ${img.channels}`);
  }
  return y;
}

/** In-place 1-D DFT power helper: DFT of `re` (length n, real) along a strided line into (outRe, outIm). */
function dftTables(n: number): { cos: Float64Array; sin: Float64Array } {
  const cos = new Float64Array(n);
  const sin = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    cos[k] = Math.cos((2 * Math.PI * k) / n);
    sin[k] = Math.sin((2 * Math.PI * k) / n);
  }
  return { cos, sin };
}

/** Full 2-D DFT power spectrum (H×W) of a real image, by separable direct DFTs (O(HW(H+W))). */
function powerSpectrum(x: Float64Array, H: number, W: number): Float64Array {
  const tw = dftTables(W);
  const th = dftTables(H);
  // rows: X1[i, v] = Σ_j x[i, j] e^{-2πi v j / W}
  const re1 = new Float64Array(H * W);
  const im1 = new Float64Array(H * W);
  for (let i = 0; i < H; i++) {
    const row = i * W;
    for (let v = 0; v < W; v++) {
      let sr = 0;
      let si = 0;
      let k = 0;
      for (let j = 0; j < W; j++) {
        const a = x[row + j];
        sr += a * tw.cos[k];
        si -= a * tw.sin[k];
        k += v;
        if (k >= W) k -= W;
      }
      re1[row + v] = sr;
      im1[row + v] = si;
    }
  }
  // columns: X[u, v] = Σ_i X1[i, v] e^{-2πi u i / H}
  const p = new Float64Array(H * W);
  const colRe = new Float64Array(H);
  const colIm = new Float64Array(H);
  for (let v = 0; v < W; v++) {
    for (let i = 0; i < H; i++) {
      colRe[i] = re1[i * W + v];
      colIm[i] = im1[i * W + v];
    }
    for (let u = 0; u < H; u++) {
      let sr = 0;
      let si = 0;
      let k = 0;
      for (let i = 0; i < H; i++) {
        const c = th.cos[k];
        const s = th.sin[k];
        sr += colRe[i] * c + colIm[i] * s;
        si += colIm[i] * c - colRe[i] * s;
        k += u;
        if (k >= H) k -= H;
      }
      p[u * W + v] = sr * sr + si * si;
    }
  }
  return p;
}

/**
 * The periodic 2-pixel energy of `img` relative to its fine-detail band (see above). `scale` is the
 * super-resolution factor (the fine band starts at the LR's Nyquist limit). Images larger than
 * `maxSide` (default 256) are measured on their centre crop of that size (the direct DFT is
 * O(n³)); both sides must be at least 16.
 */
export function periodicEnergy(img: Planar, scale: number, opts: { maxSide?: number } = {}): PeriodicEnergy {
  if (!Number.isInteger(scale) || scale < 2) throw new Error(`Expected an integer scale ≥ 2 for periodicEnergy but received ${scale}`);
  const maxSide = opts.maxSide ?? 256;
  if (img.height < 16 || img.width < 16) throw new Error(`Expected an image of at least 16×16 for periodicEnergy but received ${img.width}×${img.height}`);
  const full = luma(img);
  const H = Math.min(img.height, maxSide);
  const W = Math.min(img.width, maxSide);
  const top = Math.floor((img.height - H) / 2);
  const left = Math.floor((img.width - W) / 2);
  const x = new Float64Array(H * W);
  let mean = 0;
  for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) mean += x[i * W + j] = full[(top + i) * img.width + left + j];
  mean /= H * W;
  for (let i = 0; i < H; i++) {
    const wy = 0.5 - 0.5 * Math.cos((2 * Math.PI * (i + 0.5)) / H);
    for (let j = 0; j < W; j++) {
      const wx = 0.5 - 0.5 * Math.cos((2 * Math.PI * (j + 0.5)) / W);
      x[i * W + j] = (x[i * W + j] - mean) * wy * wx;
    }
  }
  const p = powerSpectrum(x, H, W);
  const cut = 0.5 / scale;
  let fine = 0;
  let cols = 0;
  let rows = 0;
  // |frequency| in cycles/pixel of bin k of n
  const f = (k: number, n: number) => Math.min(k, n - k) / n;
  // bins within one of the Nyquist frequency (n/2 exactly for even n)
  const nearNyq = (k: number, n: number) => Math.abs(k - n / 2) <= 1;
  for (let u = 0; u < H; u++) {
    const fu = f(u, H);
    for (let v = 0; v < W; v++) {
      const fv = f(v, W);
      if (Math.max(fu, fv) <= cut) continue;
      const e = p[u * W + v];
      fine += e;
      if (nearNyq(v, W)) cols += e;
      if (nearNyq(u, H)) rows += e;
    }
  }
  const columns = fine > 0 ? cols / fine : 0;
  const rowsShare = fine > 0 ? rows / fine : 0;
  return { columns, rows: rowsShare, value: Math.max(columns, rowsShare) };
}
