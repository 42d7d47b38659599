/**
 * The WebAssembly module's element-wise kernels (native/elementwise.cc compiled to wasm, exposed as
 * `kernels().ew` by src/kernels/wasm.ts) against the TypeScript loops they replace (the reference),
 * single-threaded and with 3 threads: forward results and every gradient through the tensor ops,
 * on odd, batched, broadcast and pool-sized shapes; Adam bit for bit; argument checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tensor } from '../../src/tensor/tensor.js';
import * as T from '../../src/tensor/index.js';
import { affineFromNet, channelAffine, channelAffineInverse, sumLogScale } from '../../src/tensor/fused.js';
import { ew, setElementwiseJs } from '../../src/tensor/ew.js';
import { Adam } from '../../src/train/adam.js';
import { Rng } from '../../src/tensor/random.js';
import { setKernels } from '../../src/kernels/index.js';
import { createWasmKernels, createWasmKernelsSync, type WasmKernels } from '../../src/kernels/wasm.js';
import { relErr } from '../helpers/gradcheck.js';

const WASM = new URL('../../wasm/srflow-kernels.wasm', import.meta.url);
const WASM_T = new URL('../../wasm/srflow-kernels-threads.wasm', import.meta.url);
const rng = new Rng(91);

function randT(shape: number[], scale = 1): Tensor {
  const t = Tensor.zeros(shape);
  rng.fillNormal(t.data as Float32Array, scale);
  return t;
}

/** f on fresh leaf copies of `inputs`; backpropagates sum(out · w); the output and the gradients. */
function run(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], js: boolean): Float32Array[] {
  const prev = setElementwiseJs(js);
  try {
    const xs = inputs.map((t) => Tensor.param(Float32Array.from(t.data), t.shape));
    const y = f(...xs);
    const wt = Tensor.zeros(y.shape);
    new Rng(3).fillNormal(wt.data as Float32Array);
    T.sum(T.mul(y, wt)).backward();
    return [Float32Array.from(y.data), ...xs.map((x) => Float32Array.from(x.grad ?? new Float32Array(x.size)))];
  } finally {
    setElementwiseJs(prev);
  }
}

function compare(name: string, f: (...xs: Tensor[]) => Tensor, inputs: Tensor[]): void {
  const got = run(f, inputs, false);
  const want = run(f, inputs, true);
  got.forEach((g, i) => {
    const e = relErr(g, want[i]);
    assert.ok(e <= 1e-5, `${name}: ${i === 0 ? 'forward' : `gradient of input ${i - 1}`} relative error ${e}`);
  });
}

function adamSteps(js: boolean): Float32Array {
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
    return p.data as Float32Array;
  } finally {
    setElementwiseJs(prev);
  }
}

function checkAll(K: WasmKernels): void {
  setKernels(K);
  assert.equal(ew(new Float32Array(1)), K.ew, 'the tensor ops use the wasm element-wise kernels');
  for (const s of [
    [1, 3, 5, 7],
    [3, 6, 9, 11],
    [2, 64, 40, 40],
  ]) {
    const [n, c, h, w] = s;
    const tag = `${K.name} [${s.join(',')}]`;
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
    compare(`accumulateGrad ${tag}`, (x) => T.add(T.leakyRelu(x, 0.1), T.leakyRelu(x, 0.3)), [randT(s)]);
  }
  // saturated sigmoids stay finite
  const raw = Tensor.zeros([1, 2, 1, 4]);
  raw.data.set([0, 0, 0, 0, 200, -200, 1e30, -1e30]);
  const one = Tensor.zeros([1, 1, 1, 4]);
  one.data.fill(1);
  const y = affineFromNet(one, raw, 1e-4, false);
  [1 + 1e-4, 1e-4, 1 + 1e-4, 1e-4].forEach((v, i) => assert.ok(Math.abs(y.data[i] - v) < 1e-6, `${K.name} saturated output ${i}: ${y.data[i]}`));
  assert.deepEqual(adamSteps(false), adamSteps(true), `${K.name}: Adam bit-identical to the TypeScript step`);
  // lengths are checked before anything is copied
  assert.throws(() => K.ew!.axpy(1, new Float32Array(4), new Float32Array(3), new Float32Array(4)), /Expected y of length 4 for axpy but received length 3/);
  assert.throws(
    () => K.ew!.channelAffine(new Float32Array(6), 1, 2, 3, new Float32Array(2), new Float32Array(1), false, new Float32Array(6)),
    /Expected mul of length 2/,
  );
}

test('wasm element-wise kernels (one thread) match the TypeScript loops, Adam bit for bit', () => {
  const K = createWasmKernelsSync(readFileSync(WASM));
  try {
    assert.ok(K.ew, 'the wasm backend has element-wise kernels');
    checkAll(K);
  } finally {
    K.dispose();
  }
});

test('wasm element-wise kernels with 3 threads match the TypeScript loops, and the 1-thread module bit for bit', async () => {
  const K = await createWasmKernels({ single: WASM, threaded: WASM_T, threads: 3 });
  const K1 = createWasmKernelsSync(readFileSync(WASM));
  try {
    assert.equal(K.threads(), 3);
    checkAll(K);
    // per-channel reductions are owned by one chunk each: the same bits with 1 and 3 threads
    const x = randT([2, 64, 40, 40]);
    const b = randT([64]);
    const l = randT([64]);
    const grads = (k: WasmKernels) => {
      setKernels(k);
      return run((xx, bb, ll) => channelAffine(xx, bb, ll, 1, true), [x, b, l], false);
    };
    assert.deepEqual(grads(K), grads(K1));
    const r = randT([2, 128, 40, 40], 3);
    const sls = (k: WasmKernels) => {
      setKernels(k);
      return run((rr) => sumLogScale(rr, 1e-4), [r], false);
    };
    assert.deepEqual(sls(K), sls(K1));
  } finally {
    K.dispose();
    K1.dispose();
  }
});
