import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadNative, nativeAddon, getNumThreads, setNumThreads, simdLevel } from '../../src/kernels/native.js';
import * as ref from '../../src/kernels/reference.js';
import type { Conv2dGeom, Kernels } from '../../src/kernels/types.js';
import { xorshift32 } from '../helpers/xorshift.js';

const loaded = loadNative();
const addon = nativeAddon();

const rnd = xorshift32(12345);
function rand32(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rnd();
  return a;
}
const f64 = (a: Float32Array) => Float64Array.from(a);

function relErr(got: Float32Array, want: Float64Array): number {
  assert.equal(got.length, want.length);
  let d = 0;
  let s = 0;
  for (let i = 0; i < got.length; i++) {
    const e = got[i] - want[i];
    d += e * e;
    s += want[i] * want[i];
  }
  return Math.sqrt(d / (s > 0 ? s : 1));
}

function expectClose(got: Float32Array, want: Float64Array, what: string): void {
  const e = relErr(got, want);
  assert.ok(e <= 1e-5, `${what}: relative error ${e}`);
}

interface ConvCase {
  g: Conv2dGeom;
  bias: boolean;
}

function convCases(): ConvCase[] {
  const out: ConvCase[] = [];
  const add = (n: number, cin: number, cout: number, h: number, w: number, k: number, pad: number, bias: boolean) =>
    out.push({ g: { n, cin, h, w, cout, kh: k, kw: k, pad }, bias });
  add(1, 3, 5, 7, 5, 3, 1, true);
  add(3, 17, 12, 13, 11, 3, 1, false);
  add(1, 64, 64, 16, 16, 3, 1, true);
  add(3, 5, 70, 9, 33, 1, 0, true);
  add(1, 1, 1, 1, 1, 1, 0, false);
  add(1, 12, 3, 13, 11, 3, 0, true);
  add(3, 70, 17, 7, 5, 1, 0, false);
  add(1, 6, 7, 5, 5, 1, 1, true); // 1x1 with padding: backward-data crops
  add(1, 326, 64, 7, 9, 3, 1, true);
  add(1, 64, 326, 5, 6, 3, 1, false);
  add(3, 64, 64, 13, 11, 1, 0, true);
  add(1, 4, 5, 3, 40, 3, 2, false); // pad larger than needed
  add(1, 3, 6, 20, 37, 3, 1, true); // rows wider than one tile
  // non-square kernels
  out.push({ g: { n: 2, cin: 5, h: 8, w: 9, cout: 7, kh: 1, kw: 3, pad: 1 }, bias: true });
  out.push({ g: { n: 1, cin: 3, h: 6, w: 7, cout: 4, kh: 3, kw: 2, pad: 0 }, bias: false });
  return out;
}

interface ConvData {
  c: ConvCase;
  x: Float32Array;
  w: Float32Array;
  b: Float32Array | null;
  gy: Float32Array;
  gx0: Float32Array;
  gw0: Float32Array;
  gb0: Float32Array;
  want: { y: Float64Array; gx: Float64Array[]; gw: Float64Array[]; gb: Float64Array[] };
}

function prepare(c: ConvCase): ConvData {
  const { n, cin, h, w, cout, kh, kw, pad } = c.g;
  const oh = h + 2 * pad - kh + 1;
  const ow = w + 2 * pad - kw + 1;
  const x = rand32(n * cin * h * w);
  const wt = rand32(cout * cin * kh * kw);
  const b = c.bias ? rand32(cout) : null;
  const gy = rand32(n * cout * oh * ow);
  const gx0 = rand32(x.length);
  const gw0 = rand32(wt.length);
  const gb0 = rand32(cout);
  const y = new Float64Array(n * cout * oh * ow);
  ref.conv2d(f64(x), f64(wt), b ? f64(b) : null, c.g, y);
  const gx: Float64Array[] = [];
  const gw: Float64Array[] = [];
  const gb: Float64Array[] = [];
  for (const acc of [false, true]) {
    const gx64 = f64(gx0);
    ref.conv2dBackwardData(f64(gy), f64(wt), c.g, gx64, acc);
    gx.push(gx64);
    const gw64 = f64(gw0);
    const gb64 = f64(gb0);
    ref.conv2dBackwardFilter(f64(gy), f64(x), c.g, gw64, gb64, acc);
    gw.push(gw64);
    gb.push(gb64);
  }
  return { c, x, w: wt, b, gy, gx0, gw0, gb0, want: { y, gx, gw, gb } };
}

