import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, noGrad } from '../../src/tensor/tensor.js';
import * as T from '../../src/tensor/index.js';
import { referenceKernels } from '../../src/kernels/reference.js';
import { gradcheck, randn, rng, relErr } from '../helpers/gradcheck.js';

const r = rng(1);
const R = (shape: number[], s = 1) => randn(shape, r, 'float64', s);
const pos = (shape: number[]) => {
  const t = R(shape);
  for (let i = 0; i < t.size; i++) t.data[i] = 0.5 + Math.abs(t.data[i]);
  return t;
};

test('binary ops broadcast like NumPy (forward)', () => {
  const a = R([2, 3, 4, 5]);
  const b = R([1, 3, 1, 1]);
  const c = T.add(a, b);
  for (let n = 0; n < 2; n++)
    for (let ch = 0; ch < 3; ch++)
      for (let i = 0; i < 20; i++) {
        const k = (n * 3 + ch) * 20 + i;
        assert.equal(c.data[k], a.data[k] + b.data[ch]);
      }
  const d = T.mul(R([4, 1]), R([3]));
  assert.deepEqual(d.shape, [4, 3]);
  const e = T.div(R([5]), pos([2, 1, 5]));
  assert.deepEqual(e.shape, [2, 1, 5]);
  assert.throws(() => T.add(R([2, 3]), R([4])), /broadcastable/);
});

test('gradients: add/sub/mul/div with broadcasting', () => {
  gradcheck((x, y) => T.add(x, y), [R([2, 3, 4, 5]), R([1, 3, 1, 1])]);
  gradcheck((x, y) => T.sub(x, y), [R([2, 3, 1, 5]), R([3, 4, 1])]);
  gradcheck((x, y) => T.mul(x, y), [R([2, 3, 4, 5]), R([2, 3, 1, 1])]);
  gradcheck((x, y) => T.div(x, y), [R([3, 4]), pos([1, 4])]);
  gradcheck((x) => T.mul(x, x), [R([7])]);
});

test('gradients: unary ops', () => {
  gradcheck((x) => T.exp(x), [R([2, 3, 5])]);
  gradcheck((x) => T.log(x), [pos([4, 5])]);
  gradcheck((x) => T.sigmoid(x), [R([3, 7])]);
  gradcheck((x) => T.clamp(x, -0.5, 0.5), [R([3, 7])]);
  gradcheck((x) => T.relu(x), [R([3, 7])]);
  gradcheck((x) => T.leakyRelu(x, 0.2), [R([3, 7])]);
  gradcheck((x) => T.affineScalar(x, -1.5, 2), [R([6])]);
  gradcheck((x) => T.square(x), [R([6])]);
  gradcheck((x, y) => T.axpy(0.3, x, y), [R([2, 3]), R([2, 3])]);
  gradcheck((x) => T.axpy(0.5, x, x), [R([4])]);
  gradcheck((x) => T.relu(x), [R([9])]);
});

test('sum/mean over chosen axes', () => {
  const a = R([2, 3, 4, 5]);
  const s = T.sum(a, [1, 3]);
  assert.deepEqual(s.shape, [2, 4]);
  let want = 0;
  for (let c = 0; c < 3; c++) for (let x = 0; x < 5; x++) want += a.data[((1 * 3 + c) * 4 + 2) * 5 + x];
  assert.ok(Math.abs(s.data[1 * 4 + 2] - want) < 1e-12);
  assert.deepEqual(T.sum(a, [0, 2], true).shape, [1, 3, 1, 5]);
  assert.deepEqual(T.sum(a).shape, []);
  gradcheck((x) => T.sum(x, [1, 2, 3]), [R([2, 3, 4, 5])]);
  gradcheck((x) => T.mean(x, [0, 2], true), [R([2, 3, 4, 5])]);
  gradcheck((x) => T.mean(x), [R([3, 4])]);
});

