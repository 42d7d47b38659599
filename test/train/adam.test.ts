import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import * as T from '../../src/tensor/index.js';
import { Adam, multiStepLr } from '../../src/train/adam.js';

test('Adam matches a hand-computed update over two steps', () => {
  const p = Tensor.param(Float32Array.from([1, -2]), [2]);
  const opt = new Adam([{ name: 'g', params: [['p', p]] }], { lr: 0.1 });
  // step 1, g = [0.5, -1]: m = 0.1 g, v = 0.001 g², m̂ = g, v̂ = g² → p -= 0.1·g/(|g| + 1e-8)
  p.grad = Float32Array.from([0.5, -1]);
  opt.step();
  assert.ok(Math.abs(p.data[0] - (1 - (0.1 * 0.5) / (0.5 + 1e-8))) < 1e-6);
  assert.ok(Math.abs(p.data[1] - (-2 + (0.1 * 1) / (1 + 1e-8))) < 1e-6);
  // step 2, g = [0.2, 0.4]
  const g1 = [0.5, -1];
  const g2 = [0.2, 0.4];
  const before = [p.data[0], p.data[1]];
  p.grad = Float32Array.from(g2);
  opt.step();
  for (let i = 0; i < 2; i++) {
    const m = 0.9 * 0.1 * g1[i] + 0.1 * g2[i];
    const v = 0.999 * 0.001 * g1[i] ** 2 + 0.001 * g2[i] ** 2;
    const mh = m / (1 - 0.9 ** 2);
    const vh = v / (1 - 0.999 ** 2);
    const want = before[i] - (0.1 * mh) / (Math.sqrt(vh) + 1e-8);
    assert.ok(Math.abs(p.data[i] - want) < 1e-6, `param ${i}: ${p.data[i]} vs ${want}`);
  }
});

test('Adam state round-trips and frozen groups do not move', () => {
  const a = Tensor.param(Float32Array.from([1, 2, 3]), [3]);
  const b = Tensor.param(Float32Array.from([4]), [1]);
  const opt = new Adam(
    [
      { name: 'flow', params: [['a', a]] },
      { name: 'rrdb', params: [['b', b]] },
    ],
    { lr: 0.01 },
  );
  opt.groups[1].trainable = false;
  a.grad = Float32Array.from([1, 1, 1]);
  b.grad = Float32Array.from([1]);
  opt.step();
  assert.equal(b.data[0], 4);
  assert.notEqual(a.data[0], 1);
  const s = opt.state();
  const opt2 = new Adam(
    [
      { name: 'flow', params: [['a', a]] },
      { name: 'rrdb', params: [['b', b]] },
    ],
    { lr: 0.01 },
  );
  opt2.loadState(structuredClone(s));
  const a2 = Float32Array.from(a.data);
  a.grad = Float32Array.from([0.3, -0.2, 0.1]);
  opt.step();
  const r1 = Float32Array.from(a.data);
  a.data.set(a2);
  a.grad = Float32Array.from([0.3, -0.2, 0.1]);
  opt2.step();
  assert.deepEqual(Array.from(a.data), Array.from(r1));
});

test('MultiStepLR halves at milestones', () => {
  assert.equal(multiStepLr(1, [10, 20], 0.5, 9), 1);
  assert.equal(multiStepLr(1, [10, 20], 0.5, 10), 0.5);
  assert.equal(multiStepLr(1, [10, 20], 0.5, 25), 0.25);
});

test('memory does not grow across training-loop iterations', async () => {
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose_gc');
  const gc = runInNewContext('gc') as () => void;
  const w = Tensor.param(
    new Float32Array(16 * 8 * 9).map(() => Math.random() * 0.1),
    [16, 8, 3, 3],
  );
  const opt = new Adam([{ name: 'g', params: [['w', w]] }], { lr: 1e-3 });
  const x = new Tensor(
    new Float32Array(2 * 8 * 32 * 32).map(() => Math.random()),
    [2, 8, 32, 32],
  );
  const iter = () => {
    const y = T.conv2d(x, w);
    const loss = T.mean(T.square(T.sigmoid(y)));
    opt.zeroGrad();
    loss.backward();
    opt.step();
  };
  // A single gc() call may leave young garbage and external buffers whose release is deferred to a
  // later task: collect until the figure stops falling.
  const settle = async () => {
    let last = Infinity;
    for (let k = 0; k < 8; k++) {
      gc();
      await new Promise((r) => setImmediate(r));
      const now = process.memoryUsage().arrayBuffers;
      if (now >= last) return now;
      last = now;
    }
    return last;
  };
  for (let i = 0; i < 5; i++) iter();
  const base = await settle();
  for (let i = 0; i < 60; i++) iter();
  const after = await settle();
  // One iteration allocates ~1.5 MB of buffers; 60 leaked iterations would be ~90 MB.
  assert.ok(after - base < 4e6, `array buffers grew by ${after - base} bytes over 60 iterations`);
});
