// Batched conditioning precompute (CondAffineGroup), the phase decomposition of the first convs at
// twice LR resolution (flow/condconv.ts) and the RRDB's no-tape dense blocks: same values as the
// one-step-at-a-time path on the materialised conditioning maps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, noGrad } from '../../src/tensor/tensor.js';
import * as T from '../../src/tensor/index.js';
import { Rng } from '../../src/tensor/random.js';
import { createModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { FlowStep } from '../../src/flow/flowstep.js';
import type { AffineCache } from '../../src/flow/affine.js';
import { convUpsampledCond, materializeCond, phaseWeights } from '../../src/flow/condconv.js';
import type { SRFlowNet } from '../../src/models/srflow.js';
import { relErr } from '../helpers/gradcheck.js';
import { rand, randomiseModel } from '../helpers/model.js';

/** Random parameters (test/helpers/model.ts), counted as loaded (ActNorms keep them). */
function randomiseLoaded(m: ReturnType<typeof createModel>, seed: number): void {
  randomiseModel(m, seed);
  m.net.markLoaded();
}

// K = 5 per level: groups of 2 and 3 leave a remainder; hidden 8, 8·3 = 24 conditioning channels
const opt = makeOpt({ scale: 4, nb: 2, K: 5, L: 3, blocks: [0, 1], hidden: 8, nf: 8 });

/** The reference: every step's precompute one at a time on the materialised conditioning maps (the path before batching). */
function reference(net: SRFlowNet, lr: Tensor): Map<number, AffineCache> {
  return noGrad(() => {
    const conds = net.conditioning(net.rrdb.forward(lr));
    const out = new Map<number, AffineCache>();
    net.layers.forEach((l, i) => {
      if (l instanceof FlowStep && l.affine) out.set(i, l.affine.precompute(conds[net.levelOf[i] - 1]));
    });
    return out;
  });
}

function assertSameCaches(got: Map<number, AffineCache>, want: Map<number, AffineCache>, what: string, tol = 1e-5): void {
  assert.deepEqual([...got.keys()], [...want.keys()], `${what}: steps`);
  for (const [i, w] of want) {
    const g = got.get(i)!;
    for (const k of ['inj', 'u0', 'wz'] as const) {
      assert.deepEqual(g[k].shape, w[k].shape, `${what}: step ${i} ${k} shape`);
      const e = relErr(g[k].data, w[k].data);
      assert.ok(e < tol, `${what}: step ${i} ${k} relative error ${e}`);
    }
  }
}

test('batched conditioning (any group size, with and without phases, batch 1 and 2) = one step at a time', () => {
  const m = createModel(opt, 1);
  randomiseLoaded(m, 2);
  const net = m.net;
  for (const [B, h, w] of [[1, 6, 4], [2, 4, 6]]) {
    const lr = rand([B, 3, h, w], 3 + B);
    const want = reference(net, lr);
    for (const condGroup of [1, 2, 3, 4, 0]) {
      for (const condPhases of [false, true]) {
        const cache = net.prepareConditioning(lr, { condGroup, condPhases });
        assertSameCaches(cache.steps, want, `B=${B} group ${condGroup} phases ${condPhases}`);
        // without phases the stacked conv computes each output row as the single conv does
        if (!condPhases) for (const [i, c] of want) assert.deepEqual(Array.from(cache.steps.get(i)!.u0.data), Array.from(c.u0.data));
      }
    }
  }
  // the groups: consecutive steps of one level, in layer order
  const g2 = net.affineGroups(2);
  assert.deepEqual(g2.map((g) => g.indices.length), [2, 2, 1, 2, 2, 1, 2, 2, 1]);
  assert.deepEqual(g2.map((g) => g.level), [1, 1, 1, 2, 2, 2, 3, 3, 3]);
  assert.deepEqual(net.affineGroups(0).map((g) => g.indices.length), [5, 5, 5]);
  assert.throws(() => net.affineGroups(-1), /non-negative integer/);
});

test('stacked and phase weights are cached per parameter version and rebuilt after a change', () => {
  const m = createModel(opt, 3);
  randomiseLoaded(m, 4);
  const net = m.net;
  const lr = rand([1, 3, 4, 4], 5);
  const { group } = net.affineGroups(0)[0];
  const before = net.prepareConditioning(lr, { condGroup: 0 });
  // (cached only without a tape, as in prepareConditioning)
  const stacked = () => noGrad(() => group.stackedWeights());
  const phased = () => noGrad(() => group.phaseWeights(8));
  const s1 = stacked();
  const p1 = phased();
  assert.equal(stacked(), s1, 'cached while no parameter changed');
  assert.equal(phased(), p1);
  assert.notEqual(group.stackedWeights(), s1, 'not cached with a tape');
  // change the injector's and the coupling's first convs of the level's second step, as an optimiser step or a load would
  const step = net.layers[net.affineGroups(0)[0].indices[1]] as FlowStep;
  for (const p of [step.affine!.fFeatures.l0.weight, step.affine!.fAffine.l0.weight]) for (let i = 0; i < p.size; i++) p.data[i] *= 1.5;
  net.markLoaded(); // bumps the parameter version
  assert.notEqual(stacked(), s1, 'rebuilt after the change');
  assert.notEqual(phased(), p1);
  assert.equal(stacked(), stacked());
  for (const condPhases of [false, true]) {
    const after = net.prepareConditioning(lr, { condGroup: 0, condPhases });
    assertSameCaches(after.steps, reference(net, lr), `after the change, phases ${condPhases}`);
  }
  const idx = net.affineGroups(0)[0].indices[1];
  assert.ok(relErr(net.prepareConditioning(lr).steps.get(idx)!.inj.data, before.steps.get(idx)!.inj.data) > 1e-3, 'the change shows');
  // on the tape nothing is cached (and the precompute runs one step at a time)
  const taped = group.precompute(noGrad(() => net.conditioning(net.rrdb.forward(lr)))[0]);
  assert.ok(taped[0].inj.requiresGrad, 'with a tape the precompute stays differentiable');
});

test('sampling and encoding against the batched conditioning = the uncached full network', () => {
  const m = createModel(opt, 5);
  randomiseLoaded(m, 6);
  const net = m.net;
  for (const B of [1, 2]) {
    const lr = rand([B, 3, 6, 4], 7 + B);
    const hr = rand([B, 3, 24, 16], 9 + B);
    const cache = net.prepareConditioning(lr); // defaults: groups of DEFAULT_COND_GROUP, phases
    for (const t of [0, 0.8]) {
      const z = net.drawLatents(lr.shape, t, new Rng(11));
      const a = net.decode(lr, z);
      const b = net.decodeCached(z, cache);
      assert.ok(relErr(b.sr.data, a.sr.data) < 1e-5, `B=${B} τ=${t}: ${relErr(b.sr.data, a.sr.data)}`);
      assert.ok(relErr(b.logdet.data, a.logdet.data) < 1e-5);
    }
    const e1 = net.encode(hr, lr);
    const e2 = net.encodeCached(hr, cache);
    e1.latents.forEach((z, i) => assert.ok(relErr(e2.latents[i].data, z.data) < 1e-5));
    assert.ok(relErr(e2.nll.data, e1.nll.data) < 1e-5);
  }
  // the public API: one sample = the uncached decode of the same latents
  const lr1 = rand([1, 3, 4, 6], 13);
  const s = m.sample(lr1, { temperature: 0.7, seed: 2 });
  const z = net.drawLatents(lr1.shape, 0.7, new Rng(2));
  assert.ok(relErr(s.data, net.decode(lr1, z).sr.data) < 1e-5);
  // keepConds hands back the materialised maps, equal to the RRDB's
  const kept = net.prepareConditioning(lr1, { keepConds: true });
  const maps = noGrad(() => net.conditioning(net.rrdb.forward(lr1)));
  kept.conds.forEach((c, i) => assert.deepEqual(Array.from(c.data), Array.from(maps[i].data)));
});

test('phase decomposition: a 3×3 conv of cat(own, up2(stacked)) from 2×2 convs of stacked', () => {
  for (const [n, h, w] of [[1, 5, 7], [2, 3, 2], [1, 1, 1]]) {
    const own = rand([n, 3, 2 * h, 2 * w], 1, -1, 1);
    const stacked = rand([n, 5, h, w], 2, -1, 1);
    const W = rand([6, 8, 3, 3], 3, -0.5, 0.5);
    const want = T.conv2d(materializeCond({ own, stacked }), W);
    const pw = phaseWeights(W, 3);
    assert.deepEqual(pw.own.shape, [6, 3, 3, 3]);
    assert.deepEqual(pw.phases.shape, [24, 5, 2, 2]);
    const got = convUpsampledCond({ own, stacked }, pw);
    assert.deepEqual(got.shape, want.shape);
    assert.ok(relErr(got.data, want.data) < 1e-6, `${n}×${h}×${w}: ${relErr(got.data, want.data)}`);
  }
  assert.throws(() => convUpsampledCond({ own: rand([1, 3, 6, 6], 1), stacked: rand([1, 5, 4, 4], 2) }, phaseWeights(rand([6, 8, 3, 3], 3), 3)), /half the size/);
  const x = rand([1, 2, 3, 3], 4);
  assert.equal(T.resizeNearest(x, 3, 3), x, 'resizing to the same size is the identity');
});

test('RRDB without a tape (dense blocks in one buffer) = with a tape, bit for bit', () => {
  const m = createModel(opt, 7);
  randomiseLoaded(m, 8);
  const lr = rand([1, 3, 5, 6], 9);
  const taped = m.net.rrdb.forward(lr);
  const plain = noGrad(() => m.net.rrdb.forward(lr));
  for (const [k, v] of taped.maps) assert.deepEqual(Array.from(plain.maps.get(k)!.data), Array.from(v.data), k);
});
