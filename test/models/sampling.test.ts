// Many samples of one LR image decoded together (SRFlowModel.sampleMany, SRFlowNet.decodeCached
// with a latent batch against a conditioning of batch 1) give exactly the samples decoded one at
// a time with the same seeds, log-determinants included; and the no-tape inverse against the
// prepared conditioning (workspace, one sample at a time) matches the plain batched inverse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, noGrad } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/tensor/random.js';
import { createModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { relErr } from '../helpers/gradcheck.js';
import { rand, randomiseModel } from '../helpers/model.js';

/** Bit-for-bit equality, naming the first difference. */
function same(a: Tensor, b: Tensor, what: string): void {
  assert.deepEqual(a.shape, b.shape, `${what}: shape`);
  for (let i = 0; i < a.size; i++) if (!Object.is(a.data[i], b.data[i])) assert.fail(`${what}: element ${i} ${a.data[i]} vs ${b.data[i]}`);
}

function sampleOf(t: Tensor, s: number): Tensor {
  const per = t.size / t.shape[0];
  return new Tensor(t.data.slice(s * per, (s + 1) * per), [1, ...t.shape.slice(1)]);
}

// hidden 16 at level 2 (16×16 for this LR size): the ZeroConv 16 → 24 sits at the native kernels'
// Winograd threshold, which one sample stays under and two pass: a batched conv would round differently
test('samples decoded together = each decoded alone with its seed, bit for bit', () => {
  const m = createModel(makeOpt({ scale: 4, nb: 1, K: 2, L: 3, blocks: [0], hidden: 16, nf: 8 }), 7);
  randomiseModel(m, 8);
  const lr = rand([1, 3, 16, 16], 9);
  const many = m.sampleMany(lr, [{ temperature: 0.9, seed: 5 }], 5, { batch: 4 }); // a batch of 4, then 1
  assert.equal(many.length, 5);
  for (let i = 0; i < 5; i++) same(many[i], m.sample(lr, { temperature: 0.9, seed: 5 + i }), `sample ${i}`);
  assert.ok(relErr(many[0].data, many[1].data) > 1e-3, 'different seeds give different samples');

  const net = m.net;
  const cache = net.prepareConditioning(lr);
  const z = net.drawLatents([3, 3, 16, 16], 0.9, new Rng(1));
  const together = net.decodeCached(z, cache);
  assert.deepEqual(together.logdet.shape, [3]);
  for (let s = 0; s < 3; s++) {
    const alone = net.decodeCached(z.map((t) => sampleOf(t, s)), cache);
    same(sampleOf(together.sr, s), alone.sr, `decodeCached sample ${s}`);
    assert.ok(Object.is(together.logdet.data[s], alone.logdet.data[0]), `log-det of sample ${s}: ${together.logdet.data[s]} vs ${alone.logdet.data[0]}`);
  }
  // the plain inverse (no workspace: the coupling nets run batched on slices) agrees to rounding
  const plain = noGrad(() => net.decodeWith(z, [], { cache }));
  assert.ok(relErr(together.sr.data, plain.sr.data) < 1e-5, `sr ${relErr(together.sr.data, plain.sr.data)}`);
  assert.ok(relErr(together.logdet.data, plain.logdet.data) < 1e-5, `logdet ${Array.from(together.logdet.data)} vs ${Array.from(plain.logdet.data)}`);
  // without log-dets: the same image, zeros for the log-det
  const quiet = net.decodeCached(z, cache, { logdet: false });
  same(quiet.sr, together.sr, 'logdet: false');
  assert.ok(quiet.logdet.data.every((v) => v === 0));
});

// hidden 32: the coupling nets' ZeroConv 32 → 12 at level 1 (32×32 for this LR size) is a narrow
// output the native kernels now run as Winograd (8 – 15 output channels from 32 input channels up)
// for one sample as for a batch; many samples decoded together, against one shared workspace
// (the conditioning's own), still equal each sample decoded alone
test('samples decoded together = each alone, with the narrow-output ZeroConvs on the Winograd path', () => {
  const m = createModel(makeOpt({ scale: 4, nb: 1, K: 2, L: 3, blocks: [0], hidden: 32, nf: 8 }), 11);
  randomiseModel(m, 12);
  const lr = rand([1, 3, 16, 16], 13);
  const net = m.net;
  const cache = net.prepareConditioning(lr);
  const z = net.drawLatents([4, 3, 16, 16], 0.9, new Rng(3));
  const together = net.decodeCached(z, cache);
  assert.ok(cache.workspace && cache.workspace.bytes > 0, 'the decode keeps its scratch buffers with the conditioning');
  for (let s = 0; s < 4; s++) {
    const alone = net.decodeCached(z.map((t) => sampleOf(t, s)), net.prepareConditioning(lr));
    same(sampleOf(together.sr, s), alone.sr, `sample ${s}`);
    assert.ok(Object.is(together.logdet.data[s], alone.logdet.data[0]), `log-det of sample ${s}`);
  }
  const plain = noGrad(() => net.decodeWith(z, [], { cache }));
  assert.ok(relErr(together.sr.data, plain.sr.data) < 1e-5, `sr ${relErr(together.sr.data, plain.sr.data)}`);
});
