// Winograd F(4x4, 3x3) convolutions of the native addon (3x3, stride 1, padding 1: forward,
// backward-data and backward-filter) against the float64 reference, on every SIMD path and
// thread count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getNumThreads, loadNative, nativeAddon, setNumThreads } from '../../src/kernels/native.js';
import * as ref from '../../src/kernels/reference.js';
import type { Conv2dGeom } from '../../src/kernels/types.js';
import { xorshift32 } from '../helpers/xorshift.js';

const loaded = loadNative();
const addon = nativeAddon();

const rnd = xorshift32(987654321);
function randn(n: number, scale: number): Float32Array {
  // approximately normal (sum of 4 uniforms, unit variance)
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rnd() + rnd() + rnd() + rnd()) * Math.sqrt(3 / 4) * scale;
  return a;
}
const f64 = (a: Float32Array) => Float64Array.from(a);

// The error is measured against the largest output magnitude: max |got - want| <= TOL * max |want|.
// Winograd's transforms mix neighbouring pixels with weights up to 8 (A^T) and 5/2 (B^T), so its
// float32 rounding error is several times the direct sum's (about 4e-6 of the output's magnitude
// at 326 input channels with these points, against about 5e-7 direct); 1e-5 is the accuracy asked
// of any 3x3 convolution here (the direct path's checks use 1e-5 on the RMS error).
const TOL = 1e-5;
function maxErr(got: Float32Array, want: Float64Array): number {
  assert.equal(got.length, want.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < got.length; i++) {
    d = Math.max(d, Math.abs(got[i] - want[i]));
    m = Math.max(m, Math.abs(want[i]));
  }
  return d / (m > 0 ? m : 1);
}
function expectClose(got: Float32Array, want: Float64Array, what: string): void {
  const e = maxErr(got, want);
  assert.ok(e <= TOL, `${what}: max error ${e.toExponential(3)} of the output's magnitude`);
}

interface Case {
  n: number;
  cin: number;
  cout: number;
  h: number;
  w: number;
  bias: boolean;
}

// Sizes that are not multiples of the 4x4 output tile (partial edge tiles), batches whose tile
// blocks span images, channel counts that are not multiples of 8 or of the micro-tile widths, and
// several depth blocks (more than 64 input channels).
const cases: Case[] = [
  { n: 3, cin: 17, cout: 19, h: 13, w: 11, bias: true },
  { n: 1, cin: 40, cout: 36, h: 19, w: 23, bias: false },
  { n: 2, cin: 70, cout: 33, h: 9, w: 10, bias: true },
  { n: 1, cin: 130, cout: 20, h: 8, w: 8, bias: false },
  { n: 1, cin: 24, cout: 40, h: 8, w: 9, bias: true }, // few tiles: output channels split over threads
  { n: 8, cin: 64, cout: 64, h: 16, w: 16, bias: true }, // the training shape
  { n: 1, cin: 326, cout: 64, h: 12, w: 21, bias: true }, // the widest conv of SRFlow
  { n: 2, cin: 16, cout: 16, h: 37, w: 8, bias: false },
  { n: 2, cin: 3, cout: 5, h: 2, w: 7, bias: true }, // smaller than one tile ('always' only)
  { n: 1, cin: 9, cout: 1, h: 1, w: 1, bias: true },
  // 360 tiles: backward-filter in two super-blocks of tiles and several tile groups
  { n: 3, cin: 20, cout: 24, h: 37, w: 45, bias: true },
  { n: 2, cin: 64, cout: 12, h: 17, w: 20, bias: true }, // narrow output: the coupling nets' ZeroConv
];

interface Data {
  c: Case;
  g: Conv2dGeom;
  x: Float32Array;
  w: Float32Array;
  b: Float32Array | null;
  gy: Float32Array;
  gx0: Float32Array;
  y64: Float64Array;
  gx64: Float64Array[]; // [overwrite, accumulate]
  gw0: Float32Array; // existing gradient for the accumulate runs
  gb0: Float32Array;
  gw64: Float64Array[]; // [overwrite, accumulate]
  gb64: Float64Array[];
  gwMag: Float64Array; // sum over batch and pixels of |gy * xpad|, per weight
  gbMag: Float64Array; // sum of |gy|, per output channel
}