test('concat, slice, strided channel selection', () => {
  const a = R([2, 3, 4, 5]);
  const b = R([2, 2, 4, 5]);
  const c = T.concat([a, b], 1);
  assert.deepEqual(c.shape, [2, 5, 4, 5]);
  assert.equal(c.data[(1 * 5 + 4) * 20 + 7], b.data[(1 * 2 + 1) * 20 + 7]);
  const ev = T.evenChannels(R([2, 7, 3, 3]));
  assert.deepEqual(ev.shape, [2, 4, 3, 3]);
  const x = R([2, 6, 3, 3]);
  const od = T.oddChannels(x);
  assert.equal(od.data[(1 * 3 + 2) * 9 + 4], x.data[(1 * 6 + 5) * 9 + 4]);
  gradcheck((p, q) => T.concat([p, q], 1), [R([2, 3, 2, 3]), R([2, 1, 2, 3])]);
  gradcheck((p) => T.slice(p, 1, 1, 4), [R([2, 5, 2, 3])]);
  gradcheck((p) => T.slice(p, 1, 0, 7, 2), [R([2, 7, 2, 3])]);
  gradcheck((p) => T.concat([T.evenChannels(p), T.oddChannels(p)], 1), [R([1, 6, 2, 2])]);
});

test('reshape and permute (squeeze / unsqueeze)', () => {
  const a = R([2, 3, 4]);
  const p = T.permute(a, [2, 0, 1]);
  assert.deepEqual(p.shape, [4, 2, 3]);
  assert.equal(p.data[(3 * 2 + 1) * 3 + 2], a.data[(1 * 3 + 2) * 4 + 3]);
  assert.deepEqual(T.reshape(a, [6, -1]).shape, [6, 4]);
  gradcheck((x) => T.permute(x, [1, 3, 0, 2]), [R([2, 3, 4, 5])]);
  gradcheck((x) => T.mul(T.reshape(x, [3, 8]), T.reshape(x, [3, 8])), [R([2, 3, 4])]);
  const x = R([2, 3, 4, 6]);
  const s = T.squeeze2(x);
  assert.deepEqual(s.shape, [2, 12, 2, 3]);
  // channel c·4 + i·2 + j at (u,v) = input channel c at (2u+i, 2v+j)
  assert.equal(s.data[((1 * 12 + 2 * 4 + 1 * 2 + 0) * 2 + 1) * 3 + 2], x.data[((1 * 3 + 2) * 4 + 3) * 6 + 4]);
  assert.deepEqual(Array.from(T.squeeze2(s, true).data), Array.from(x.data));
  gradcheck((y) => T.squeeze2(y), [R([1, 2, 4, 2])]);
  gradcheck((y) => T.squeeze2(y, true), [R([1, 8, 2, 3])]);
});

test('resampling: nearest ×2, nearest resize, bilinear ½', () => {
  const x = R([2, 3, 3, 5]);
  const u = T.upsampleNearest2x(x);
  assert.deepEqual(u.shape, [2, 3, 6, 10]);
  assert.equal(u.data[((1 * 3 + 2) * 6 + 5) * 10 + 9], x.data[((1 * 3 + 2) * 3 + 2) * 5 + 4]);
  const rz = T.resizeNearest(R([1, 2, 5, 4]), 7, 9);
  assert.deepEqual(rz.shape, [1, 2, 7, 9]);
  const d = T.downsampleBilinearHalf(x);
  assert.deepEqual(d.shape, [2, 3, 1, 2]);
  const w = 5;
  const want = 0.25 * (x.data[0 * w + 2] + x.data[0 * w + 3] + x.data[1 * w + 2] + x.data[1 * w + 3]);
  assert.ok(Math.abs(d.data[1] - want) < 1e-12);
  gradcheck((y) => T.upsampleNearest2x(y), [R([1, 2, 3, 2])]);
  gradcheck((y) => T.resizeNearest(y, 5, 7), [R([2, 1, 3, 4])]);
  gradcheck((y) => T.resizeNearest(y, 2, 3), [R([1, 2, 5, 7])]);
  gradcheck((y) => T.downsampleBilinearHalf(y), [R([2, 2, 5, 6])]);
  const q = R([1, 1, 8, 9]);
  const d4 = T.downsampleBilinear(q, 4);
  assert.deepEqual(d4.shape, [1, 1, 2, 2]);
  // output (1,1) averages rows 5,6 and columns 5,6 (source coordinate 4·1 + 1.5)
  assert.ok(Math.abs(d4.data[3] - 0.25 * (q.data[5 * 9 + 5] + q.data[5 * 9 + 6] + q.data[6 * 9 + 5] + q.data[6 * 9 + 6])) < 1e-12);
  gradcheck((y) => T.downsampleBilinear(y, 4), [R([1, 2, 9, 8])]);
});

