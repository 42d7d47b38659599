/**
 * withChecks (src/kernels/checks.ts): every CPU backend (reference, native, wasm) refuses the same
 * bad call with the same message, checks before computing (the output is left as it was), and
 * sends float64 calls to the reference kernels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Kernels, Conv2dGeom } from '../../src/kernels/types.js';
import { referenceKernels } from '../../src/kernels/reference.js';
import * as ref from '../../src/kernels/reference.js';
import { loadNative } from '../../src/kernels/native.js';
import { createWasmKernelsSync } from '../../src/kernels/wasm.js';
import { withChecks } from '../../src/kernels/checks.js';

const native = loadNative().kernels;
const wasm = createWasmKernelsSync(readFileSync(new URL('../../wasm/srflow-kernels.wasm', import.meta.url)));
const backends: [string, Kernels][] = [['reference', referenceKernels], ['wasm', wasm], ...(native ? [['native', native] as [string, Kernels]] : [])];

const g: Conv2dGeom = { n: 1, cin: 2, h: 4, w: 4, cout: 3, kh: 3, kw: 3, pad: 1 };
const f = (n: number) => new Float32Array(n).fill(0.5);

/** Bad calls, each with the one message every backend must give. */
const BAD: [string, (k: Kernels) => void, string][] = [
  ['short x', (k) => k.conv2d(f(31), f(54), null, g, f(48)), 'Expected x of length 32 for conv2d but received length 31'],
  ['long bias', (k) => k.conv2d(f(32), f(54), f(4), g, f(48)), 'Expected bias of length 3 for conv2d but received length 4'],
  ['negative pad', (k) => k.conv2d(f(32), f(54), null, { ...g, pad: -1 }, f(48)), 'Expected pad to be an integer >= 0 for conv2d but received -1'],
  [
    'fractional cin',
    (k) => k.conv2dBackwardData(f(48), f(54), { ...g, cin: 1.5 }, f(32), false),
    'Expected cin to be an integer >= 1 for conv2dBackwardData but received 1.5',
  ],
  [
    'empty output',
    (k) => k.conv2d(f(32), f(3 * 2 * 81), null, { ...g, kh: 9, kw: 9, pad: 0 }, f(0)),
    'Expected a non-empty output for conv2d but received geometry',
  ],
  ['short gw', (k) => k.conv2dBackwardFilter(f(48), f(32), g, f(53), null, false), 'Expected gw of length 54 for conv2dBackwardFilter but received length 53'],
  ['matmul a', (k) => k.matmul(f(5), f(6), 2, 3, 2, false, false, f(4), false), 'Expected a of length 6 for matmul but received length 5'],
  ['matmul m', (k) => k.matmul(f(6), f(6), -2, 3, 2, false, false, f(4), false), 'Expected m to be an integer >= 0 for matmul but received -2'],
];

for (const [what, call, message] of BAD) {
  test(`withChecks: ${what} gives one message from every backend`, () => {
    for (const [name, k] of backends) {
      assert.throws(
        () => call(k),
        (e: Error) => e.message.startsWith(message),
        `${name}`,
      );
    }
  });
}

test('withChecks: the element-wise kernels of every backend that has them refuse bad lengths alike', () => {
  const withEw = backends.filter(([, k]) => k.ew);
  assert.ok(withEw.length >= 1);
  for (const [name, k] of withEw) {
    const ew = k.ew!;
    assert.throws(() => ew.axpy(1, f(4), f(3), f(4)), /^Error: Expected y of length 4 for axpy but received length 3$/, name);
    assert.throws(
      () => ew.channelAffine(f(6), 1, 2, 3, f(2), f(1), false, f(6)),
      /^Error: Expected mul of length 2 for channelAffine but received length 1$/,
      name,
    );
    assert.throws(
      () => ew.sumLogScale(f(12), 1, 2, 0, 1e-4, new Float64Array(1)),
      /^Error: Expected hw to be an integer >= 1 for sumLogScale but received 0$/,
      name,
    );
    assert.throws(() => ew.channelAffine(f(6), 1, 2, 3, f(2), f(2), false, f(5)), /out of length 6/, name);
    const out = new Float32Array(6).fill(3);
    assert.throws(() => ew.channelAffine(f(6), 1, 2, 3, f(2), f(1), false, out), /mul of length 2/, name);
    assert.ok(
      out.every((v) => v === 3),
      `${name}: nothing written`,
    );
  }
});

test('withChecks: a refused call leaves its output as it was', () => {
  for (const [name, k] of backends) {
    const out = new Float32Array(48).fill(7);
    assert.throws(() => k.conv2d(f(32), f(53), null, g, out));
    assert.ok(
      out.every((v) => v === 7),
      name,
    );
  }
});

