/**
 * Luma-guided chroma filtering: the chroma planes (B − Y, R − Y) of an RGB image are smoothed by a
 * guided filter (He, Sun and Tang, 2010) with the luma as the guide, so colour edges follow the
 * luma's edges. JPEG stores chroma subsampled and quantised far more coarsely than luma; at low
 * qualities this is a large part of its error (docs/EDITING.md).
 */
import type { Planar } from '../io/image.js';

/** Mean over the (2r+1)² window (clipped at the borders) via a summed-area table. */
export function boxMean(a: Float32Array, H: number, W: number, r: number): Float32Array {
  const S = new Float64Array((H + 1) * (W + 1));
  for (let y = 0; y < H; y++) {
    let row = 0;
    for (let x = 0; x < W; x++) {
      row += a[y * W + x];
      S[(y + 1) * (W + 1) + x + 1] = S[y * (W + 1) + x + 1] + row;
    }
  }
  const out = new Float32Array(H * W);
  for (let y = 0; y < H; y++) {
    const y0 = Math.max(0, y - r);
    const y1 = Math.min(H, y + r + 1);
    for (let x = 0; x < W; x++) {
      const x0 = Math.max(0, x - r);
      const x1 = Math.min(W, x + r + 1);
      const s = S[y1 * (W + 1) + x1] - S[y0 * (W + 1) + x1] - S[y1 * (W + 1) + x0] + S[y0 * (W + 1) + x0];
      out[y * W + x] = s / ((y1 - y0) * (x1 - x0));
    }
  }
  return out;
}

/** Guided filter of p with guide I (same size), radius r, regularisation eps. */
export function guidedFilter(I: Float32Array, p: Float32Array, H: number, W: number, r: number, eps: number): Float32Array {
  const n = H * W;
  const mI = boxMean(I, H, W, r);
  const mp = boxMean(p, H, W, r);
  const Ip = new Float32Array(n);
  const II = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    Ip[i] = I[i] * p[i];
    II[i] = I[i] * I[i];
  }
  const mIp = boxMean(Ip, H, W, r);
  const mII = boxMean(II, H, W, r);
  const a = new Float32Array(n);
  const b = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const cov = mIp[i] - mI[i] * mp[i];
    const v = mII[i] - mI[i] * mI[i];
    a[i] = cov / (v + eps);
    b[i] = mp[i] - a[i] * mI[i];
  }
  const ma = boxMean(a, H, W, r);
  const mb = boxMean(b, H, W, r);
  const q = new Float32Array(n);
  for (let i = 0; i < n; i++) q[i] = ma[i] * I[i] + mb[i];
  return q;
}

/**
 * Replace the chroma of an RGB image by (1 − amount)·chroma + amount·guided(chroma) with the
 * luma (Rec. 601) as guide; the luma is unchanged. Returns a new image.
 */
export function filterChroma(img: Planar, opts: { radius?: number; eps?: number; amount?: number } = {}): Planar {
  if (img.channels !== 3) throw new Error(`Expected an RGB image for filterChroma but received ${img.channels} channels`);
  const r = opts.radius ?? 4;
  const eps = opts.eps ?? 1e-3;
  const amount = opts.amount ?? 1;
  const { height: H, width: W, data: d } = img;
  const n = H * W;
  const Y = new Float32Array(n);
  const Cb = new Float32Array(n);
  const Cr = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const y = 0.299 * d[i] + 0.587 * d[n + i] + 0.114 * d[2 * n + i];
    Y[i] = y;
    Cb[i] = d[2 * n + i] - y;
    Cr[i] = d[i] - y;
  }
  const fb = guidedFilter(Y, Cb, H, W, r, eps);
  const fr = guidedFilter(Y, Cr, H, W, r, eps);
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    const cb = Cb[i] + amount * (fb[i] - Cb[i]);
    const cr = Cr[i] + amount * (fr[i] - Cr[i]);
    const R = cr + Y[i];
    const B = cb + Y[i];
    out[i] = R;
    out[2 * n + i] = B;
    out[n + i] = (Y[i] - 0.299 * R - 0.114 * B) / 0.587;
  }
  return { data: out, channels: 3, height: H, width: W };
}