function convCase(n: number, cin: number, cout: number, h: number, w: number, k: number, bias: boolean) {
  const x = R([n, cin, h, w]);
  const wt = R([cout, cin, k, k], 0.3);
  const b = bias ? R([cout]) : null;
  return { x, wt, b };
}

test('conv2d forward (active kernels, float32) matches the float64 reference', () => {
  const cases: [number, number, number, number, number, number, boolean][] = [
    [1, 3, 64, 9, 7, 3, true],
    [3, 17, 5, 13, 11, 3, false],
    [2, 64, 12, 8, 8, 1, false],
    [1, 70, 33, 5, 6, 1, true],
    [2, 6, 12, 4, 4, 3, true],
  ];
  for (const [n, cin, cout, h, w, k, bias] of cases) {
    const { x, wt, b } = convCase(n, cin, cout, h, w, k, bias);
    const y32 = T.conv2d(x.to('float32'), wt.to('float32'), b ? b.to('float32') : null);
    const ref = new Float64Array(n * cout * h * w);
    referenceKernels.conv2d(x.data, wt.data, b ? b.data : null, { n, cin, h, w, cout, kh: k, kw: k, pad: (k - 1) >> 1 }, ref);
    assert.deepEqual(y32.shape, [n, cout, h, w]);
    const e = relErr(y32.data, ref);
    assert.ok(e <= 1e-5, `conv ${[n, cin, cout, h, w, k]} rel err ${e}`);
  }
});

test('gradients: conv2d 3×3 and 1×1, with and without bias, batch > 1', () => {
  for (const [n, cin, cout, h, w, k, bias] of [
    [2, 3, 4, 5, 4, 3, true],
    [1, 2, 3, 3, 5, 3, false],
    [2, 5, 3, 3, 2, 1, true],
    [1, 4, 4, 2, 3, 1, false],
  ] as const) {
    const { x, wt, b } = convCase(n, cin, cout, h, w, k, bias);
    if (b) gradcheck((p, q, s) => T.conv2d(p, q, s), [x, wt, b]);
    else gradcheck((p, q) => T.conv2d(p, q), [x, wt]);
  }
});

test('matmul, logAbsDet and inverse', () => {
  const a = R([3, 4]);
  const b = R([4, 2]);
  const c = T.matmul(a, b);
  let want = 0;
  for (let k = 0; k < 4; k++) want += a.data[1 * 4 + k] * b.data[k * 2 + 1];
  assert.ok(Math.abs(c.data[1 * 2 + 1] - want) < 1e-12);
  gradcheck((p, q) => T.matmul(p, q), [R([3, 5]), R([5, 2])]);
  const w = R([4, 4]);
  // det of a permuted diagonal matrix
  const d = Tensor.from([0, 2, 0, 0, 0, 0, 3, 0, -4, 0, 0, 0, 0, 0, 0, 0.5], [4, 4], 'float64');
  assert.ok(Math.abs(T.logAbsDet(d).item() - Math.log(12)) < 1e-12);
  gradcheck((p) => T.logAbsDet(p), [w]);
  const inv = T.inverse(w);
  const eye = T.matmul(w, inv);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) assert.ok(Math.abs(eye.data[i * 4 + j] - (i === j ? 1 : 0)) < 1e-10);
  gradcheck((p) => T.inverse(p), [R([3, 3])]);
  assert.throws(() => T.inverse(Tensor.zeros([2, 2], 'float64')), /singular/);
});

