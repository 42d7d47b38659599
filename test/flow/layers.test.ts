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
import type { FlowLayer, FlowContext } from '../../src/flow/layer.js';
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
    if (name.endsWith('invconv.weight') || name === 'weight' && p.ndim === 2) {
      const n = p.shape[0];
      for (let i = 0; i < d.length; i++) d[i] = p.data[i] + 0.2 * rng.normal(); // orthogonal + noise
      void n;
    } else {
      for (let i = 0; i < d.length; i++) d[i] = std * rng.normal();
    }
    p.data = d;
  }
}

function checkLayer(name: string, layer: FlowLayer, x: Tensor, cond: Tensor | null, opts: { jacobian?: boolean } = {}): void {
  const fwd = layer.forward(x, cond);
  const inv = layer.inverse(fwd.out, cond);
  assert.ok(relErr(inv.out.data, x.data) < 1e-10, `${name}: inverse(forward(x)) ≠ x (${relErr(inv.out.data, x.data)})`);
  const B = x.shape[0];
  const ldF = (b: number) => (fwd.logdet.size === 1 ? fwd.logdet.data[0] : fwd.logdet.data[b]);
  const ldI = (b: number) => (inv.logdet.size === 1 ? inv.logdet.data[0] : inv.logdet.data[b]);
  for (let b = 0; b < B; b++) assert.ok(Math.abs(ldF(b) + ldI(b)) < 1e-9 * (1 + Math.abs(ldF(b))), `${name}: logdets do not cancel`);
  if (!opts.jacobian) return;
  // brute-force Jacobian of sample 0
  const per = x.size / B;
  const J = new Float64Array(per * per);
  const h = 1e-6;
  for (let j = 0; j < per; j++) {
    const xp = Tensor.from(x.data, x.shape, 'float64');
    const xm = Tensor.from(x.data, x.shape, 'float64');
    xp.data[j] += h;
    xm.data[j] -= h;
    const yp = layer.forward(xp, cond).out.data;
    const ym = layer.forward(xm, cond).out.data;
    for (let i = 0; i < per; i++) J[i * per + j] = (yp[i] - ym[i]) / (2 * h);
  }
  const brute = logAbsDet(new Tensor(J, [per, per])).item();
  assert.ok(Math.abs(brute - ldF(0)) < 1e-5 * (1 + Math.abs(brute)), `${name}: logdet ${ldF(0)} vs brute-force ${brute}`);
}

const ctx: FlowContext = { training: false };

test('every flow layer: inverse(forward(x)) = x, log-dets cancel, log-det = log|det J|', () => {
  noGrad(() => {
    const x = randT([2, 4, 3, 2]);
    const cond = randT([2, 5, 3, 2]);
    const an = new ActNorm(4, ctx);
    randomise(an);
    checkLayer('ActNorm', an, x, null, { jacobian: true });
    const ic = new InvConv1x1(4, rng);
    randomise(ic);
    checkLayer('InvConv1x1', ic, x, null, { jacobian: true });
    const af = new CondAffine(4, 5, 6, 1e-4, ctx, rng);
    randomise(af);
    checkLayer('CondAffine', af, x, cond, { jacobian: true });
    const af3 = new CondAffine(3, 5, 6, 1e-4, ctx, rng); // odd channel count: z1 gets ⌊C/2⌋
    randomise(af3);
    checkLayer('CondAffine (C=3)', af3, randT([2, 3, 3, 2]), cond, { jacobian: true });
    const st = new FlowStep(4, { channels: 5, hidden: 6, eps: 1e-4 }, ctx, rng);
    randomise(st);
    checkLayer('FlowStep', st, x, cond, { jacobian: true });
    const tr = new FlowStep(4, null, ctx, rng);
    randomise(tr);
    checkLayer('FlowStep (transition)', tr, x, null, { jacobian: true });
    checkLayer('Squeeze', new Squeeze(), randT([2, 3, 4, 6]), null, { jacobian: true });
  });
});

test('Split2d: inverse rebuilds z2 from ε and subtracts the prior term', () => {
  noGrad(() => {
    const sp = new Split2d(12);
    randomise(sp, 0.1);
    assert.equal(sp.keep, 6);
    const x = randT([2, 12, 3, 4]);
    const f = sp.forward(x);
    assert.deepEqual(f.out.shape, [2, 6, 3, 4]);
    assert.deepEqual(f.latent.shape, [2, 6, 3, 4]);
    const inv = sp.inverse(f.out, null, f.latent);
    assert.ok(relErr(inv.out.data, x.data) < 1e-10);
    for (let b = 0; b < 2; b++) assert.ok(Math.abs(f.logdet.data[b] + inv.logdet.data[b]) < 1e-9 * Math.abs(f.logdet.data[b]));
    // the prior term is log N(z2; mean, exp(logs)); with ε = (z2 − mean)/σ it equals
    // Σ −½(ε² + 2 logs + log 2π): check against the latent
    const { logs } = sp.prior(f.out);
    let want = 0;
    const per = f.latent.size / 2;
    for (let i = 0; i < per; i++) want += -0.5 * (f.latent.data[i] ** 2 + 2 * logs.data[i] + Math.log(2 * Math.PI));
    assert.ok(Math.abs(want - f.logdet.data[0]) < 1e-9 * Math.abs(want), `${want} vs ${f.logdet.data[0]}`);
  });
});

test('ActNorm initialises from the first training batch (zero mean, unit variance) and only once', () => {
  const c: FlowContext = { training: true };
  const an = new ActNorm(3, c);
  const x = randT([4, 3, 5, 5], 2.5, 'float32');
  for (let i = 0; i < x.size; i++) x.data[i] += 1.7;
  const y = noGrad(() => an.forward(x).out);
  for (let ch = 0; ch < 3; ch++) {
    let s = 0;
    let s2 = 0;
    let n = 0;
    for (let b = 0; b < 4; b++) for (let i = 0; i < 25; i++) {
      const v = y.data[(b * 3 + ch) * 25 + i];
      s += v;
      s2 += v * v;
      n++;
    }
    assert.ok(Math.abs(s / n) < 1e-5);
    assert.ok(Math.abs(s2 / n - 1) < 1e-4);
  }
  const b0 = Float32Array.from(an.bias.data);
  noGrad(() => an.forward(randT([2, 3, 5, 5], 1, 'float32')));
  assert.deepEqual(Array.from(an.bias.data), Array.from(b0));
  // inference mode never initialises
  const an2 = new ActNorm(3, { training: false });
  noGrad(() => an2.forward(x));
  assert.ok(an2.bias.data.every((v) => v === 0));
});
