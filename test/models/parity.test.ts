/**
 * Parity with the published implementation: every tensor of ../shared/fixtures/parity-4x.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Tensor, noGrad } from '../../src/tensor/tensor.js';
import * as T from '../../src/tensor/index.js';
import { readPth } from '../../src/io/pth.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadConfigFile } from '../../src/models/config.js';
import { SRFlowNet } from '../../src/models/srflow.js';
import { loadStateDict } from '../../src/models/state.js';
import { relErr } from '../helpers/gradcheck.js';

const FIX = new URL('../../../shared/fixtures/parity-4x/', import.meta.url).pathname;
const have = existsSync(FIX + 'weights.pth');

function setup() {
  const cfg = loadConfigFile(FIX + 'config.json');
  const model = new SRFlowNet(cfg);
  loadStateDict(model, readPth(FIX + 'weights.pth'));
  const ref = readSafetensors(FIX + 'tensors.safetensors').tensors;
  const get = (k: string) => {
    const t = ref.get(k);
    assert.ok(t, `fixture has ${k}`);
    return new Tensor(t.data, t.shape);
  };
  return { model, ref, get };
}

const close = (name: string, a: Tensor | Float32Array, b: Tensor, tol = 1e-4) => {
  const ad = a instanceof Tensor ? a.data : a;
  if (a instanceof Tensor) assert.deepEqual(a.shape, b.shape, `${name} shape`);
  const e = relErr(ad, b.data);
  assert.ok(e < tol, `${name}: relative error ${e}`);
};

test('parity: RRDB maps, encode, reconstruct, sample, gradients', { skip: !have && 'fixture not found' }, () => {
  const { model, ref, get } = setup();
  const lr = get('lr');
  const gt = get('gt');
  const r = noGrad(() => model.rrdbForward(lr, { withOut: true }));
  for (const k of ref.keys()) {
    if (!k.startsWith('rrdb.')) continue;
    const name = k.slice(5);
    const mine = name === 'out' ? r.out : (r.maps.get(name) ?? r.blocks.get(name));
    assert.ok(mine, `computed ${k}`);
    close(k, mine, get(k));
  }
  const enc = model.encode(gt, lr);
  enc.latents.forEach((z, i) => close(`encode.eps.${i}`, z, get(`encode.eps.${i}`)));
  assert.ok(!ref.has(`encode.eps.${enc.latents.length}`), 'no extra fixture latents');
  close('encode.nll', enc.nll, get('encode.nll'));
  close('encode.logdet', enc.logdet, get('encode.logdet'));

  const rec = model.decode(lr, enc.latents);
  close('reconstruct.sr', rec.sr, get('reconstruct.sr'));
  close('reconstruct.logdet', rec.logdet, get('reconstruct.logdet'));
  // decode(encode(x)) = x to float32 rounding
  assert.ok(relErr(rec.sr.data, gt.data) < 1e-5, `round trip error ${relErr(rec.sr.data, gt.data)}`);

  const eps = enc.latents.map((_z, i) => get(`sample.eps.${i}`));
  const smp = model.decode(lr, eps);
  close('sample.sr', smp.sr, get('sample.sr'));
  close('sample.logdet', smp.logdet, get('sample.logdet'));

  const noise = get('train.noise');
  const trainEnc = model.encode(gt, lr, { noise, quant: 32 });
  close('train.objective', trainEnc.nll, get('train.objective'));

  model.ctx.training = true;
  const { loss } = model.loss(gt, lr, { noise });
  close('grad.loss', new Float32Array([loss.item()]), get('grad.loss'));
  loss.backward();
  const params = model.parameters();
  let checked = 0;
  for (const k of ref.keys()) {
    if (!k.startsWith('grad.') || k === 'grad.loss') continue;
    const p = params.get(k.slice(5));
    assert.ok(p && p.grad, `gradient of ${k.slice(5)}`);
    close(k, new Tensor(p.grad as Float32Array, p.shape), get(k));
    checked++;
  }
  assert.ok(checked > 30);
  void T;
});
