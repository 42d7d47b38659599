/**
 * Plain TypeScript reference kernels: simple, obviously-correct loops over Float32Array or
 * Float64Array. Tests use them as the oracle for the native kernels; the engine falls back to
 * them when the native addon is unavailable.
 */
import type { Buf, Conv2dGeom, Kernels } from './types.js';
import { convOutSize } from './types.js';

export function conv2d(x: Buf, w: Buf, bias: Buf | null, g: Conv2dGeom, out: Buf): void {
  const { n, cin, h, w: wd, cout, kh, kw, pad } = g;
  const { oh, ow } = convOutSize(g);
  for (let b = 0; b < n; b++) {
    for (let co = 0; co < cout; co++) {
      const ob = (b * cout + co) * oh * ow;
      const bv = bias ? bias[co] : 0;
      for (let i = 0; i < oh * ow; i++) out[ob + i] = bv;
      for (let ci = 0; ci < cin; ci++) {
        const xb = (b * cin + ci) * h * wd;
        for (let ky = 0; ky < kh; ky++) {
          for (let kx = 0; kx < kw; kx++) {
            const wv = w[((co * cin + ci) * kh + ky) * kw + kx];
            for (let y = 0; y < oh; y++) {
              const iy = y + ky - pad;
              if (iy < 0 || iy >= h) continue;
              const orow = ob + y * ow;
              const xrow = xb + iy * wd;
              for (let xx = 0; xx < ow; xx++) {
                const ix = xx + kx - pad;
                if (ix < 0 || ix >= wd) continue;
                out[orow + xx] += wv * x[xrow + ix];
              }
            }
          }
        }
      }
    }
  }
}

export function conv2dBackwardData(gy: Buf, w: Buf, g: Conv2dGeom, gx: Buf, accumulate: boolean): void {
  const { n, cin, h, w: wd, cout, kh, kw, pad } = g;
  const { oh, ow } = convOutSize(g);
  if (!accumulate) gx.fill(0);
  for (let b = 0; b < n; b++) {
    for (let co = 0; co < cout; co++) {
      const ob = (b * cout + co) * oh * ow;
      for (let ci = 0; ci < cin; ci++) {
        const xb = (b * cin + ci) * h * wd;
        for (let ky = 0; ky < kh; ky++) {
          for (let kx = 0; kx < kw; kx++) {
            const wv = w[((co * cin + ci) * kh + ky) * kw + kx];
            for (let y = 0; y < oh; y++) {
              const iy = y + ky - pad;
              if (iy < 0 || iy >= h) continue;
              for (let xx = 0; xx < ow; xx++) {
                const ix = xx + kx - pad;
                if (ix < 0 || ix >= wd) continue;
                gx[xb + iy * wd + ix] += wv * gy[ob + y * ow + xx];
              }
            }
          }
        }
      }
    }
  }
}

export function conv2dBackwardFilter(gy: Buf, x: Buf, g: Conv2dGeom, gw: Buf, gb: Buf | null, accumulate: boolean): void {
  const { n, cin, h, w: wd, cout, kh, kw, pad } = g;
  const { oh, ow } = convOutSize(g);
  if (!accumulate) {
    gw.fill(0);
    if (gb) gb.fill(0);
  }
  for (let b = 0; b < n; b++) {
    for (let co = 0; co < cout; co++) {
      const ob = (b * cout + co) * oh * ow;
      if (gb) {
        let s = 0;
        for (let i = 0; i < oh * ow; i++) s += gy[ob + i];
        gb[co] += s;
      }
      for (let ci = 0; ci < cin; ci++) {
        const xb = (b * cin + ci) * h * wd;
        for (let ky = 0; ky < kh; ky++) {
          for (let kx = 0; kx < kw; kx++) {
            let s = 0;
            for (let y = 0; y < oh; y++) {
              const iy = y + ky - pad;
              if (iy < 0 || iy >= h) continue;
              for (let xx = 0; xx < ow; xx++) {
                const ix = xx + kx - pad;
                if (ix < 0 || ix >= wd) continue;
                s += x[xb + iy * wd + ix] * gy[ob + y * ow + xx];
              }
            }
            gw[((co * cin + ci) * kh + ky) * kw + kx] += s;
          }
        }
      }
    }
  }
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

export const referenceKernels: Kernels = {
  name: 'reference',
  conv2d,
  conv2dBackwardData,
  conv2dBackwardFilter,
  matmul,
};