test("withChecks: float64 calls go to the float64 kernels; the wrapper keeps the backend's other members", () => {
  let f32 = 0;
  const spy: Kernels & { extra(): number } = {
    name: 'spy',
    conv2d: () => void f32++,
    conv2dBackwardData: () => void f32++,
    conv2dBackwardFilter: () => void f32++,
    matmul: () => void f32++,
    extra: () => 42,
  };
  const k = withChecks(spy, referenceKernels);
  assert.equal(k.name, 'spy');
  assert.equal(k.extra(), 42);
  k.conv2d(f(32), f(54), null, g, f(48));
  assert.equal(f32, 1);
  const x = Float64Array.from({ length: 32 }, (_, i) => Math.sin(i));
  const w = Float64Array.from({ length: 54 }, (_, i) => Math.cos(i));
  const got = new Float64Array(48);
  k.conv2d(x, w, null, g, got);
  assert.equal(f32, 1, 'the float64 call did not reach the float32 backend');
  const want = new Float64Array(48);
  ref.conv2d(x, w, null, g, want);
  assert.deepEqual(got, want);
});

test('reference kernels: the tap loop gives the direct sum (conv2d and both gradients, with padding)', () => {
  // direct definitions, independent of forEachTap
  const gg: Conv2dGeom = { n: 2, cin: 2, h: 3, w: 5, cout: 2, kh: 3, kw: 2, pad: 1 };
  const oh = gg.h + 2 * gg.pad - gg.kh + 1;
  const ow = gg.w + 2 * gg.pad - gg.kw + 1;
  const x = Float64Array.from({ length: gg.n * gg.cin * gg.h * gg.w }, (_, i) => Math.sin(i * 1.3));
  const w = Float64Array.from({ length: gg.cout * gg.cin * gg.kh * gg.kw }, (_, i) => Math.cos(i * 0.7));
  const b = Float64Array.from([0.25, -0.5]);
  const gy = Float64Array.from({ length: gg.n * gg.cout * oh * ow }, (_, i) => Math.sin(i * 0.37 + 1));
  const X = (n: number, c: number, y: number, xx: number) => (y < 0 || y >= gg.h || xx < 0 || xx >= gg.w ? 0 : x[((n * gg.cin + c) * gg.h + y) * gg.w + xx]);
  const W = (o: number, c: number, ky: number, kx: number) => w[((o * gg.cin + c) * gg.kh + ky) * gg.kw + kx];
  const out = new Float64Array(gy.length);
  const gx = new Float64Array(x.length);
  const gw = new Float64Array(w.length);
  const gb = new Float64Array(2);
  const wantOut = new Float64Array(gy.length);
  const wantGx = new Float64Array(x.length);
  const wantGw = new Float64Array(w.length);
  const wantGb = new Float64Array(2);
  for (let n = 0; n < gg.n; n++)
    for (let o = 0; o < gg.cout; o++)
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++) {
          const oi = ((n * gg.cout + o) * oh + y) * ow + xx;
          let s = b[o];
          wantGb[o] += gy[oi];
          for (let c = 0; c < gg.cin; c++)
            for (let ky = 0; ky < gg.kh; ky++)
              for (let kx = 0; kx < gg.kw; kx++) {
                const iy = y + ky - gg.pad;
                const ix = xx + kx - gg.pad;
                s += W(o, c, ky, kx) * X(n, c, iy, ix);
                wantGw[((o * gg.cin + c) * gg.kh + ky) * gg.kw + kx] += gy[oi] * X(n, c, iy, ix);
                if (iy >= 0 && iy < gg.h && ix >= 0 && ix < gg.w) wantGx[((n * gg.cin + c) * gg.h + iy) * gg.w + ix] += gy[oi] * W(o, c, ky, kx);
              }
          wantOut[oi] = s;
        }
  referenceKernels.conv2d(x, w, b, gg, out);
  referenceKernels.conv2dBackwardData(gy, w, gg, gx, false);
  referenceKernels.conv2dBackwardFilter(gy, x, gg, gw, gb, false);
  const close = (a: Float64Array, e: Float64Array, what: string) =>
    a.forEach((v, i) => assert.ok(Math.abs(v - e[i]) < 1e-12, `${what}[${i}]: ${v} vs ${e[i]}`));
  close(out, wantOut, 'out');
  close(gx, wantGx, 'gx');
  close(gw, wantGw, 'gw');
  close(gb, wantGb, 'gb');
});