function prepare(c: Case): Data {
  const g: Conv2dGeom = { n: c.n, cin: c.cin, h: c.h, w: c.w, cout: c.cout, kh: 3, kw: 3, pad: 1 };
  // Realistic magnitudes: unit activations, He-initialised weights.
  const x = randn(c.n * c.cin * c.h * c.w, 1);
  const w = randn(c.cout * c.cin * 9, Math.sqrt(2 / (9 * c.cin)));
  const b = c.bias ? randn(c.cout, 0.1) : null;
  const gy = randn(c.n * c.cout * c.h * c.w, 1);
  const gx0 = randn(x.length, 1);
  const y64 = new Float64Array(gy.length);
  ref.conv2d(f64(x), f64(w), b ? f64(b) : null, g, y64);
  const gx64 = [false, true].map((acc) => {
    const o = f64(gx0);
    ref.conv2dBackwardData(f64(gy), f64(w), g, o, acc);
    return o;
  });
  const gw0 = randn(w.length, 1);
  const gb0 = randn(c.cout, 1);
  const gw64: Float64Array[] = [];
  const gb64: Float64Array[] = [];
  for (const acc of [false, true]) {
    const o = f64(gw0);
    const ob = f64(gb0);
    ref.conv2dBackwardFilter(f64(gy), f64(x), g, o, ob, acc);
    gw64.push(o);
    gb64.push(ob);
  }
  const gwMag = new Float64Array(w.length);
  const gbMag = new Float64Array(c.cout);
  ref.conv2dBackwardFilter(Float64Array.from(gy, Math.abs), Float64Array.from(x, Math.abs), g, gwMag, gbMag, false);
  return { c, g, x, w, b, gy, gx0, y64, gx64, gw0, gb0, gw64, gb64, gwMag, gbMag };
}

function run(d: Data): Float32Array[] {
  const K = loaded.kernels!;
  const y = randn(d.y64.length, 1); // garbage: must be overwritten
  K.conv2d(d.x, d.w, d.b, d.g, y);
  const gx = randn(d.x.length, 1);
  K.conv2dBackwardData(d.gy, d.w, d.g, gx, false);
  const gxa = d.gx0.slice();
  K.conv2dBackwardData(d.gy, d.w, d.g, gxa, true);
  return [y, gx, gxa];
}

// Backward-filter: every weight gradient is a sum over batch x H x W products gy * x, so its
// rounding error grows with the number and size of the terms, not with the (much smaller, by
// cancellation) size of the result. The error is therefore measured against the magnitude of the
// sum, S = sum |gy * xpad| (float64), the quantity that bounds any float32 summation error:
// max |got - want| <= TOL_BWF * max S (plus the existing gradient's magnitude when accumulating).
// Measured: direct <= 1.3e-7 S, Winograd <= 4.6e-7 S (about 8 float32 ulps: the transforms A and
// G^T weigh terms by up to 8 and 16/15 before the 6x6 -> 3x3 reduction cancels them); 2e-6 S
// (34 ulps) leaves a factor of 4. A wrong coefficient or a lost tile gives errors of order
// |gw| ~ S / sqrt(batch*H*W), orders of magnitude above it.
const TOL_BWF = 2e-6;
function bwfErr(got: Float32Array, want: Float64Array, mag: Float64Array, base: Float32Array | null): number {
  assert.equal(got.length, want.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < got.length; i++) {
    d = Math.max(d, Math.abs(got[i] - want[i]));
    m = Math.max(m, mag[i] + (base ? Math.abs(base[i]) : 0));
  }
  return d / (m > 0 ? m : 1);
}
function expectBwf(got: Float32Array, want: Float64Array, mag: Float64Array, base: Float32Array | null, what: string) {
  const e = bwfErr(got, want, mag, base);
  assert.ok(e <= TOL_BWF, `${what}: max error ${e.toExponential(3)} of the sum's magnitude`);
}

/** [gw, gb | empty, gw accumulated, gb accumulated | empty] */
function runBwf(d: Data): Float32Array[] {
  const K = loaded.kernels!;
  const gw = randn(d.w.length, 1); // garbage: must be overwritten
  const gb = d.c.bias ? randn(d.c.cout, 1) : null;
  K.conv2dBackwardFilter(d.gy, d.x, d.g, gw, gb, false);
  const gwa = d.gw0.slice();
  const gba = d.c.bias ? d.gb0.slice() : null;
  K.conv2dBackwardFilter(d.gy, d.x, d.g, gwa, gba, true);
  return [gw, gb ?? new Float32Array(0), gwa, gba ?? new Float32Array(0)];
}
function checkBwf(d: Data, tag: string): void {
  const [gw, gb, gwa, gba] = runBwf(d);
  expectBwf(gw, d.gw64[0], d.gwMag, null, `conv2dBackwardFilter ${tag}`);
  expectBwf(gwa, d.gw64[1], d.gwMag, d.gw0, `conv2dBackwardFilter accumulate ${tag}`);
  if (d.c.bias) {
    expectBwf(gb, d.gb64[0], d.gbMag, null, `bias gradient ${tag}`);
    expectBwf(gba, d.gb64[1], d.gbMag, d.gb0, `bias gradient accumulate ${tag}`);
  }
}