function checkConv(K: Kernels, d: ConvData, label: string): void {
  const g = d.c.g;
  const tag = `${label} ${JSON.stringify(g)} bias=${d.c.bias}`;
  const y = rand32(d.want.y.length); // garbage: conv2d must overwrite
  K.conv2d(d.x, d.w, d.b, g, y);
  expectClose(y, d.want.y, `conv2d ${tag}`);
  [false, true].forEach((acc, i) => {
    const gx = d.gx0.slice();
    K.conv2dBackwardData(d.gy, d.w, g, gx, acc);
    expectClose(gx, d.want.gx[i], `conv2dBackwardData acc=${acc} ${tag}`);
    const gw = d.gw0.slice();
    const gb = d.gb0.slice();
    K.conv2dBackwardFilter(d.gy, d.x, g, gw, gb, acc);
    expectClose(gw, d.want.gw[i], `conv2dBackwardFilter gw acc=${acc} ${tag}`);
    expectClose(gb, d.want.gb[i], `conv2dBackwardFilter gb acc=${acc} ${tag}`);
    const gw2 = d.gw0.slice();
    K.conv2dBackwardFilter(d.gy, d.x, g, gw2, null, acc);
    expectClose(gw2, d.want.gw[i], `conv2dBackwardFilter (no gb) acc=${acc} ${tag}`);
  });
}

const mmShapes: [number, number, number][] = [
  [1, 1, 1],
  [13, 7, 45],
  [64, 576, 100],
  [100, 33, 17],
  [5, 300, 70],
  [37, 1, 29],
];

function checkMatmul(K: Kernels, label: string): void {
  for (const [m, k, n] of mmShapes) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        for (const acc of [false, true]) {
          const a = rand32(m * k);
          const b = rand32(k * n);
          const out = rand32(m * n);
          const want = f64(out);
          ref.matmul(f64(a), f64(b), m, k, n, ta, tb, want, acc);
          K.matmul(a, b, m, k, n, ta, tb, out, acc);
          expectClose(out, want, `matmul ${label} m=${m} k=${k} n=${n} ta=${ta} tb=${tb} acc=${acc}`);
        }
      }
    }
  }
}

test('native addon loads', () => {
  assert.ok(loaded.kernels, `native addon failed to load: ${loaded.error}`);
  assert.equal(loaded.error, '');
  assert.match(loaded.kernels.name, /^native-(avx512|avx2|scalar)$/);
  assert.ok(getNumThreads() >= 1);
  assert.match(simdLevel(), /^(avx512|avx2|scalar)$/);
});

test('every SIMD path matches the float64 reference', { skip: !addon }, () => {
  const K = loaded.kernels!;
  const A = addon!;
  const data = convCases().map(prepare);
  const levels = A.supportedSimd();
  assert.ok(levels.includes('scalar'));
  const threads0 = getNumThreads();
  try {
    for (const level of levels) {
      assert.equal(A.setSimd(level), level);
      assert.equal(K.name, `native-${level}`);
      for (const threads of [1, 3]) {
        setNumThreads(threads);
        for (const d of data) checkConv(K, d, `${level} t${threads}`);
        checkMatmul(K, `${level} t${threads}`);
      }
    }
  } finally {
    A.setSimd('auto');
    setNumThreads(threads0);
  }
});

