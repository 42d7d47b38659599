// The native element-wise kernels (src/tensor/ew.ts) against the TypeScript loops they replace:
// forward results and every gradient, on shapes that are odd, batched, broadcast and large enough to
// be split over the thread pool; Adam bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import * as T from '../../src/tensor/index.js';
import { affineFromNet, channelAffine, channelAffineInverse, sumLogScale } from '../../src/tensor/fused.js';
import { ew, setElementwiseJs } from '../../src/tensor/ew.js';
import { Adam } from '../../src/train/adam.js';
import { Rng } from '../../src/tensor/random.js';
import { getNumThreads, setNumThreads } from '../../src/kernels/native.js';
import { relErr } from '../helpers/gradcheck.js';

const native = ew(new Float32Array(1)) !== null;
const rng = new Rng(77);

function randT(shape: number[], scale = 1): Tensor {
  const t = Tensor.zeros(shape);
  rng.fillNormal(t.data as Float32Array, scale);
  return t;
}

function rel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  return relErr(a, b);
}

/** Runs f on fresh leaf copies of `inputs`, backpropagates sum(out · w) and returns out and the grads. */
function run(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], js: boolean): { out: Float32Array; grads: Float32Array[] } {
  const prev = setElementwiseJs(js);
  try {
    const xs = inputs.map((t) => Tensor.param(Float32Array.from(t.data), t.shape));
    const y = f(...xs);
    const w = new Rng(3);
    const wt = Tensor.zeros(y.shape);
    w.fillNormal(wt.data as Float32Array);
    T.sum(T.mul(y, wt)).backward();
    return { out: Float32Array.from(y.data), grads: xs.map((x) => Float32Array.from(x.grad ?? new Float32Array(x.size))) };
  } finally {
    setElementwiseJs(prev);
  }
}

function compare(name: string, f: (...xs: Tensor[]) => Tensor, inputs: Tensor[]): void {
  const a = run(f, inputs, false);
  const b = run(f, inputs, true);
  const eo = rel(a.out, b.out);
  assert.ok(eo <= 1e-5, `${name}: forward relative error ${eo}`);
  a.grads.forEach((g, i) => {
    const e = rel(g, b.grads[i]);
    assert.ok(e <= 1e-5, `${name}: gradient of input ${i} relative error ${e}`);
  });
}

const shapes: number[][] = [
  [1, 3, 5, 7],
  [3, 6, 9, 11],
  [2, 64, 40, 40], // large: split over the pool
];

test('native element-wise kernels match the TypeScript loops (forward and gradients)', { skip: !native }, () => {
  for (const s of shapes) {
    const [n, c, h, w] = s;
    const tag = `[${s.join(',')}]`;
    for (const relu of [false, true]) {
      compare(`channelAffine relu=${relu} ${tag}`, (x, b, l) => channelAffine(x, b, l, 3, relu), [randT(s), randT([c], 0.3), randT([c, 1, 1], 0.2)]);
    }
    compare(`channelAffineInverse ${tag}`, (x, b, l) => channelAffineInverse(x, b, l, 1), [randT(s), randT([c], 0.3), randT([c], 0.2)]);
    for (const inverse of [false, true]) {
      compare(`affineFromNet inverse=${inverse} ${tag}`, (x, r) => affineFromNet(x, r, 1e-4, inverse), [randT(s), randT([n, 2 * c, h, w])]);
      compare(`affineFromNet broadcast inverse=${inverse} ${tag}`, (x, r) => affineFromNet(x, r, 1e-4, inverse), [randT(s), randT([1, 2 * c, h, w])]);
    }
    compare(`sumLogScale ${tag}`, (r) => sumLogScale(r, 1e-4), [randT([n, 2 * c, h, w], 3)]);
    compare(`leakyRelu ${tag}`, (x) => T.leakyRelu(x, 0.2), [randT(s)]);
    compare(`axpy ${tag}`, (x, y) => T.axpy(0.2, x, y), [randT(s), randT(s)]);
    // accumulateGrad adds into an existing gradient (x used twice)
    compare(`accumulateGrad ${tag}`, (x) => T.add(T.leakyRelu(x, 0.1), T.leakyRelu(x, 0.3)), [randT(s)]);
  }
});

test('sigmoids saturate without overflow in the native kernels', { skip: !native }, () => {
  const raw = Tensor.zeros([1, 2, 1, 4]);
  raw.data.set([0, 0, 0, 0, 200, -200, 1e30, -1e30]); // shift channel, then scale channel
  const h = Tensor.zeros([1, 1, 1, 4]);
  h.data.set([1, 1, 1, 1]);
  const y = affineFromNet(h, raw, 1e-4, false);
  assert.ok(Array.from(y.data).every(Number.isFinite), `non-finite: ${Array.from(y.data)}`);
  const want = [1 + 1e-4, 1e-4, 1 + 1e-4, 1e-4];
  want.forEach((v, i) => assert.ok(Math.abs(y.data[i] - v) < 1e-6, `output ${i}: ${y.data[i]} instead of ${v}`));
  const back = affineFromNet(y, raw, 1e-4, true);
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(back.data[i] - 1) < 1e-5, `inverse ${i}: ${back.data[i]}`);
  const s = sumLogScale(raw, 1e-4);
  assert.ok(Number.isFinite(s.data[0]));
});

test('native Adam is bit-identical to the TypeScript step, and results do not depend on the thread count', { skip: !native }, () => {
  const threads0 = getNumThreads();
  const step = (js: boolean, threads: number) => {
    setNumThreads(threads);
    const prev = setElementwiseJs(js);
    try {
      const p = Tensor.param(
        new Float32Array(100_003).map((_, i) => Math.sin(i)),
        [100_003],
      );
      const opt = new Adam([{ name: 'g', params: [['p', p]] }], { lr: 1e-3, weightDecay: 0.01 });
      for (let k = 0; k < 3; k++) {
        p.grad = new Float32Array(p.size).map((_, i) => Math.cos(i * (k + 1)));
        opt.step();
      }
      return p.data;
    } finally {
      setElementwiseJs(prev);
    }
  };
  try {
    const js = step(true, 2);
    assert.deepEqual(step(false, 2), js);
    assert.deepEqual(step(false, 1), js);
    // a fused op with per-channel reductions, 1 vs 2 threads
    const x = randT([2, 64, 40, 40]);
    const b = randT([64]);
    const l = randT([64]);
    const grads = (threads: number) => {
      setNumThreads(threads);
      return run((xx, bb, ll) => channelAffine(xx, bb, ll, 1, true), [x, b, l], false).grads;
    };
    assert.deepEqual(grads(1), grads(2));
  } finally {
    setNumThreads(threads0);
  }
});