const data = cases.map(prepare);

/** Whether `compute` gives bit-identical results with Winograd forced on and forced off. */
function forcedPathsAgree(compute: (d: Data) => Float32Array[], d: Data): boolean {
  addon!.setWinograd(true);
  const a = compute(d);
  addon!.setWinograd(false);
  const b = compute(d);
  return a.every((v, i) => Buffer.from(v.buffer).equals(Buffer.from(b[i].buffer)));
}

test('Winograd is on by default and can be switched off', { skip: !addon }, () => {
  const A = addon!;
  if (!process.env.SRFLOW_WINOGRAD) assert.equal(A.winogradEnabled(), true);
  try {
    assert.equal(A.setWinograd(false), false);
    assert.equal(A.winogradEnabled(), false);
    assert.equal(A.setWinograd('always'), 'always');
    assert.equal(A.setWinograd(true), true);
    assert.throws(() => A.setWinograd('yes' as never), /setWinograd expects/);
  } finally {
    A.setWinograd('auto');
  }
});

test('by default Winograd is used only where it pays: large enough 3x3 pad-1 convolutions', { skip: !addon }, () => {
  const A = addon!;
  const K = loaded.kernels!;
  const same = (c: Case, bias = c.bias) => forcedPathsAgree(run, prepare({ ...c, bias }));
  try {
    assert.equal(same({ n: 1, cin: 16, cout: 16, h: 16, w: 16, bias: true }), true); // 1.2 MFLOP: direct
    assert.equal(same({ n: 1, cin: 64, cout: 64, h: 8, w: 8, bias: true }), true); // 4 tiles: direct
    assert.equal(same({ n: 1, cin: 6, cout: 64, h: 32, w: 32, bias: true }), true); // few input channels (and, for backward-data, outputs)
    // 8 – 15 input channels: the forward is direct, its backward-data (64 → 8, a narrow output) Winograd
    assert.equal(same({ n: 1, cin: 8, cout: 64, h: 32, w: 32, bias: true }), false);
    assert.equal(same({ n: 2, cin: 64, cout: 64, h: 8, w: 8, bias: true }), false); // Winograd
    assert.equal(same({ n: 1, cin: 32, cout: 32, h: 16, w: 16, bias: false }), false);
    // narrow outputs (8 – 15 channels): Winograd from 32 input channels up (the coupling nets' ZeroConv 64 → 12)
    assert.equal(same({ n: 1, cin: 64, cout: 12, h: 32, w: 32, bias: true }), false);
    assert.equal(same({ n: 1, cin: 32, cout: 8, h: 32, w: 32, bias: false }), false);
    assert.equal(same({ n: 1, cin: 16, cout: 12, h: 64, w: 64, bias: true }), true); // shallow input: direct
    assert.equal(same({ n: 1, cin: 64, cout: 7, h: 32, w: 32, bias: true }), true); // fewer than 8 outputs: direct
    // never for other geometries, even when forced
    A.setWinograd('always');
    const g = { n: 1, cin: 32, h: 16, w: 16, cout: 32, kh: 3, kw: 3, pad: 2 };
    const x = randn(32 * 256, 1);
    const w = randn(32 * 32 * 9, 0.1);
    const y = new Float32Array(32 * 18 * 18);
    K.conv2d(x, w, null, g, y);
    const want = new Float64Array(y.length);
    ref.conv2d(f64(x), f64(w), null, g, want);
    expectClose(y, want, 'pad-2 conv with Winograd forced');
  } finally {
    A.setWinograd('auto');
  }
});

/** Runs body with Winograd forced (also the small cases) on every SIMD level and 1, 2 and 3 threads. */
function forEachPath(body: (path: string) => void): void {
  const A = addon!;
  const t0 = getNumThreads();
  try {
    A.setWinograd('always');
    for (const level of A.supportedSimd()) {
      A.setSimd(level);
      for (const threads of [1, 2, 3]) {
        setNumThreads(threads);
        body(`${level} t${threads}`);
      }
    }
  } finally {
    A.setSimd('auto');
    A.setWinograd('auto');
    setNumThreads(t0);
  }
}

