/**
 * One harness every flow layer passes (as normflows' flow_test): inverse(forward(x)) = x, the
 * log-determinants cancel, and on tiny shapes the log-determinant equals log|det J| of a
 * brute-force (finite-difference, float64) Jacobian.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, noGrad } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/tensor/random.js';
import { logAbsDet } from '../../src/tensor/linalg.js';
import { ActNorm } from '../../src/flow/actnorm.js';
import { InvConv1x1 } from '../../src/flow/invconv.js';
import { CondAffine } from '../../src/flow/affine.js';
import { FlowStep } from '../../src/flow/flowstep.js';
import { Squeeze } from '../../src/flow/squeeze.js';
import { Split2d } from '../../src/flow/split.js';
import { flowContext, type FlowLayer, type FlowMode } from '../../src/flow/layer.js';
import type { AffineCache } from '../../src/flow/affine.js';
import * as T from '../../src/tensor/index.js';
import { relErr } from '../helpers/gradcheck.js';

const rng = new Rng(7);

function randT(shape: number[], std = 1, dtype: 'float32' | 'float64' = 'float64'): Tensor {
  const t = Tensor.zeros(shape, dtype);
  rng.fillNormal(t.data, std);
  return t;
}

/** Give every parameter random values (no layer is an identity) and convert to float64. */
function randomise(layer: { parameters(): [string, Tensor][] }, std = 0.3): void {
  for (const [name, p] of layer.parameters()) {
    const d = new Float64Array(p.size);
    if (name.endsWith('invconv.weight') || (name === 'weight' && p.ndim === 2)) {
      const n = p.shape[0];
      for (let i = 0; i < d.length; i++) d[i] = p.data[i] + 0.2 * rng.normal(); // orthogonal + noise
      void n;
    } else {
      for (let i = 0; i < d.length; i++) d[i] = std * rng.normal();
    }
    p.data = d;
  }
}

/**
 * The shared harness. With ctx = { cond, latent stack }: inverse(forward(x)) = x, the inverse pops
 * exactly what the forward pushed, log-dets are [B] and cancel, `forwardShape` predicts the shapes,
 * an inverse told not to compute its log-det returns zeros and the same x, and (tiny shapes) the
 * log-det equals log|det J| of a brute-force float64 Jacobian of x → (y, pushed latents) plus the
 * pushed latents' standard-normal log-density (a split's prior term).
 */
