/**
 * Plain TypeScript reference kernels: simple, obviously-correct loops over Float32Array or
 * Float64Array. Tests use them as the oracle for the native kernels; the engine falls back to
 * them when the native addon is unavailable.
 */
import type { Buf, Conv2dGeom, Kernels } from './types.js';
import { convOutSize } from './types.js';
import { withChecks } from './checks.js';

/**
 * Every (sample, output channel, input channel, tap) of a convolution: `fn(ob, xo, wi, y0, y1, x0, x1)`
 * where output pixel (y, x) of the plane at `ob` meets input element `xo + y·w + x` through weight
 * `wi`, for y in [y0, y1) and x in [x0, x1) (the pixels whose tap falls inside the input).
 */
function forEachTap(g: Conv2dGeom, fn: (ob: number, xo: number, wi: number, y0: number, y1: number, x0: number, x1: number) => void): void {
  const { n, cin, h, w: wd, cout, kh, kw, pad } = g;
  const { oh, ow } = convOutSize(g);
  for (let b = 0; b < n; b++) {
    for (let co = 0; co < cout; co++) {
      const ob = (b * cout + co) * oh * ow;
      for (let ci = 0; ci < cin; ci++) {
        const xb = (b * cin + ci) * h * wd;
        for (let ky = 0; ky < kh; ky++) {
          for (let kx = 0; kx < kw; kx++) {
            const wi = ((co * cin + ci) * kh + ky) * kw + kx;
            const y0 = Math.max(0, pad - ky);
            const x0 = Math.max(0, pad - kx);
            fn(ob, xb + (ky - pad) * wd + (kx - pad), wi, y0, Math.min(oh, h + pad - ky), x0, Math.min(ow, wd + pad - kx));
          }
        }
      }
    }
  }
}

export function conv2d(x: Buf, w: Buf, bias: Buf | null, g: Conv2dGeom, out: Buf): void {
  const { oh, ow } = convOutSize(g);
  for (let o = 0; o < g.n * g.cout; o++) out.fill(bias ? bias[o % g.cout] : 0, o * oh * ow, (o + 1) * oh * ow);
  forEachTap(g, (ob, xo, wi, y0, y1, x0, x1) => {
    const wv = w[wi];
    for (let y = y0; y < y1; y++) {
      for (let xx = x0; xx < x1; xx++) out[ob + y * ow + xx] += wv * x[xo + y * g.w + xx];
    }
  });
}

export function conv2dBackwardData(gy: Buf, w: Buf, g: Conv2dGeom, gx: Buf, accumulate: boolean): void {
  const { ow } = convOutSize(g);
  if (!accumulate) gx.fill(0);
  forEachTap(g, (ob, xo, wi, y0, y1, x0, x1) => {
    const wv = w[wi];
    for (let y = y0; y < y1; y++) {
      for (let xx = x0; xx < x1; xx++) gx[xo + y * g.w + xx] += wv * gy[ob + y * ow + xx];
    }
  });
}

export function conv2dBackwardFilter(gy: Buf, x: Buf, g: Conv2dGeom, gw: Buf, gb: Buf | null, accumulate: boolean): void {
  const { oh, ow } = convOutSize(g);
  if (!accumulate) {
    gw.fill(0);
    if (gb) gb.fill(0);
  }
  if (gb) {
    for (let o = 0; o < g.n * g.cout; o++) {
      let s = 0;
      for (let i = o * oh * ow; i < (o + 1) * oh * ow; i++) s += gy[i];
      gb[o % g.cout] += s;
    }
  }
  forEachTap(g, (ob, xo, wi, y0, y1, x0, x1) => {
    let s = 0;
    for (let y = y0; y < y1; y++) {
      for (let xx = x0; xx < x1; xx++) s += x[xo + y * g.w + xx] * gy[ob + y * ow + xx];
    }
    gw[wi] += s;
  });
}

export function matmul(a: Buf, b: Buf, m: number, k: number, n: number, transA: boolean, transB: boolean, out: Buf, accumulate: boolean): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a[p * m + i] : a[i * k + p];
        const bv = transB ? b[j * k + p] : b[p * n + j];
        s += av * bv;
      }
      out[i * n + j] = accumulate ? out[i * n + j] + s : s;
    }
  }
}

/** The reference kernels as a backend (arguments checked as every backend's: withChecks). */
export const referenceKernels: Kernels = withChecks({
  name: 'reference',
  conv2d,
  conv2dBackwardData,
  conv2dBackwardFilter,
  matmul,
});