test('larger convolution exercises depth blocking and many column blocks', { skip: !addon }, () => {
  const K = loaded.kernels!;
  const A = addon!;
  // K = 96*9 = 864 > one depth block; 24x24 pixels over several column blocks and p-blocks.
  const d = prepare({ g: { n: 2, cin: 96, h: 24, w: 24, cout: 40, kh: 3, kw: 3, pad: 1 }, bias: true });
  // Weights too large for per-thread packing (480 x 576 floats): packed once, shared.
  const big = prepare({ g: { n: 1, cin: 64, h: 5, w: 7, cout: 480, kh: 3, kw: 3, pad: 1 }, bias: true });
  try {
    for (const level of A.supportedSimd()) {
      A.setSimd(level);
      checkConv(K, d, level);
      checkConv(K, big, level);
    }
  } finally {
    A.setSimd('auto');
  }
});

test('every kernel is bit-for-bit deterministic: repeated calls and 1 vs 2 threads agree exactly', { skip: !addon }, () => {
  // Training resumes must be exact, so no result may depend on which thread ran which chunk.
  const K = loaded.kernels!;
  const t0 = getNumThreads();
  const d = prepare({ g: { n: 3, cin: 40, h: 19, w: 23, cout: 36, kh: 3, kw: 3, pad: 1 }, bias: true });
  const { g } = d.c;
  const run = () => {
    const y = new Float32Array(d.want.y.length);
    K.conv2d(d.x, d.w, d.b, g, y);
    const gx = new Float32Array(d.x.length);
    K.conv2dBackwardData(d.gy, d.w, g, gx, false);
    const gw = new Float32Array(d.w.length);
    const gb = new Float32Array(g.cout);
    K.conv2dBackwardFilter(d.gy, d.x, g, gw, gb, false);
    const mm = new Float32Array(37 * 29);
    K.matmul(d.x.subarray(0, 37 * 51), d.w.subarray(0, 51 * 29), 37, 51, 29, false, false, mm, false);
    return [y, gx, gw, gb, mm];
  };
  try {
    setNumThreads(2);
    const first = run();
    for (let r = 0; r < 5; r++) {
      run().forEach((a, i) => assert.deepEqual(a, first[i], `output ${i} differs on repeat ${r}`));
    }
    setNumThreads(1);
    run().forEach((a, i) => assert.deepEqual(a, first[i], `output ${i} differs between 1 and 2 threads`));
  } finally {
    setNumThreads(t0);
  }
});

test('Float32Array views with a byteOffset are read and written in place', { skip: !addon }, () => {
  const K = loaded.kernels!;
  const g: Conv2dGeom = { n: 1, cin: 3, h: 5, w: 6, cout: 4, kh: 3, kw: 3, pad: 1 };
  const x = rand32(90);
  const w = rand32(108);
  const big = rand32(7 + 120 + 5);
  const out = big.subarray(7, 127);
  const before = big.slice();
  K.conv2d(x, w, null, g, out);
  const want = new Float64Array(120);
  ref.conv2d(f64(x), f64(w), null, g, want);
  expectClose(out, want, 'conv2d into a view');
  for (let i = 0; i < 7; i++) assert.equal(big[i], before[i]);
  for (let i = 127; i < big.length; i++) assert.equal(big[i], before[i]);
  const xs = rand32(100).subarray(10, 100);
  const y = new Float32Array(120);
  K.conv2d(xs, w, null, g, y);
  ref.conv2d(f64(xs), f64(w), null, g, want);
  expectClose(y, want, 'conv2d from a view');
});