test('a composite (flow-like) expression has the right gradient', () => {
  gradcheck(
    (x, s, wt) => {
      const h = T.mul(T.add(x, s), T.exp(s));
      const y = T.conv2d(h, wt);
      return T.sum(T.log(T.addScalar(T.sigmoid(y), 1e-4)), [1, 2, 3]);
    },
    [R([2, 3, 4, 4]), R([1, 3, 1, 1], 0.3), R([3, 3, 3, 3], 0.3)],
  );
});

test('noGrad records no tape; backward frees the tape', () => {
  const x = R([2, 3]);
  x.requiresGrad = true;
  const y = noGrad(() => T.exp(x));
  assert.equal(y.requiresGrad, false);
  assert.equal(y._parents.length, 0);
  const z = T.sum(T.mul(T.exp(x), x));
  assert.ok(z._parents.length > 0);
  z.backward();
  assert.equal(z._parents.length, 0);
  assert.equal(z._backward, null);
  assert.ok(x.grad);
  assert.throws(() => T.sum(Tensor.zeros([2])).backward(), /does not require grad/);
});

test('fused flow ops: forward equals the unfused chain; gradients match finite differences', async () => {
  const F = await import('../../src/tensor/fused.js');
  const x = R([2, 3, 4, 5]);
  const b = R([1, 3, 1, 1], 0.5);
  const s = R([1, 3, 1, 1], 0.3);
  const want = T.mul(T.add(x, b), T.exp(T.scale(s, 3)));
  assert.ok(relErr(F.channelAffine(x, b, s, 3).data, want.data) < 1e-14);
  assert.ok(relErr(F.channelAffine(x, b, s, 1, true).data, T.relu(T.mul(T.add(x, b), T.exp(s))).data) < 1e-14);
  assert.ok(relErr(F.channelAffineInverse(F.channelAffine(x, b, s, 2), b, s, 2).data, x.data) < 1e-14);
  gradcheck((p, q, r2) => F.channelAffine(p, q, r2, 3), [x, b, s]);
  gradcheck((p, q, r2) => F.channelAffine(p, q, r2, 1, true), [R([2, 3, 4, 5]), R([3], 0.5), R([3], 0.3)]);
  gradcheck((p, q, r2) => F.channelAffineInverse(p, q, r2, 1), [R([2, 3, 2, 3]), R([1, 3, 1, 1]), R([1, 3, 1, 1], 0.3)]);
  const h = R([2, 3, 3, 2]);
  const raw = R([2, 6, 3, 2]);
  const shift = T.evenChannels(raw);
  const scale = T.addScalar(T.sigmoid(T.addScalar(T.oddChannels(raw), 2)), 1e-4);
  assert.ok(relErr(F.affineFromNet(h, raw, 1e-4).data, T.mul(T.add(h, shift), scale).data) < 1e-14);
  assert.ok(relErr(F.affineFromNet(F.affineFromNet(h, raw, 1e-4), raw, 1e-4, true).data, h.data) < 1e-13);
  assert.ok(relErr(F.sumLogScale(raw, 1e-4).data, T.sum(T.log(scale), [1, 2, 3]).data) < 1e-14);
  gradcheck((p, q) => F.affineFromNet(p, q, 1e-4), [h, raw]);
  gradcheck((p, q) => F.affineFromNet(p, q, 1e-4, true), [R([2, 3, 3, 2]), R([2, 6, 3, 2])]);
  gradcheck((q) => F.sumLogScale(q, 1e-4), [R([2, 6, 3, 2])]);
});

test('clamp: values and NaN are clamped; the gradient is 0 outside (lo, hi)', () => {
  const x = new Tensor(new Float32Array([-3, -1, 0.25, 1, 5, NaN]), [6]);
  x.requiresGrad = true;
  const y = T.clamp(x, -1, 1);
  assert.deepEqual(Array.from(y.data), [-1, -1, 0.25, 1, 1, -1]);
  T.sum(y).backward();
  assert.deepEqual(Array.from(x.grad as Float32Array), [0, 0, 1, 0, 0, 0]);
});
