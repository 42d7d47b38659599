import { test } from 'node:test';
import assert from 'node:assert/strict';
import { psnr, lrPsnr, ssim, diversity, bitsPerDim } from '../../src/metrics/index.js';
import { downscale } from '../../src/data/bicubic.js';
import type { Planar } from '../../src/io/image.js';

function img(c: number, h: number, w: number, f: (c: number, y: number, x: number) => number): Planar {
  const data = new Float32Array(c * h * w);
  for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[(k * h + y) * w + x] = f(k, y, x);
  return { data, channels: c, height: h, width: w };
}

function noisy(a: Planar, sigma255: number, seed: number): Planar {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  const data = a.data.map((v) => {
    const n = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
    return Math.min(1, Math.max(0, v + (sigma255 * n) / 255));
  });
  return { ...a, data };
}

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('psnr: identical → Infinity; constant offset of 10 levels → 10·log10(255²/100)', () => {
  const a = img(3, 8, 8, () => 0);
  const b = img(3, 8, 8, () => 10 / 255);
  assert.equal(psnr(a, a), Infinity);
  close(psnr(a, b), 10 * Math.log10((255 * 255) / 100));
  close(psnr(b, a), psnr(a, b));
});

test('psnr: border crop and quantisation', () => {
  const a = img(3, 10, 10, (c, y, x) => (x + y) / 40);
  const b = img(3, 10, 10, (c, y, x) => (y === 0 || x === 9 ? 0.9 : (x + y) / 40));
  assert.ok(Number.isFinite(psnr(a, b)));
  assert.equal(psnr(a, b, { border: 1 }), Infinity);
  // A difference below half a level disappears after rounding to 8 bits, not without it.
  const c = img(3, 4, 4, () => 100 / 255);
  const d = img(3, 4, 4, () => 100.3 / 255);
  assert.equal(psnr(c, d), Infinity);
  close(psnr(c, d, { quantize: false }), 10 * Math.log10((255 * 255) / 0.09), 1e-3);
  // Quantisation clips to [0, 1].
  assert.equal(
    psnr(
      img(1, 2, 2, () => 1.2),
      img(1, 2, 2, () => 1),
    ),
    Infinity,
  );
  assert.throws(
    () =>
      psnr(
        a,
        img(3, 10, 9, () => 0),
      ),
    /Expected images of the same size for psnr but received 3×10×10 and 3×10×9/,
  );
  assert.throws(() => psnr(a, b, { border: 5 }), /for border but received 5/);
});

test('ssim: constant 7×7 images reduce to the luminance term (2μxμy + C1)/(μx² + μy² + C1)', () => {
  const C1 = (0.01 * 255) ** 2;
  const v = ssim(
    img(1, 7, 7, () => 100 / 255),
    img(1, 7, 7, () => 110 / 255),
  );
  close(v, (2 * 100 * 110 + C1) / (100 ** 2 + 110 ** 2 + C1), 1e-12);
});

test('ssim: one 7×7 window, y = 2x + 10, derived by hand', () => {
  // x = 0..48 (×255 levels): mean 24, population variance (49² − 1)/12 = 200, sample variance 200·49/48.
  // y = 2x + 10: mean 58, variance 4·vx, covariance 2·vx.
  const x = img(1, 7, 7, (c, r, q) => (r * 7 + q) / 255);
  const y = img(1, 7, 7, (c, r, q) => (2 * (r * 7 + q) + 10) / 255);
  const C1 = (0.01 * 255) ** 2;
  const C2 = (0.03 * 255) ** 2;
  const vx = (200 * 49) / 48;
  const expected = ((2 * 24 * 58 + C1) * (2 * 2 * vx + C2)) / ((24 ** 2 + 58 ** 2 + C1) * (vx + 4 * vx + C2));
  close(ssim(x, y), expected, 1e-12);
  close(ssim(y, x), expected, 1e-12);
});

test("ssim: matches scikit-image structural_similarity on a 3×12×10 pair (values from skimage's algorithm)", () => {
  // a = (31y + 17x + 53c) mod 256, b = clip(a + ((7y + 13x + c) mod 41) − 20, 0, 255); reference
  // computed with scikit-image's structural_similarity algorithm (uniform_filter, float64).
  const a = img(3, 12, 10, (c, y, x) => ((y * 31 + x * 17 + c * 53) % 256) / 255);
  const b = img(3, 12, 10, (c, y, x) => Math.min(255, Math.max(0, ((y * 31 + x * 17 + c * 53) % 256) + ((y * 7 + x * 13 + c) % 41) - 20)) / 255);
  close(ssim(a, b), 0.9878638589623051, 1e-12);
  close(ssim(a, b, { border: 1 }), 0.9880101536880236, 1e-12);
});

test('ssim invariants: ssim(x,x) = 1, symmetric, decreases with noise, channel average', () => {
  const x = img(3, 32, 24, (c, y, q) => 0.5 + 0.4 * Math.sin(y / 3 + c) * Math.cos(q / 4));
  close(ssim(x, x), 1, 1e-12);
  const n1 = noisy(x, 5, 1);
  const n2 = noisy(x, 20, 2);
  const n3 = noisy(x, 60, 3);
  close(ssim(x, n1), ssim(n1, x), 1e-12);
  const s1 = ssim(x, n1);
  const s2 = ssim(x, n2);
  const s3 = ssim(x, n3);
  assert.ok(s1 < 1 && s2 < s1 && s3 < s2, `${s1} ${s2} ${s3}`);
  // Three identical channels give the single-channel value.
  const g = img(1, 16, 16, (c, y, q) => (((y * 16 + q) * 7) % 256) / 255);
  const h = img(1, 16, 16, (c, y, q) => (((y * 16 + q) * 5) % 256) / 255);
  const g3 = img(3, 16, 16, (c, y, q) => g.data[y * 16 + q]);
  const h3 = img(3, 16, 16, (c, y, q) => h.data[y * 16 + q]);
  close(ssim(g3, h3), ssim(g, h), 1e-12);
  assert.throws(
    () =>
      ssim(
        img(1, 6, 6, () => 0),
        img(1, 6, 6, () => 0),
      ),
    /at least 7×7/,
  );
});

test('lrPsnr: an SR consistent with its LR scores Infinity; noise lowers it', () => {
  const hr = img(3, 32, 32, (c, y, x) => 0.5 + 0.3 * Math.sin((x + 2 * y + c) / 5));
  const lr = downscale(hr, 4);
  assert.equal(lrPsnr(hr, lr, 4), Infinity);
  const v = lrPsnr(noisy(hr, 20, 4), lr, 4);
  assert.ok(v > 25 && v < 60, `${v}`);
});

test('diversity and bitsPerDim', () => {
  const a = img(3, 4, 4, () => 0.2);
  assert.equal(diversity([a, a, a]), 0);
  assert.equal(diversity([a]), 0);
  close(diversity([img(3, 4, 4, () => 0), img(3, 4, 4, () => 1)]), 0.5, 1e-7);
  // [0, 0.2, 0.4] → population std sqrt(0.08/3)
  close(diversity([img(1, 2, 2, () => 0), img(1, 2, 2, () => 0.2), img(1, 2, 2, () => 0.4)]), Math.sqrt(0.08 / 3), 1e-7);
  assert.throws(() => diversity([]), /non-empty array/);
  assert.throws(() => diversity([a, img(3, 4, 5, () => 0)]), /samples\[1\]/);
  assert.equal(bitsPerDim(3), 1);
  close(bitsPerDim(-7.5), -2.5);
});