function checkLayer(name: string, layer: FlowLayer, x: Tensor, cond: Tensor | null, opts: { jacobian?: boolean; cache?: AffineCache } = {}): void {
  const B = x.shape[0];
  const fctx = flowContext({ cond, cache: opts.cache ?? null });
  const fwd = layer.forward(x, fctx);
  const pushed = fctx.latents.slice();
  const ictx = flowContext({ cond, cache: opts.cache ?? null, latents: pushed.slice() });
  const inv = layer.inverse(fwd.y, ictx);
  assert.equal(ictx.latents.length, 0, `${name}: the inverse pops what the forward pushed`);
  assert.ok(relErr(inv.x.data, x.data) < 1e-10, `${name}: inverse(forward(x)) ≠ x (${relErr(inv.x.data, x.data)})`);
  assert.deepEqual(fwd.logdet.shape, [B], `${name}: forward log-det per sample`);
  assert.deepEqual(inv.logdet.shape, [B], `${name}: inverse log-det per sample`);
  for (let b = 0; b < B; b++) {
    const f = fwd.logdet.data[b];
    assert.ok(Math.abs(f + inv.logdet.data[b]) < 1e-9 * (1 + Math.abs(f)), `${name}: logdets do not cancel`);
  }
  const shapes: number[][] = [];
  assert.deepEqual(layer.forwardShape(x.shape, shapes), fwd.y.shape, `${name}: forwardShape`);
  assert.deepEqual(
    shapes,
    pushed.map((z) => z.shape),
    `${name}: forwardShape's latents`,
  );
  const quiet = layer.inverse(fwd.y, flowContext({ cond, cache: opts.cache ?? null, latents: pushed.slice(), needLogdet: false }));
  assert.deepEqual(Array.from(quiet.x.data), Array.from(inv.x.data), `${name}: the same x without the log-det`);
  assert.deepEqual(quiet.logdet.shape, [B]);
  assert.ok(
    quiet.logdet.data.every((v) => v === 0),
    `${name}: zeros without the log-det`,
  );
  if (!opts.jacobian) return;
  // brute-force Jacobian of sample 0 of x → (y, pushed latents)
  const per = x.size / B;
  const outOf = (xx: Tensor): number[] => {
    const c = flowContext({ cond, cache: opts.cache ?? null });
    const y = layer.forward(xx, c).y;
    return [y, ...c.latents].flatMap((t) => Array.from(t.data.subarray(0, t.size / B)));
  };
  assert.equal(outOf(x).length, per, `${name}: a bijection per sample`);
  const J = new Float64Array(per * per);
  const h = 1e-6;
  for (let j = 0; j < per; j++) {
    const xp = Tensor.from(x.data, x.shape, 'float64');
    const xm = Tensor.from(x.data, x.shape, 'float64');
    xp.data[j] += h;
    xm.data[j] -= h;
    const yp = outOf(xp);
    const ym = outOf(xm);
    for (let i = 0; i < per; i++) J[i * per + j] = (yp[i] - ym[i]) / (2 * h);
  }
  let prior = 0;
  for (const z of pushed) for (const v of z.data.subarray(0, z.size / B)) prior += -0.5 * (v * v + Math.log(2 * Math.PI));
  const brute = logAbsDet(new Tensor(J, [per, per])).item() + prior;
  assert.ok(Math.abs(brute - fwd.logdet.data[0]) < 1e-5 * (1 + Math.abs(brute)), `${name}: logdet ${fwd.logdet.data[0]} vs brute-force ${brute}`);
}

const mode: FlowMode = { training: false };

test('every flow layer through one harness: inverse(forward(x)) = x, log-dets [B] cancel, log-det = log|det J|', () => {
  noGrad(() => {
    const x = randT([2, 4, 3, 2]);
    const cond = randT([2, 5, 3, 2]);
    const an = new ActNorm(4, mode);
    randomise(an);
    checkLayer('ActNorm', an, x, null, { jacobian: true });
    const ic = new InvConv1x1(4, rng);
    randomise(ic);
    checkLayer('InvConv1x1', ic, x, null, { jacobian: true });
    const af = new CondAffine(4, 5, 6, 1e-4, mode, rng);
    randomise(af);
    checkLayer('CondAffine', af, x, cond, { jacobian: true });
    checkLayer('CondAffine (precomputed conditioning)', af, x, null, { jacobian: true, cache: af.precompute(cond) });
    const af3 = new CondAffine(3, 5, 6, 1e-4, mode, rng); // odd channel count: z1 gets ⌊C/2⌋
    randomise(af3);
    checkLayer('CondAffine (C=3)', af3, randT([2, 3, 3, 2]), cond, { jacobian: true });
    const st = new FlowStep(4, { channels: 5, hidden: 6, eps: 1e-4 }, mode, rng);
    randomise(st);
    checkLayer('FlowStep', st, x, cond, { jacobian: true });
    checkLayer('FlowStep (precomputed conditioning)', st, x, null, { jacobian: true, cache: st.affine!.precompute(cond) });
    const tr = new FlowStep(4, null, mode, rng);
    randomise(tr);
    checkLayer('FlowStep (transition)', tr, x, null, { jacobian: true });
    checkLayer('Squeeze', new Squeeze(), randT([2, 3, 4, 6]), null, { jacobian: true });
    const sp = new Split2d(6);
    randomise(sp, 0.1);
    checkLayer('Split2d', sp, randT([2, 6, 2, 2]), null, { jacobian: true });
    const sp5 = new Split2d(5); // odd: keeps 5 − round(5/2) = 3 (half to even)
    randomise(sp5, 0.1);
    checkLayer('Split2d (C=5)', sp5, randT([2, 5, 2, 1]), null, { jacobian: true });
  });
});