test('Float64Array arguments are delegated to the reference kernels', { skip: !addon }, () => {
  const K = loaded.kernels!;
  const g: Conv2dGeom = { n: 2, cin: 3, h: 5, w: 4, cout: 2, kh: 3, kw: 3, pad: 1 };
  const x = f64(rand32(120));
  const w = f64(rand32(54));
  const b = f64(rand32(2));
  const got = new Float64Array(80);
  const want = new Float64Array(80);
  K.conv2d(x, w, b, g, got);
  ref.conv2d(x, w, b, g, want);
  assert.deepEqual(got, want);
  const gy = f64(rand32(80));
  const gx1 = new Float64Array(120);
  const gx2 = new Float64Array(120);
  K.conv2dBackwardData(gy, w, g, gx1, false);
  ref.conv2dBackwardData(gy, w, g, gx2, false);
  assert.deepEqual(gx1, gx2);
  const gw1 = new Float64Array(54);
  const gw2 = new Float64Array(54);
  K.conv2dBackwardFilter(gy, x, g, gw1, null, false);
  ref.conv2dBackwardFilter(gy, x, g, gw2, null, false);
  assert.deepEqual(gw1, gw2);
  const a = f64(rand32(6));
  const bm = f64(rand32(12));
  const o1 = new Float64Array(8);
  const o2 = new Float64Array(8);
  K.matmul(a, bm, 2, 3, 4, false, false, o1, false);
  ref.matmul(a, bm, 2, 3, 4, false, false, o2, false);
  assert.deepEqual(o1, o2);
});

test('buffer lengths and geometry are validated', { skip: !addon }, () => {
  const K = loaded.kernels!;
  const g: Conv2dGeom = { n: 1, cin: 2, h: 4, w: 4, cout: 3, kh: 3, kw: 3, pad: 1 };
  const x = new Float32Array(32);
  const w = new Float32Array(54);
  const out = new Float32Array(48);
  assert.throws(() => K.conv2d(new Float32Array(31), w, null, g, out), /Expected x of length 32 for conv2d but received length 31/);
  assert.throws(() => K.conv2d(x, new Float32Array(53), null, g, out), /Expected w/);
  assert.throws(() => K.conv2d(x, w, new Float32Array(2), g, out), /Expected bias/);
  assert.throws(() => K.conv2d(x, w, null, g, new Float32Array(49)), /Expected out/);
  assert.throws(() => K.conv2dBackwardData(new Float32Array(47), w, g, x, false), /Expected gy/);
  assert.throws(() => K.conv2dBackwardFilter(out, x, g, new Float32Array(5), null, false), /Expected gw/);
  assert.throws(() => K.conv2d(x, w, null, { ...g, pad: -1 }, out), /Expected pad/);
  assert.throws(() => K.conv2d(x, w, null, { ...g, kh: 9, pad: 0 }, out), /Expected/);
  assert.throws(() => K.matmul(new Float32Array(5), new Float32Array(6), 2, 3, 2, false, false, new Float32Array(4), false), /Expected a of length 6/);
  // The addon itself also refuses wrong lengths.
  assert.throws(() => addon!.matmul(new Float32Array(5), new Float32Array(6), 2, 3, 2, false, false, new Float32Array(4), false), /Expected 6 elements for a/);
});

test('setNumThreads resizes the pool', { skip: !addon }, () => {
  const t0 = getNumThreads();
  try {
    assert.equal(setNumThreads(2), 2);
    assert.equal(getNumThreads(), 2);
    assert.equal(setNumThreads(1), 1);
  } finally {
    setNumThreads(t0);
  }
});

test('SRFLOW_SIMD and SRFLOW_THREADS select the path and pool size at load', { skip: !addon }, () => {
  const mod = fileURLToPath(new URL('../../src/kernels/native.ts', import.meta.url));
  const script = `import('${mod.replace(/\\/g, '/')}').then((m) => { const r = m.loadNative(); console.log(JSON.stringify([r.kernels && r.kernels.name, m.simdLevel(), m.getNumThreads()])); })`;
  for (const level of addon!.supportedSimd()) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      env: { ...process.env, SRFLOW_SIMD: level, SRFLOW_THREADS: '3' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim()), [`native-${level}`, level, 3]);
  }
});
