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
import { verifyModel } from '../../src/models/verify.js';
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

test('parity: every fixture tensor (RRDB maps, encode, reconstruct, sample, objective, gradients) < 1e-4', { skip: !have && 'fixture not found' }, () => {
  const { model, ref } = setup();
  const rows = verifyModel(model, ref);
  const names = rows.map((r) => r.name);
  for (const k of ref.keys()) {
    if (k === 'gt' || k === 'lr' || k === 'train.noise' || k.startsWith('sample.eps.')) continue;
    assert.ok(names.includes(k), `verified ${k}`);
  }
  for (const r of rows) assert.ok(r.pass, `${r.name}: relative error ${r.relErr} ${r.note ?? ''}`);
  assert.ok(rows.filter((r) => r.name.startsWith('grad.')).length > 30);
  if (ref.has('sample.sr')) assert.ok(names.includes('sample.sr (prepared conditioning)'), 'the cached inference path is verified too');
});

test('parity: decode(encode(x)) = x to < 1e-5 and logdets cancel', { skip: !have && 'fixture not found' }, () => {
  const { model, get } = setup();
  const lr = get('lr');
  const gt = get('gt');
  const enc = model.encode(gt, lr);
  const rec = model.decode(lr, enc.latents);
  assert.ok(relErr(rec.sr.data, gt.data) < 1e-5, `round trip error ${relErr(rec.sr.data, gt.data)}`);
  close('logdet cancels', T.neg(rec.logdet), enc.logdet, 1e-5);
  void noGrad;
});