test('the precomputed conditioning gives the same step as the conditioning map', () => {
  noGrad(() => {
    const x = randT([2, 4, 3, 2]);
    const cond = randT([1, 5, 3, 2]);
    const st = new FlowStep(4, { channels: 5, hidden: 6, eps: 1e-4 }, mode, rng);
    randomise(st);
    const plain = st.forward(x, flowContext({ cond: T.concat([cond, cond], 0) }));
    const cached = st.forward(x, flowContext({ cache: st.affine!.precompute(cond) })); // one map for the batch
    assert.ok(relErr(cached.y.data, plain.y.data) < 1e-12);
    assert.ok(relErr(cached.logdet.data, plain.logdet.data) < 1e-12);
    assert.throws(() => st.forward(x, flowContext()), /Expected a conditioning map/);
  });
});

test('Split2d: the latent it pushes is (z2 − mean)/σ, and its log-det is the prior term', () => {
  noGrad(() => {
    const sp = new Split2d(12);
    randomise(sp, 0.1);
    assert.equal(sp.keep, 6);
    const x = randT([2, 12, 3, 4]);
    const ctx = flowContext();
    const f = sp.forward(x, ctx);
    assert.deepEqual(f.y.shape, [2, 6, 3, 4]);
    assert.equal(ctx.latents.length, 1);
    const latent = ctx.latents[0];
    assert.deepEqual(latent.shape, [2, 6, 3, 4]);
    // the prior term is log N(z2; mean, exp(logs)); with ε = (z2 − mean)/σ it equals
    // Σ −½(ε² + 2 logs + log 2π): check against the latent
    const { mean, logs } = sp.prior(f.y);
    let want = 0;
    const per = latent.size / 2;
    for (let i = 0; i < per; i++) {
      const z2 = x.data[6 * 12 + i]; // sample 0: channel 6 + c, pixel p at i = 12c + p
      assert.ok(Math.abs((z2 - mean.data[i]) * Math.exp(-logs.data[i]) - latent.data[i]) < 1e-12);
      want += -0.5 * (latent.data[i] ** 2 + 2 * logs.data[i] + Math.log(2 * Math.PI));
    }
    assert.ok(Math.abs(want - f.logdet.data[0]) < 1e-9 * Math.abs(want), `${want} vs ${f.logdet.data[0]}`);
    assert.throws(() => sp.inverse(f.y, flowContext()), /Expected a latent/);
  });
});

test('ActNorm initialises from the first training batch (zero mean, unit variance) and only once', () => {
  const c: FlowMode = { training: true };
  const an = new ActNorm(3, c);
  const x = randT([4, 3, 5, 5], 2.5, 'float32');
  for (let i = 0; i < x.size; i++) x.data[i] += 1.7;
  const y = noGrad(() => an.forward(x, flowContext()).y);
  for (let ch = 0; ch < 3; ch++) {
    let s = 0;
    let s2 = 0;
    let n = 0;
    for (let b = 0; b < 4; b++)
      for (let i = 0; i < 25; i++) {
        const v = y.data[(b * 3 + ch) * 25 + i];
        s += v;
        s2 += v * v;
        n++;
      }
    assert.ok(Math.abs(s / n) < 1e-5);
    assert.ok(Math.abs(s2 / n - 1) < 1e-4);
  }
  const b0 = Float32Array.from(an.bias.data);
  noGrad(() => an.forward(randT([2, 3, 5, 5], 1, 'float32'), flowContext()));
  assert.deepEqual(Array.from(an.bias.data), Array.from(b0));
  // inference mode never initialises
  const an2 = new ActNorm(3, { training: false });
  noGrad(() => an2.forward(x, flowContext()));
  assert.ok(an2.bias.data.every((v) => v === 0));
});