test('Winograd forward and backward-data match the float64 reference on every SIMD path', { skip: !addon }, () =>
  forEachPath((path) => {
    for (const d of data) {
      const tag = `${path} ${JSON.stringify(d.c)}`;
      const [y, gx, gxa] = run(d);
      expectClose(y, d.y64, `conv2d ${tag}`);
      expectClose(gx, d.gx64[0], `conv2dBackwardData ${tag}`);
      expectClose(gxa, d.gx64[1], `conv2dBackwardData accumulate ${tag}`);
    }
  }),
);

/** Every SIMD level: the same bits on a repeat and with 1, 2 or 3 threads (exact training resume depends on it). */
function checkBitIdentical(compute: (d: Data) => Float32Array[]): void {
  const A = addon!;
  const t0 = getNumThreads();
  try {
    A.setWinograd('always'); // also the small cases
    for (const level of A.supportedSimd()) {
      A.setSimd(level);
      for (const d of data) {
        setNumThreads(2);
        const first = compute(d);
        compute(d).forEach((a, i) => assert.deepEqual(a, first[i], `${level} output ${i} differs on repeat ${JSON.stringify(d.c)}`));
        for (const threads of [1, 3]) {
          setNumThreads(threads);
          compute(d).forEach((a, i) => assert.deepEqual(a, first[i], `${level} output ${i} differs between 2 and ${threads} threads ${JSON.stringify(d.c)}`));
        }
      }
    }
  } finally {
    A.setSimd('auto');
    A.setWinograd('auto');
    setNumThreads(t0);
  }
}

test('Winograd results are bit-identical across repeated calls and 1, 2 and 3 threads', { skip: !addon }, () => checkBitIdentical(run));

test('the Winograd and direct paths are different computations of the same result', { skip: !addon }, () => {
  // Guards against the switch doing nothing: on a 64-channel convolution the two paths round
  // differently, and both are within the tolerance.
  const A = addon!;
  const d = data[5];
  try {
    A.setWinograd('always');
    const [yw, gxw] = run(d);
    A.setWinograd(false);
    const [yd, gxd] = run(d);
    assert.notDeepEqual(yw, yd);
    assert.notDeepEqual(gxw, gxd);
    expectClose(yd, d.y64, 'direct conv2d');
    expectClose(gxd, d.gx64[0], 'direct conv2dBackwardData');
    // Winograd's error stays within a small multiple of the direct path's.
    assert.ok(maxErr(yw, d.y64) < 20 * Math.max(maxErr(yd, d.y64), 1e-7));
  } finally {
    A.setWinograd('auto');
  }
});

test('Winograd backward-filter matches the float64 reference on every SIMD path and thread count', { skip: !addon }, () =>
  forEachPath((path) => {
    for (const d of data) checkBwf(d, `${path} ${JSON.stringify(d.c)}`);
  }),
);

test('Winograd backward-filter is bit-identical across repeated calls and 1, 2 and 3 threads', { skip: !addon }, () => checkBitIdentical(runBwf));

test('Winograd backward-filter: used by default where it pays, a different computation of the same result', { skip: !addon }, () => {
  const A = addon!;
  const same = (c: Case) => forcedPathsAgree(runBwf, prepare(c));
  try {
    assert.equal(same({ n: 2, cin: 3, cout: 64, h: 16, w: 16, bias: true }), true); // few input channels: direct
    assert.equal(same({ n: 2, cin: 16, cout: 16, h: 3, w: 16, bias: true }), true); // smaller than a tile: direct
    assert.equal(same({ n: 1, cin: 16, cout: 16, h: 4, w: 4, bias: true }), true); // one tile: direct
    assert.equal(same({ n: 1, cin: 8, cout: 8, h: 16, w: 16, bias: true }), false); // Winograd
    assert.equal(same({ n: 1, cin: 64, cout: 3, h: 16, w: 16, bias: false }), false);
    // On the training shape the two paths round differently, and both are within the tolerance.
    const d = data[5];
    A.setWinograd('always');
    const [gww] = runBwf(d);
    A.setWinograd(false);
    const [gwd] = runBwf(d);
    assert.notDeepEqual(gww, gwd);
    expectBwf(gwd, d.gw64[0], d.gwMag, null, 'direct conv2dBackwardFilter');
    assert.ok(bwfErr(gww, d.gw64[0], d.gwMag, null) < 20 * Math.max(bwfErr(gwd, d.gw64[0], d.gwMag, null), 1e-8));
  } finally {
    A.setWinograd('auto');
  }
});
