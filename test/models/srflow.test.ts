import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/tensor/random.js';
import { createModel, loadModel } from '../../src/models/api.js';
import { makeOpt } from '../../src/models/config.js';
import { relErr } from '../helpers/gradcheck.js';
import { rand, randomiseModel } from '../helpers/model.js';

const small8x = { ...makeOpt({ scale: 8, nb: 2, K: 1, L: 4, blocks: [0, 1], hidden: 16, nf: 16 }) };

test('8x, L=4, batch 2, non-square: encode → decode round trips; shapes as published', () => {
  const m = createModel(small8x, 3);
  randomiseModel(m, 4);
  const lr = rand([2, 3, 6, 4], 1);
  const hr = rand([2, 3, 48, 32], 2);
  const shapes = m.latentShapes(lr.shape);
  // two splits (levels 1 and 2): ε1 [2,6,24,16], ε2 [2,12,12,8], z_L [2,192,3,2]
  assert.deepEqual(shapes, [[2, 6, 24, 16], [2, 12, 12, 8], [2, 192, 3, 2]]);
  const enc = m.encode(hr, lr);
  assert.deepEqual(enc.latents.map((z) => z.shape), shapes);
  assert.equal(enc.nll.length, 2);
  assert.ok(enc.nll.every(Number.isFinite));
  const dec = m.decode(lr, enc.latents);
  assert.ok(relErr(dec.sr.data, hr.data) < 1e-5, `round trip ${relErr(dec.sr.data, hr.data)}`);
  for (let b = 0; b < 2; b++) assert.ok(Math.abs(dec.logdet[b] + enc.logdet[b]) < 1e-4 * Math.abs(enc.logdet[b]) + 1e-2);
  // per-sample independence: encoding sample 1 alone gives the same nll
  const one = m.encode(new Tensor(hr.data.slice(3 * 48 * 32), [1, 3, 48, 32]), new Tensor(lr.data.slice(3 * 24), [1, 3, 6, 4]));
  assert.ok(Math.abs(one.nll[0] - enc.nll[1]) < 1e-4 * Math.abs(enc.nll[1]));
});

test('sampling is reproducible for a seed, differs across seeds, τ = 0 is deterministic', () => {
  const m = createModel(makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8 }), 1);
  randomiseModel(m, 2);
  const lr = rand([1, 3, 4, 6], 5);
  const a = m.sample(lr, { temperature: 0.8, seed: 11 });
  const b = m.sample(lr, { temperature: 0.8, seed: 11 });
  const c = m.sample(lr, { temperature: 0.8, seed: 12 });
  assert.deepEqual(a.shape, [1, 3, 16, 24]);
  assert.deepEqual(Array.from(a.data), Array.from(b.data));
  assert.ok(relErr(a.data, c.data) > 1e-3);
  const z0 = m.sample(lr, { temperature: 0, seed: 1 });
  const z1 = m.sample(lr, { temperature: 0, seed: 2 });
  assert.deepEqual(Array.from(z0.data), Array.from(z1.data));
  assert.throws(() => m.sample(lr, { temperature: -1 }), /temperature/);
  assert.throws(() => m.sample(lr, { temperature: NaN }), /temperature/);
  // LR not divisible by 2^L/scale = 2
  assert.throws(() => m.sample(rand([1, 3, 5, 6], 1)), /divisible by 2/);
});

test('native model file: save → load gives identical parameters and outputs; problems are named', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'srflow-model-'));
  try {
    const opt = makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8 });
    const m = createModel(opt, 9);
    randomiseModel(m, 3);
    const path = join(dir, 'm.safetensors');
    await m.save(path);
    assert.deepEqual(readdirSync(dir), ['m.safetensors'], 'no temporary files left');
    const m2 = await loadModel(path);
    assert.deepEqual(m2.config.opt, m.config.opt);
    for (const [n, p] of m.parameters()) assert.deepEqual(Array.from(m2.parameters().get(n)!.data), Array.from(p.data), n);
    const lr = rand([1, 3, 4, 4], 1);
    assert.deepEqual(Array.from(m2.sample(lr, { seed: 3 }).data), Array.from(m.sample(lr, { seed: 3 }).data));
    // a model file for another configuration: every mismatch is named
    const other = makeOpt({ scale: 4, nb: 2, K: 1, L: 3, blocks: [0, 1], hidden: 8, nf: 8 });
    await assert.rejects(loadModel(path, { config: other }), (e: Error) =>
      /missing .*RRDB\.RRDB_trunk\.1\.RDB1\.conv1\.weight/.test(e.message) && /mis-shaped .*affine\.fFeatures\.0\.weight/.test(e.message));
    // not a model
    const junk = join(dir, 'junk.bin');
    writeFileSync(junk, 'hello world, not a model');
    await assert.rejects(loadModel(junk), /not a PyTorch checkpoint/);
    await assert.rejects(loadModel(join(dir, 'nope.safetensors')), /Cannot read model .*file not found/);
    // a truncated model
    const { readFileSync } = await import('node:fs');
    const buf = readFileSync(path);
    writeFileSync(join(dir, 'trunc.safetensors'), buf.subarray(0, buf.length >> 1));
    await assert.rejects(loadModel(join(dir, 'trunc.safetensors')), /truncated|outside the file/);
    assert.ok(!existsSync(join(dir, 'nope.safetensors')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('gradients() returns the mean-NLL loss and one gradient per parameter', () => {
  const m = createModel(makeOpt({ scale: 4, nb: 1, K: 1, L: 3, blocks: [0], hidden: 8, nf: 8 }), 1);
  randomiseModel(m, 2);
  const lr = rand([2, 3, 4, 4], 1);
  const hr = rand([2, 3, 16, 16], 2);
  const g = m.gradients(hr, lr);
  const enc = m.encode(hr, lr);
  assert.ok(Math.abs(g.loss - (enc.nll[0] + enc.nll[1]) / 2) < 1e-4 * Math.abs(g.loss));
  assert.equal(g.grads.size, m.parameters().size);
  const w = g.grads.get('flowUpsamplerNet.layers.3.affine.fAffine.0.weight')!;
  assert.ok(w.data.some((v) => v !== 0));
  for (const p of m.parameters().values()) assert.equal(p.grad, null, 'gradients are not left on the parameters');
});

test('conditioning cache: decode/encode against one cached conditioning = the uncached path (batch 2)', () => {
  const m = createModel(makeOpt({ scale: 4, nb: 2, K: 2, L: 3, blocks: [0, 1], hidden: 8, nf: 8 }), 5);
  randomiseModel(m, 6);
  const lr = rand([2, 3, 6, 4], 7);
  const hr = rand([2, 3, 24, 16], 8);
  const net = m.net;
  const cache = net.prepareConditioning(lr);
  assert.ok(cache.bytes > 0);
  assert.equal(cache.conds.length, 0, 'the conditioning maps are released');
  for (const t of [0, 0.7, 1.1]) {
    const z = net.drawLatents(lr.shape, t, new Rng(t * 10));
    const a = net.decode(lr, z);
    const b = net.decodeCached(z, cache);
    assert.ok(relErr(b.sr.data, a.sr.data) < 1e-5, `τ=${t}: ${relErr(b.sr.data, a.sr.data)}`);
    assert.ok(relErr(b.logdet.data, a.logdet.data) < 1e-5);
  }
  const e1 = net.encode(hr, lr);
  const e2 = net.encodeCached(hr, cache);
  e1.latents.forEach((z, i) => assert.ok(relErr(e2.latents[i].data, z.data) < 1e-5));
  assert.ok(relErr(e2.nll.data, e1.nll.data) < 1e-5);
  // the public many-samples API: N samples, reproducible per seed, identical to one-at-a-time
  const many = m.sample(new Tensor(lr.data.slice(0, 72), [1, 3, 6, 4]), { temperature: 0.8, seed: 3, samples: 3 });
  assert.equal(many.length, 3);
  const one = m.sample(new Tensor(lr.data.slice(0, 72), [1, 3, 6, 4]), { temperature: 0.8, seed: 4 });
  assert.ok(relErr(many[1].data, one.data) < 1e-6);
  assert.ok(relErr(many[0].data, many[2].data) > 1e-3);
});

test('low-memory training (recompute by inversion) gives the stored-activation gradients', () => {
  // nb 3 with blocks [0, 2]: the RRDB's per-block checkpointing sees a stacked block inside the trunk and at its end
  const m = createModel(makeOpt({ scale: 4, nb: 3, K: 2, L: 3, blocks: [0, 2], hidden: 8, nf: 8 }), 11);
  randomiseModel(m, 12);
  const lr = rand([2, 3, 4, 6], 13);
  const hr = rand([2, 3, 16, 24], 14);
  const noise = rand([2, 3, 16, 24], 15, -1 / 64, 1 / 64);
  const net = m.net;
  net.ctx.training = true;
  const grads = (lowMemory: boolean) => {
    for (const p of net.parameters().values()) p.grad = null;
    const { loss } = net.loss(hr, lr, { noise, quant: 32, lowMemory });
    loss.backward();
    const out = new Map<string, Float32Array>();
    for (const [n, p] of net.parameters()) if (p.grad) out.set(n, Float32Array.from(p.grad));
    return { loss: loss.item(), out };
  };
  const a = grads(false);
  const b = grads(true);
  assert.ok(Math.abs(a.loss - b.loss) < 1e-5 * Math.abs(a.loss));
  assert.equal(b.out.size, a.out.size);
  for (const [n, g] of a.out) {
    const e = relErr(b.out.get(n)!, g);
    assert.ok(e <= 1e-4, `${n}: ${e}`);
  }
  assert.ok(a.out.has('RRDB.conv_first.weight'), 'gradients reach the RRDB through the conditioning');
});
